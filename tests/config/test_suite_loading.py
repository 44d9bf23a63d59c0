"""Suite files that load: the schema's values and defaults, hosts, options, provenance."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from novabench.config.hosts import DEFAULT_HOST, normalize_host
from novabench.config.reading import load_suite, parse_suite
from novabench.config.suite import Checks, ModelSpec, OllamaOptions, PromptSpec, Suite
from novabench.errors import SuiteError
from tests.config.suite_files import SHIPPED, only_problem

pytestmark = pytest.mark.usefixtures("suite_folder")


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
