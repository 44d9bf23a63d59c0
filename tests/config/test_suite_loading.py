"""Suite files: the schema, its defaults, and one exact `FILE:LINE:COL: KEY.PATH: message` each."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from novabench.config.checks import JsonCheck
from novabench.config.hosts import DEFAULT_HOST, normalize_host
from novabench.config.reading import load_suite, parse_suite
from novabench.config.suite import Checks, ModelSpec, OllamaOptions, PromptSpec, Suite
from novabench.errors import SuiteError

SHIPPED = Path(__file__).resolve().parents[2] / "suites" / "one_sentence.yaml"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Relative file names keep the expected lines short; no test sees the caller's OLLAMA_HOST.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


def write(text: str, name: str = "suite.yaml") -> str:
    """Write a suite whose line 1 is the first line of `text` after dedenting."""
    Path(name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return name


def problems(text: str, name: str = "suite.yaml") -> list[str]:
    with pytest.raises(SuiteError) as raised:
        load_suite(write(text, name))
    assert raised.value.exit_code == 2
    return raised.value.problems


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# --- what a valid suite gives ---------------------------------------------------------------------


def test_shipped_suite_loads_with_expected_fields() -> None:
    suite = load_suite(SHIPPED)

    assert suite.name == "one_sentence"
    assert suite.description
    assert suite.host == DEFAULT_HOST
    assert [m.name for m in suite.models] == ["llama3.2", "nemotron-mini", "wizardlm2"]
    assert all(m.host is None and m.options == OllamaOptions() for m in suite.models)
    assert [(p.id, p.text, p.system) for p in suite.prompts] == [
        ("how_are_you", "Respond in exactly one sentence: How are you?", None),
        ("two_plus_two", "Respond in exactly one sentence: What is 2+2?", None),
        ("hi", "Respond in exactly one sentence: Hi.", None),
    ]
    assert suite.modes == ["parallel", "sequential"]
    assert (suite.repetitions, suite.warmup) == (3, 1)
    assert suite.options.to_request() == {"temperature": 0, "seed": 42, "num_predict": 64}
    assert suite.keep_alive == "5m"
    assert suite.timeout_s == 120
    assert "host:" not in [line.split("#")[0].strip() for line in suite.text.splitlines()]
    assert suite.checks == Checks(max_sentences=1)
    assert [suite.checks_for(p) for p in suite.prompts] == [
        Checks(max_sentences=1),
        Checks(max_sentences=1, regex=r"(?i)\b(4|four)\b"),
        Checks(max_sentences=1),
    ]


def test_shipped_suite_uses_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11500")
    assert load_suite(SHIPPED).host == "http://127.0.0.1:11500"


def test_defaults_for_optional_keys() -> None:
    suite = parse_suite("name: s\nmodels: [m]\nprompts: [p]\n")

    assert suite.description == ""
    assert suite.modes == ["sequential"]
    assert (suite.repetitions, suite.warmup, suite.timeout_s) == (3, 1, 300.0)
    assert suite.options.to_request() == {}
    assert suite.keep_alive is None


def test_bare_strings_become_models_and_prompts() -> None:
    suite = parse_suite(
        textwrap.dedent(
            """
            name: s
            models:
              - llama3.2
              - {name: qwen3, options: {num_ctx: 8192}}
            prompts:
              - Say hi.
              - {id: sum, text: "What is 2+2?", system: Be terse.}
              - Say bye.
            """
        )
    )

    assert suite.models == [
        ModelSpec(name="llama3.2"),
        ModelSpec(name="qwen3", options=OllamaOptions(num_ctx=8192)),
    ]
    assert suite.prompts == [
        PromptSpec(id="p1", text="Say hi."),
        PromptSpec(id="sum", text="What is 2+2?", system="Be terse."),
        PromptSpec(id="p3", text="Say bye."),
    ]


def test_host_defaults_to_ollama_host_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11434")
    assert parse_suite("name: s\nmodels: [m]\nprompts: [p]\n").host == "http://gpu-box:11434"


def test_host_defaults_to_localhost_when_ollama_host_unset() -> None:
    assert parse_suite("name: s\nmodels: [m]\nprompts: [p]\n").host == "http://localhost:11434"


def test_host_in_the_suite_beats_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box")
    suite = parse_suite("name: s\nhost: other:1234\nmodels: [m]\nprompts: [p]\n")
    assert suite.host == "http://other:1234"


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("localhost:11434", "http://localhost:11434"),
        ("localhost", "http://localhost:11434"),
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("::1", "http://[::1]:11434"),
        ("[::]:11434", "http://[::1]:11434"),
        ("http://gpu-box:8080/", "http://gpu-box:8080"),
        ("http://gpu-box", "http://gpu-box"),
        ("https://ollama.example.com/", "https://ollama.example.com"),
        ("https://proxy.example.com/ollama/", "https://proxy.example.com/ollama"),
        ("HTTP://GPU-Box:8080", "http://gpu-box:8080"),
        ("  localhost:11434  ", "http://localhost:11434"),
    ],
)
def test_host_normalisation(written: str, normalised: str) -> None:
    assert normalize_host(written) == normalised
    suite = parse_suite(f"name: s\nhost: '{written}'\nmodels: [m]\nprompts: [p]\n")
    assert suite.host == normalised


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("ftp://gpu-box", "the scheme must be http or https, not 'ftp'"),
        ("unix:///run/ollama.sock", "the scheme must be http or https, not 'unix'"),
        ("gpu-box:99999", "the port must be a number 1-65535"),
        ("gpu-box:port", "the port must be a number 1-65535"),
        ("", "use e.g. 'localhost:11434' or 'http://host:11434'"),
        ("http://gpu-box/?x=1", "remove the '?' query or '#' fragment"),
    ],
)
def test_host_rejects_what_is_not_an_http_address(written: str, reason: str) -> None:
    with pytest.raises(ValueError, match="is not an Ollama address"):
        normalize_host(written)
    assert (
        only_problem(
            f"""
        name: s
        host: '{written}'
        models: [m]
        prompts: [p]
        """
        )
        == f"suite.yaml:2:7: host: {written!r} is not an Ollama address: {reason}"
    )


def test_invalid_ollama_host_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "ftp://gpu-box")
    assert only_problem(
        """
        # no host here
        name: s
        models: [m]
        prompts: [p]
        """
    ) == (
        "suite.yaml:2:1: host: $OLLAMA_HOST='ftp://gpu-box' is not an Ollama address: "
        "the scheme must be http or https, not 'ftp'"
    )


def test_model_host_overrides_suite_host() -> None:
    suite = parse_suite("name: s\nhost: a:1\nmodels: [m, {name: m, host: 'b:2/'}]\nprompts: [p]\n")
    assert [suite.host_for(m) for m in suite.models] == ["http://a:1", "http://b:2"]


def test_options_merge_with_model_options_winning_key_by_key() -> None:
    suite = parse_suite(
        textwrap.dedent(
            """
            name: s
            options: {temperature: 0, seed: 42, stop: "\\n\\n"}
            models:
              - plain
              - name: tuned
                options: {temperature: 0.7, num_ctx: 8192, use_mmap: false}
            prompts: [p]
            """
        )
    )
    plain, tuned = suite.models

    assert suite.options_for(plain) == {"temperature": 0, "seed": 42, "stop": ["\n\n"]}
    assert suite.options_for(tuned) == {
        "temperature": 0.7,
        "seed": 42,
        "stop": ["\n\n"],
        "num_ctx": 8192,
        "use_mmap": False,
    }


def test_yaml_merge_keys_work_and_explicit_keys_win() -> None:
    suite = parse_suite(
        textwrap.dedent(
            """
            name: s
            options: &base {temperature: 0, seed: 42}
            models:
              - name: m
                options: {<<: *base, seed: 7}
            prompts: [p]
            """
        )
    )
    assert suite.options_for(suite.models[0]) == {"temperature": 0, "seed": 7}


@pytest.mark.parametrize("keep_alive", ["5m", "1h30m", "-1m", "1.5h", "0", 300, 1.5, -1, 0])
def test_keep_alive_accepts_seconds_and_go_durations(keep_alive: str | float) -> None:
    written = f"'{keep_alive}'" if isinstance(keep_alive, str) else keep_alive
    suite = parse_suite(f"name: s\nmodels: [m]\nprompts: [p]\nkeep_alive: {written}\n")
    assert suite.keep_alive == keep_alive


def test_same_model_on_two_hosts_is_allowed() -> None:
    suite = parse_suite("name: s\nmodels: [m, {name: m, host: 'other'}]\nprompts: [p]\n")
    assert len(suite.models) == 2


# --- provenance -----------------------------------------------------------------------------------


def test_load_suite_records_path_text_and_sha256_of_the_bytes() -> None:
    text = "# café suite\nname: s\nmodels: [m]\nprompts: [p]\n"
    Path("prov.yaml").write_bytes(text.encode("utf-8"))

    suite = load_suite("prov.yaml")

    assert suite.path == Path("prov.yaml")
    assert suite.text == text
    assert suite.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_parse_suite_from_text_has_no_path_and_names_its_source() -> None:
    text = "name: s\nmodels: [m]\nprompts: [p]\n"
    suite = parse_suite(text)

    assert isinstance(suite, Suite)
    assert suite.path is None
    assert suite.text == text
    assert suite.sha256 == hashlib.sha256(text.encode()).hexdigest()
    with pytest.raises(SuiteError) as raised:
        parse_suite("name: s\nmodels: [m]\nprompts: [p]\nrepetitions: 0\n", source="inline")
    assert raised.value.problems == [
        "inline:4:14: repetitions: 0 is not allowed: must be an integer >= 1 or 'auto'"
    ]


# --- one exact line per problem -------------------------------------------------------------------


def test_unknown_key_suggests_the_close_one() -> None:
    assert (
        only_problem(
            """
        name: s
        prompts: [p]
        models:
          - a
          - b
          - name: c
            options:
              temprature: 0.2
        """
        )
        == "suite.yaml:8:7: models[2].options: unknown key 'temprature' "
        "(did you mean 'temperature'?)"
    )


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    assert (
        only_problem(
            """
        name: s
        models: [{name: m, flavour: x}]
        prompts: [p]
        """
        )
        == "suite.yaml:2:20: models[0]: unknown key 'flavour': "
        "allowed keys are name, model, backend, options, host, api_key_env"
    )


def test_repetitions_below_one() -> None:
    assert (
        only_problem(
            """
        name: s
        models: [m]
        prompts: [p]
        repetitions: 0
        """
        )
        == "suite.yaml:4:14: repetitions: 0 is not allowed: must be an integer >= 1 or 'auto'"
    )


def test_repetitions_rejects_a_boolean() -> None:
    assert (
        only_problem("name: s\nmodels: [m]\nprompts: [p]\nrepetitions: true\n")
        == "suite.yaml:4:14: repetitions: true is not an integer or 'auto'"
    )


def test_timeout_must_be_positive() -> None:
    assert (
        only_problem("name: s\nmodels: [m]\nprompts: [p]\ntimeout_s: -1.5\n")
        == "suite.yaml:4:12: timeout_s: -1.5 is not allowed: must be a number > 0"
    )


def test_misspelt_mode() -> None:
    assert only_problem(
        """
        name: s
        models: [m]
        prompts: [p]
        modes:
          - sequential
          - paralel
        """
    ) == (
        "suite.yaml:6:5: modes[1]: 'paralel' is not a mode: use 'parallel', 'sequential' "
        "or 'load' (did you mean 'parallel'?)"
    )


def test_duplicate_mode() -> None:
    assert (
        only_problem("name: s\nmodels: [m]\nprompts: [p]\nmodes:\n  - parallel\n  - parallel\n")
        == "suite.yaml:6:5: modes[1]: duplicate mode 'parallel' (first at line 5)"
    )


def test_missing_required_key_at_top_level() -> None:
    assert only_problem(
        """
        # a suite without models
        name: s
        prompts: [p]
        """
    ) == (
        "suite.yaml:2:1: (top level): missing key 'models': "
        "a list of model names or {name, options, host} mappings"
    )


def test_missing_key_in_a_model_points_at_the_mapping() -> None:
    assert (
        only_problem(
            """
        name: s
        models:
          - options: {seed: 1}
        prompts: [p]
        """
        )
        == "suite.yaml:3:5: models[0]: missing key 'name': the model name, e.g. 'llama3.2'"
    )


def test_duplicate_prompt_id() -> None:
    assert (
        only_problem(
            """
        name: s
        models: [m]
        prompts:
          - id: p1
            text: first
          - id: other
            text: second
          - Hi.
          - id: p1
            text: again
        """
        )
        == "suite.yaml:9:9: prompts[3].id: duplicate prompt id 'p1' (first at line 4)"
    )


def test_duplicate_model_on_the_same_host() -> None:
    assert only_problem(
        """
        name: s
        models:
          - llama3.2
          - name: llama3.2
            host: localhost
        prompts: [p]
        """
    ) == (
        "suite.yaml:4:5: models[1]: duplicate model 'llama3.2' on http://localhost:11434 "
        "(first at line 3)"
    )


def test_option_of_the_wrong_type() -> None:
    assert (
        only_problem(
            """
        name: s
        options: {temperature: hot}
        models: [m]
        prompts: [p]
        """
        )
        == "suite.yaml:2:24: options.temperature: 'hot' is not a number"
    )


def test_keep_alive_as_a_bare_numeric_string() -> None:
    assert (
        only_problem("name: s\nmodels: [m]\nprompts: [p]\nkeep_alive: '300'\n")
        == "suite.yaml:4:13: keep_alive: '300' is a number in a string: use 300 (seconds) or '300s'"
    )


def test_keep_alive_that_is_not_a_duration() -> None:
    assert only_problem("name: s\nmodels: [m]\nprompts: [p]\nkeep_alive: 5 minutes\n") == (
        "suite.yaml:4:13: keep_alive: '5 minutes' is not a duration: use seconds (300), "
        "a duration ('5m', '1h30m'), 0 to unload at once or -1 for ever"
    )


def test_empty_model_list() -> None:
    assert (
        only_problem("name: s\nmodels: []\nprompts: [p]\n")
        == "suite.yaml:2:9: models: [] is empty: at least one is required"
    )


def test_model_entry_that_is_neither_name_nor_mapping() -> None:
    assert (
        only_problem("name: s\nmodels: [m, 42]\nprompts: [p]\n")
        == "suite.yaml:2:13: models[1]: 42 is not a model name or a "
        "{name, model, backend, options, host, api_key_env} mapping"
    )


def test_number_where_a_string_belongs_says_to_quote_it() -> None:
    assert (
        only_problem("name: s\nmodels: [m]\nprompts:\n  - id: q\n    text: 42\n")
        == 'suite.yaml:5:11: prompts[0].text: 42 is not a string: quote it, as in "42"'
    )


def test_invalid_prompt_id() -> None:
    assert only_problem("name: s\nmodels: [m]\nprompts: [{id: 'two words', text: t}]\n") == (
        "suite.yaml:3:16: prompts[0].id: 'two words' is not a valid prompt id: "
        "use only letters, digits, '_', '.' and '-'"
    )


def test_several_problems_are_reported_at_once_in_file_order() -> None:
    assert problems(
        """
        name: ""
        models:
          - name: m
            options: {temprature: 1, seed: 1.5}
        prompts: [p]
        modes: [paralel]
        repetitions: 0
        colour: blue
        """
    ) == [
        "suite.yaml:1:7: name: '' is empty: it must have some text",
        "suite.yaml:4:15: models[0].options: unknown key 'temprature' "
        "(did you mean 'temperature'?)",
        "suite.yaml:4:36: models[0].options.seed: 1.5 is not an integer",
        "suite.yaml:6:9: modes[0]: 'paralel' is not a mode: use 'parallel', 'sequential' or 'load' "
        "(did you mean 'parallel'?)",
        "suite.yaml:7:14: repetitions: 0 is not allowed: must be an integer >= 1 or 'auto'",
        "suite.yaml:8:1: (top level): unknown key 'colour': allowed keys are name, description, "
        "host, models, prompts, checks, backend, api_key_env, modes, load, repetitions, "
        "min_repetitions, max_repetitions, target_cv, target_metric, cold_start, "
        "sample_interval_s, warmup, options, keep_alive, timeout_s, connect_timeout_s, "
        "first_token_timeout_s",
    ]


# --- response checks ------------------------------------------------------------------------------


def test_checks_of_every_kind_load() -> None:
    suite = parse_suite(
        textwrap.dedent(
            r"""
            name: s
            models: [m]
            prompts:
              - id: sum
                text: What is 2+2?
                checks:
                  contains: "4"
                  not_contains: ["5", "five"]
                  case_sensitive: true
                  min_words: 1
                  max_words: 30
                  max_sentences: 1
                  regex: "\\b4\\b"
                  equals: "4"
                  json: {schema: {type: integer}}
            """
        )
    )

    assert suite.prompts[0].checks == Checks(
        contains=["4"],
        not_contains=["5", "five"],
        case_sensitive=True,
        min_words=1,
        max_words=30,
        max_sentences=1,
        regex=r"\b4\b",
        equals="4",
        json=JsonCheck(schema={"type": "integer"}),
    )
    assert suite.checks is None


def test_prompt_checks_merge_over_the_suite_checks_key_by_key() -> None:
    suite = parse_suite(
        textwrap.dedent(
            """
            name: s
            models: [m]
            checks: {max_sentences: 1, not_contains: sorry, json: true}
            prompts:
              - plain
              - {id: empty, text: t, checks: {}}
              - {id: own, text: t, checks: {contains: "4", max_sentences: 2}}
              - {id: removed, text: t, checks: {max_sentences: null, json: false}}
              - id: none_left
                text: t
                checks: {max_sentences: null, not_contains: null, json: null}
              - {id: null_checks, text: t, checks: null}
            """
        )
    )
    merged = {prompt.id: suite.checks_for(prompt) for prompt in suite.prompts}

    defaults = Checks(max_sentences=1, not_contains=["sorry"], json=True)
    assert merged["p1"] == defaults
    assert merged["empty"] == defaults
    assert merged["own"] == Checks(
        contains=["4"], max_sentences=2, not_contains=["sorry"], json=True
    )
    assert merged["removed"] == Checks(not_contains=["sorry"])
    assert merged["none_left"] is None
    assert merged["null_checks"] == defaults


def test_no_checks_anywhere_gives_none() -> None:
    suite = parse_suite("name: s\nmodels: [m]\nprompts: [p, {id: q, text: t, checks: {}}]\n")
    assert [suite.checks_for(p) for p in suite.prompts] == [None, None]


def test_prompt_checks_apply_without_suite_checks() -> None:
    suite = parse_suite(
        "name: s\nmodels: [m]\nprompts: [{id: q, text: t, checks: {min_words: 3}}]\n"
    )
    assert suite.checks_for(suite.prompts[0]) == Checks(min_words=3)


def test_unknown_check_suggests_the_close_one() -> None:
    assert (
        only_problem(
            """
        name: s
        models: [m]
        prompts:
          - id: q
            text: What is 2+2?
            checks:
              max_sentence: 1
        """
        )
        == "suite.yaml:7:7: prompts[0].checks: unknown key 'max_sentence' "
        "(did you mean 'max_sentences'?)"
    )


def test_unknown_check_without_a_close_match_lists_the_checks() -> None:
    assert only_problem("name: s\nmodels: [m]\nprompts: [p]\nchecks: {flavour: sweet}\n") == (
        "suite.yaml:4:10: checks: unknown key 'flavour': allowed keys are contains, "
        "not_contains, equals, regex, min_words, max_words, max_sentences, json, case_sensitive"
    )


def test_bad_regex_names_the_pattern_and_the_re_error() -> None:
    assert only_problem(
        """
        name: s
        models: [m]
        prompts:
          - id: q
            text: What is 2+2?
            checks:
              regex: "(4"
        """
    ) == (
        "suite.yaml:7:14: prompts[0].checks.regex: '(4' is not a valid regular expression: "
        "missing ), unterminated subpattern at position 0"
    )


def test_bad_json_schema_points_inside_the_schema() -> None:
    assert only_problem(
        """
        name: s
        models: [m]
        prompts: [p]
        checks:
          json:
            schema:
              type: object
              properties:
                answer: {type: integr}
        """
    ) == (
        "suite.yaml:9:24: checks.json.schema.properties.answer.type: 'integr' is not valid in a "
        "JSON Schema (Draft 2020-12): 'integr' is not one of ['array', 'boolean', 'integer', "
        "'null', 'number', 'object', 'string'] (did you mean 'integer'?)"
    )


def test_json_schema_of_another_draft_is_checked_against_that_draft() -> None:
    assert only_problem(
        """
        name: s
        models: [m]
        prompts: [p]
        checks:
          json:
            schema:
              $schema: "http://json-schema.org/draft-04/schema#"
              maximum: 4
              exclusiveMaximum: 4
        """
    ) == (
        "suite.yaml:9:25: checks.json.schema.exclusiveMaximum: 4 is not valid in a JSON Schema "
        "(Draft 4): 4 is not of type 'boolean'"
    )


def test_json_schema_with_an_unknown_dialect() -> None:
    assert only_problem(
        "name: s\nmodels: [m]\nprompts: [p]\nchecks: {json: {schema: {$schema: 'draft-99'}}}\n"
    ) == (
        "suite.yaml:4:35: checks.json.schema.$schema: 'draft-99' is not a known JSON Schema "
        "dialect: leave $schema out for Draft 2020-12, or use e.g. "
        "'https://json-schema.org/draft/2020-12/schema' or 'http://json-schema.org/draft-07/schema#'"
    )


@pytest.mark.parametrize("ref", ["https://example.com/answer.json", "#/$defs/missing"])
def test_json_schema_ref_that_does_not_resolve_within_it(ref: str) -> None:
    assert only_problem(
        f"""
        name: s
        models: [m]
        prompts: [p]
        checks:
          json:
            schema:
              properties:
                answer: {{$ref: "{ref}"}}
        """
    ) == (
        f"suite.yaml:8:24: checks.json.schema.properties.answer.$ref: {ref!r} cannot be "
        "resolved: a $ref must point inside the schema, e.g. to '#/$defs/NAME' "
        "(novabench fetches no schemas)"
    )


def test_json_schema_value_that_is_not_json() -> None:
    assert only_problem(
        "name: s\nmodels: [m]\nprompts: [p]\nchecks: {json: {schema: {const: 2024-01-02}}}\n"
    ) == (
        "suite.yaml:4:33: checks.json.schema.const: 2024-01-02 is not a JSON value "
        "(YAML reads it as date): quote it"
    )


def test_json_check_that_is_neither_a_flag_nor_a_schema() -> None:
    assert only_problem("name: s\nmodels: [m]\nprompts: [p]\nchecks: {json: yes please}\n") == (
        "suite.yaml:4:16: checks.json: 'yes please' is not true, false or a {schema: ...} mapping"
    )


def test_min_words_above_max_words() -> None:
    assert only_problem(
        """
        name: s
        models: [m]
        prompts: [p]
        checks:
          min_words: 40
          max_words: 30
        """
    ) == ("suite.yaml:6:14: checks.max_words: 30 is not allowed: must be >= min_words (40)")


def test_prompt_word_limit_against_the_suite_one() -> None:
    assert problems(
        """
        name: s
        models: [m]
        checks: {min_words: 5, max_words: 10}
        prompts:
          - {id: short, text: t, checks: {max_words: 3}}
          - {id: long, text: t, checks: {min_words: 11}}
          - {id: unbounded, text: t, checks: {min_words: 11, max_words: null}}
        """
    ) == [
        "suite.yaml:5:46: prompts[0].checks.max_words: 3 is not allowed: "
        "must be >= min_words (5, from the suite's checks)",
        "suite.yaml:6:45: prompts[1].checks.min_words: 11 is not allowed: "
        "must be <= max_words (10, from the suite's checks)",
    ]


def test_negative_max_sentences() -> None:
    assert only_problem(
        """
        name: s
        models: [m]
        prompts:
          - id: q
            text: Hi.
            checks: {max_sentences: -1}
        """
    ) == (
        "suite.yaml:6:29: prompts[0].checks.max_sentences: -1 is not allowed: "
        "must be an integer >= 0"
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("{contains: 4}", "checks.contains: 4 is not a string or a list of strings"),
        ("{contains: []}", "checks.contains: [] is empty: at least one is required"),
        ("{equals: 4}", 'checks.equals: 4 is not a string: quote it, as in "4"'),
        ("{min_words: 1.5}", "checks.min_words: 1.5 is not an integer"),
        ("{case_sensitive: 'no'}", "checks.case_sensitive: 'no' is not true or false"),
        (
            "[max_sentences]",
            "checks: a list is not a mapping of checks, e.g. {contains: '4', max_sentences: 1}",
        ),
    ],
)
def test_check_values_of_the_wrong_kind(written: str, message: str) -> None:
    found = only_problem(f"name: s\nmodels: [m]\nprompts: [p]\nchecks: {written}\n")
    assert found.split(": ", 1)[1] == message


# --- problems with the file or its YAML -----------------------------------------------------------


def test_missing_file() -> None:
    with pytest.raises(SuiteError) as raised:
        load_suite("suites/nope.yaml")
    assert raised.value.problems == ["suites/nope.yaml: no such file"]


def test_directory_instead_of_a_file() -> None:
    Path("suites").mkdir()
    with pytest.raises(SuiteError) as raised:
        load_suite("suites")
    assert raised.value.problems == ["suites: is a directory, not a suite file"]


def test_file_that_is_not_utf8() -> None:
    Path("latin1.yaml").write_bytes(b"name: caf\xe9 \xff\n")
    with pytest.raises(SuiteError) as raised:
        load_suite("latin1.yaml")
    assert raised.value.problems == ["latin1.yaml: not UTF-8 text (invalid byte 0xe9 at offset 9)"]


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n# and another\n"])
def test_empty_file_or_only_comments(text: str) -> None:
    assert only_problem(text) == (
        "suite.yaml: empty suite: expected a mapping with name, models and prompts"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("- llama3.2\n- qwen3\n", "a list"),
        ("just some words\n", "a string 'just some words'"),
        ("42\n", "the int 42"),
        ("null\n", "null"),
    ],
)
def test_top_level_that_is_not_a_mapping(text: str, found: str) -> None:
    assert only_problem(text) == (
        "suite.yaml:1:1: (top level): expected a mapping with name, models and prompts, "
        f"found {found}"
    )


def test_yaml_syntax_error_with_its_position() -> None:
    assert only_problem(
        """
        name: s
        models: [m
        prompts: [p]
        """
    ) == (
        "suite.yaml:3:8: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 2)"
    )


def test_bad_indentation() -> None:
    assert only_problem("name: s\n  models: [m]\n") == (
        "suite.yaml:2:9: invalid YAML: mapping values are not allowed here"
    )


def test_two_documents_in_one_file() -> None:
    assert only_problem("name: a\n---\nname: b\n") == (
        "suite.yaml:2:1: invalid YAML: expected a single document in the stream, "
        "but found another document"
    )


def test_control_character() -> None:
    assert only_problem("name: s\x07\n") == (
        "suite.yaml:1:8: invalid YAML: character #x0007 is not allowed"
    )


def test_unsafe_python_tag_is_refused() -> None:
    assert (
        only_problem(
            """
        name: s
        models: [m]
        prompts:
          - !!python/object/apply:os.system ["echo pwned"]
        """
        )
        == "suite.yaml:4:5: tag '!!python/object/apply:os.system' is not allowed in a suite"
    )


def test_unknown_local_tag_is_refused() -> None:
    assert only_problem("name: !secret s\nmodels: [m]\nprompts: [p]\n") == (
        "suite.yaml:1:7: tag '!secret' is not allowed in a suite"
    )


def test_file_over_one_mib_is_refused_before_parsing() -> None:
    Path("huge.yaml").write_bytes(b"#" * (1024 * 1024 + 1))
    with pytest.raises(SuiteError) as raised:
        load_suite("huge.yaml")
    assert raised.value.problems == [
        "huge.yaml: 1,048,577 bytes is too large for a suite (limit 1,048,576 bytes, 1 MiB)"
    ]


def test_alias_bomb_is_refused() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for previous, name in zip("abcde", "bcdef", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    assert only_problem("\n".join(levels) + "\n") == (
        "suite.yaml: the document expands through YAML aliases to more than 100,000 nodes "
        "(limit 100,000): refusing a possible alias bomb ('billion laughs')"
    )


def test_recursive_alias_is_refused() -> None:
    assert only_problem("name: s\nmodels: &loop [m, *loop]\nprompts: [p]\n") == (
        "suite.yaml:2:9: recursive YAML alias: a node that contains itself is not allowed"
    )


def test_deep_nesting_is_refused_without_a_traceback() -> None:
    assert only_problem("name: " + "[" * 5000 + "]" * 5000 + "\n") == (
        "suite.yaml: invalid YAML: nested too deeply for a suite"
    )


def test_duplicate_top_level_key() -> None:
    assert (
        only_problem(
            """
        name: s
        models: [a]
        prompts: [p]
        models: [b]
        """
        )
        == "suite.yaml:4:1: models: duplicate key 'models' (first at line 2)"
    )


def test_duplicate_key_in_a_nested_mapping() -> None:
    assert (
        only_problem(
            """
        name: s
        models:
          - name: m
            options:
              seed: 1
              seed: 2
        prompts: [p]
        """
        )
        == "suite.yaml:6:7: models[0].options.seed: duplicate key 'seed' (first at line 5)"
    )


def test_key_that_yaml_reads_as_a_boolean() -> None:
    assert only_problem("name: s\nmodels: [m]\nprompts: [p]\nyes: 1\n") == (
        "suite.yaml:4:1: (top level): unknown key yes (YAML reads it as bool, not as a name)"
    )
