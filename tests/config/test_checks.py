"""Check specs in a suite: every kind loads, prompt checks merge, one line per mistake, describe."""

from __future__ import annotations

import textwrap

import pytest

from novabench.config.checks import JsonCheck, describe
from novabench.config.reading import parse_suite
from novabench.config.suite import Checks
from tests.config.suite_files import only_problem, problems

pytestmark = pytest.mark.usefixtures("suite_folder")


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


# --- describe -------------------------------------------------------------------------------------


def test_describe_gives_one_phrase_per_check_in_evaluate_order() -> None:
    spec = Checks.model_validate(
        {
            "contains": "4",
            "not_contains": ["5", "five"],
            "equals": "4",
            "regex": r"\b4\b",
            "min_words": 1,
            "max_words": 30,
            "max_sentences": 1,
            "json": True,
        }
    )
    assert describe(spec) == [
        "contains '4'",
        "does not contain '5' or 'five'",
        "equals '4'",
        r"matches /\b4\b/",
        "at least 1 word",
        "at most 30 words",
        "at most 1 sentence",
        "is JSON",
    ]


def test_describe_plurals_case_and_schema() -> None:
    spec = Checks.model_validate(
        {
            "contains": ["Paris", "France", "capital"],
            "case_sensitive": True,
            "min_words": 2,
            "max_sentences": 2,
            "json": {"schema": {"type": "string"}},
        }
    )
    assert describe(spec) == [
        "contains 'Paris', 'France' and 'capital' (case-sensitive)",
        "at least 2 words",
        "at most 2 sentences",
        "is JSON matching the schema",
    ]
