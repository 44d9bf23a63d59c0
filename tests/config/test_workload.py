"""The suite's load section: what it accepts, its defaults, and one exact line per mistake."""

from __future__ import annotations

import pytest

from novabench.config.reading import parse_suite
from novabench.errors import SuiteError

BASE = "name: s\nmodels: [m]\nprompts: [hi, {id: q, text: yo}]\n"


def suite_with(extra: str):  # type: ignore[no-untyped-def]
    return parse_suite(BASE + extra, "s.yaml")


def problem(extra: str) -> str:
    with pytest.raises(SuiteError) as raised:
        suite_with(extra)
    assert raised.value.exit_code == 2
    assert len(raised.value.problems) == 1, raised.value.problems
    return raised.value.problems[0]


def test_a_concurrency_sweep_with_its_defaults() -> None:
    load = suite_with("modes: [load]\nload: {concurrency: [1, 4, 16]}\n").load
    assert load is not None and load.kind == "concurrency" and load.levels == [1, 4, 16]
    # four requests per stream, and never fewer than eight
    assert [load.requests_at(level) for level in load.levels] == [8, 16, 64]
    assert load.early_stop is True and load.slo_limits() == {}


def test_a_rate_sweep_with_slos_and_a_duration() -> None:
    suite = suite_with(
        "modes: [load, sequential]\n"
        "load: {rate: [0.5, 2], duration_s: 30, prompts: [q], slo: {ttft_ms: 500, itl_ms: 50}}\n"
    )
    load = suite.load
    assert load is not None and load.kind == "rate" and load.levels == [0.5, 2.0]
    assert load.requests_at(0.5) is None  # the duration bounds it
    assert load.slo_limits() == {"ttft_ms": 500.0, "itl_ms": 50.0}
    assert [p.id for p in suite.load_prompts()] == ["q"]


def test_rate_levels_default_to_ten_seconds_of_arrivals() -> None:
    load = suite_with("modes: [load]\nload: {rate: [0.2, 3]}\n").load
    assert load is not None and [load.requests_at(r) for r in load.levels] == [8, 30]


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (
            "modes: [load]\n",
            "s.yaml:4:9: modes[0]: 'load' needs a load section, "
            "e.g. load: {concurrency: [1, 2, 4, 8]}",
        ),
        (
            "modes: [load]\nload: {concurrency: [1, 2, 2]}\n",
            "s.yaml:5:28: load.concurrency[2]: 2 is not allowed: levels must increase (after 2)",
        ),
        (
            "modes: [load]\nload: {concurrency: [1, 0]}\n",
            "s.yaml:5:25: load.concurrency[1]: 0 is not allowed: must be 1..2048",
        ),
        (
            "modes: [load]\nload: {concurrency: [1, 2.5]}\n",
            "s.yaml:5:25: load.concurrency[1]: 2.5 is not an integer",
        ),
        (
            "modes: [load]\nload: {rate: [1, -2]}\n",
            "s.yaml:5:18: load.rate[1]: -2 is not allowed: must be a rate above 0 requests/s",
        ),
        (
            "modes: [load]\nload: {}\n",
            "s.yaml:5:7: load: {} needs levels: give concurrency: [1, 2, 4, ...] or rate: [...]",
        ),
        (
            "modes: [load]\nload: {concurrency: [1], prompts: [p1, zz]}\n",
            "s.yaml:5:40: load.prompts[1]: 'zz' is not a prompt id of this suite: "
            "choose from p1, q",
        ),
        (
            "load: {concurrency: [1]}\n",
            "s.yaml:4:7: load: a mapping is not run: add 'load' to modes",
        ),
        (
            "modes: [load]\nload: {concurrency: [1], slo: {ttft_ms: 0}}\n",
            "s.yaml:5:41: load.slo.ttft_ms: 0 is not allowed: must be a number > 0",
        ),
        (
            "modes: [load]\nload: {concurrency: [1], slo: {itl: 3}}\n",
            "s.yaml:5:32: load.slo: unknown key 'itl' (did you mean 'itl_ms'?)",
        ),
        (
            "modes: [load]\nload: {concurrency: [1], requests_per_level: 3, duration_s: 3}\n",
            "s.yaml:5:61: load.duration_s: 3 is not allowed beside requests_per_level: "
            "give one of them",
        ),
        (
            "modes: [load]\nload: {concurrency: [4], max_in_flight: 0}\n",
            "s.yaml:5:41: load.max_in_flight: 0 is not allowed: must be an integer >= 1",
        ),
        (
            "modes: [load]\nload: {concurency: [4]}\n",
            "s.yaml:5:8: load: unknown key 'concurency' (did you mean 'concurrency'?)",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_place_value_and_rule(extra: str, line: str) -> None:
    assert problem(extra) == line


def test_a_null_level_list_stands_for_none() -> None:
    # as in a run manifest's stored load section: the unused kind is null, not missing
    load = suite_with("modes: [load]\nload: {concurrency: [1, 2], rate: null}\n").load
    assert load is not None and load.kind == "concurrency" and load.levels == [1, 2]
    assert problem("modes: [load]\nload: {concurrency: null, rate: null}\n") == (
        "s.yaml:5:7: load: a mapping needs levels: give concurrency: [1, 2, 4, ...] or rate: [...]"
    )
