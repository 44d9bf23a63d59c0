"""Suites that do not load: one exact `FILE:LINE:COL: KEY.PATH: message` per problem."""

from __future__ import annotations

import pytest

from tests.config.suite_files import only_problem, problems

pytestmark = pytest.mark.usefixtures("suite_folder")


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
