"""Run comparison and regression detection: the statistics, baselines, history, and the CLI."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from novabench.analysis.baselines import check_baseline
from novabench.analysis.compare import (
    IMPROVEMENT,
    NO_DIFFERENCE,
    REGRESSION,
    TOO_FEW,
    Finding,
    baseline_comparison,
    baseline_findings,
    compare_runs,
    history_changes,
    judge,
    parse_baseline,
)
from novabench.analysis.pruning import prune_runs
from novabench.analysis.significance import WITHIN_NOISE, smallest_p
from novabench.cli import cli
from novabench.errors import BaselineError, RunNotFoundError
from novabench.storage.prune import PruneRule, plan_prune
from novabench.storage.schema import MIGRATIONS, SCHEMA_VERSION
from novabench.storage.store import Store
from tests.conftest import write_suite
from tests.history import FAST, HOST, SLOW, add_run
from tests.ollama_double import FakeModel, OllamaDouble

SEPARATED_P = 2 / 12870  # exact two-sided p of 8 values wholly below 8 others


def by_metric(findings: list[Finding]) -> dict[str, Finding]:
    return {f.metric: f for f in findings}


# ---- the test itself ----------------------------------------------------------------------


def test_separated_samples_are_significant_in_their_direction() -> None:
    assert judge(FAST, SLOW, higher_is_worse=True) == (REGRESSION, pytest.approx(SEPARATED_P))
    assert judge(SLOW, FAST, higher_is_worse=True) == (IMPROVEMENT, pytest.approx(SEPARATED_P))
    assert judge(FAST, SLOW, higher_is_worse=False) == (IMPROVEMENT, pytest.approx(SEPARATED_P))


def test_overlapping_samples_are_within_noise() -> None:
    interleaved = [v + 0.5 for v in FAST]
    verdict, p_value = judge(FAST, interleaved, higher_is_worse=True)
    assert verdict == WITHIN_NOISE
    assert p_value is not None and p_value > 0.5


def test_too_few_repetitions_are_never_called_significant() -> None:
    assert judge([1.0, 2.0], [5.0, 6.0], True) == (TOO_FEW, None)
    assert smallest_p(3, 3) == pytest.approx(0.1)
    # three against three, wholly separated: the best p possible is 0.1
    assert judge([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], True) == (TOO_FEW, pytest.approx(0.1))
    assert judge(FAST[:4], SLOW[:4], True) == (TOO_FEW, pytest.approx(2 / 70))
    assert judge(FAST[:5], SLOW[:5], True) == (REGRESSION, pytest.approx(2 / 252))


def test_identical_samples_are_no_difference() -> None:
    assert judge([5.0] * 4, [5.0] * 4, True) == (NO_DIFFERENCE, None)
    assert judge(FAST, list(reversed(FAST)), True) == (NO_DIFFERENCE, None)


# ---- two stored runs ----------------------------------------------------------------------


def test_compare_runs_medians_change_p_value_and_direction(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    a = add_run(store, "A", 0, FAST, tokens_per_s=[50.0 + i for i in range(8)])
    b = add_run(store, "B", 1, [v - 50 for v in FAST], tokens_per_s=[30.0 + i for i in range(8)])
    comparison = compare_runs(store, a, b)
    found = by_metric(comparison.findings)
    assert comparison.baseline_run_ids == ["A"] and comparison.notes == []

    ttft = found["ttft_ms"]  # TTFT down: better
    assert (ttft.mode, ttft.model, ttft.host, ttft.prompt_id) == ("sequential", "m", HOST, "p1")
    assert (ttft.n_a, ttft.n_b) == (8, 8)  # warm-up, cold start and failure left out
    assert ttft.median_a == pytest.approx(103.5) and ttft.median_b == pytest.approx(53.5)
    assert ttft.change == pytest.approx(-50 / 103.5)
    assert ttft.p_value == pytest.approx(SEPARATED_P)
    assert ttft.verdict == IMPROVEMENT
    assert ttft.verdict_text == "improvement (p = 0.00016)"

    tps = found["eval_tokens_per_s"]  # tokens/s down: worse
    assert tps.median_a == pytest.approx(53.5) and tps.median_b == pytest.approx(33.5)
    assert tps.change_pct == pytest.approx(-20 / 53.5 * 100)
    assert tps.verdict == REGRESSION
    assert found["client_tokens_per_s"].verdict == REGRESSION
    assert found["itl_ms"].verdict == REGRESSION  # slower tokens, longer gaps
    assert comparison.significant[0].verdict == REGRESSION  # regressions listed first
    assert tps.exceeds(30) and not tps.exceeds(40)


def test_compare_runs_within_noise_and_metric_choice(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "A", 0, FAST)
    add_run(store, "B", 1, [v + 0.5 for v in FAST])
    comparison = compare_runs(store, "A", "B", metrics=["ttft_ms"])
    (only,) = comparison.findings
    assert only.verdict == WITHIN_NOISE and not only.significant
    assert only.verdict_text.startswith("within noise (p = 0.")


def test_too_few_repetitions_wording(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "A", 0, FAST[:3])
    add_run(store, "B", 1, SLOW[:3])
    ttft = by_metric(compare_runs(store, "A", "B").findings)["ttft_ms"]
    assert ttft.verdict == TOO_FEW
    assert ttft.verdict_text == "too few repetitions for p < 0.01 (n = 3 vs 3, p = 0.1)"


def test_a_changed_model_digest_and_ollama_version_are_flagged(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "A", 0, FAST)
    add_run(store, "B", 1, SLOW, digest="e" * 64, version="0.13.0")
    comparison = compare_runs(store, "A", "B")
    expected = ("m: model changed (digest dddddddddddd → eeeeeeeeeeee)", "Ollama 0.12.6 → 0.13.0")
    assert comparison.notes == list(expected)
    assert by_metric(comparison.findings)["ttft_ms"].notes == expected
    assert by_metric(comparison.findings)["ttft_ms"].verdict == REGRESSION  # still compared


def test_unknown_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "A", 0, FAST)
    with pytest.raises(RunNotFoundError, match="no run 'Z'"):
        compare_runs(store, "A", "Z")


# ---- baselines ----------------------------------------------------------------------------


def test_baseline_last_skips_other_suites_unfinished_and_later_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "R1", 0, FAST)
    add_run(store, "R2", 1, FAST, suite="other")
    add_run(store, "R3", 2, FAST, status="aborted")
    add_run(store, "R4", 3, FAST, status="interrupted")
    add_run(store, "R5", 4, SLOW)
    add_run(store, "R6", 5, SLOW)  # later: never a baseline of R5
    store.set_baseline("R5", "last", 10.0)
    comparison = baseline_comparison(store, "R5")
    assert comparison is not None
    assert comparison.baseline == "last" and comparison.baseline_run_ids == ["R1"]
    assert [f.metric for f in comparison.regressions] == ["ttft_ms", "e2e_ms"]
    assert [f.metric for f in comparison.failing] == ["ttft_ms"]  # e2e: +4.8%, within 10%
    assert baseline_findings(store, "R5") == comparison.findings
    assert baseline_comparison(store, "R6") is None  # no --baseline given
    assert baseline_findings(store, "R6") == []


def test_baseline_last_compares_only_the_same_digest(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "R1", 0, FAST)
    add_run(store, "R2", 1, SLOW, digest="e" * 64)
    store.set_baseline("R2", "last")
    comparison = baseline_comparison(store, "R2")
    assert comparison is not None and comparison.findings == []
    assert comparison.notes == [
        "m: model changed (digest dddddddddddd → eeeeeeeeeeee) since run R1: not compared",
        "no comparable earlier run of suite 'mini' (complete, same host, model digest, mode "
        "and prompt): nothing compared",
    ]


def test_no_earlier_run_is_one_note(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "R1", 0, FAST)
    store.set_baseline("R1", "median:3")
    comparison = baseline_comparison(store, "R1")
    assert comparison is not None and comparison.findings == [] and len(comparison.notes) == 1
    assert comparison.notes[0].startswith("no comparable earlier run of suite 'mini'")


def test_baseline_run_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "R1", 0, SLOW)
    add_run(store, "R2", 1, FAST)
    add_run(store, "R3", 2, SLOW)
    store.set_baseline("R3", "R1")
    comparison = baseline_comparison(store, "R3")
    assert comparison is not None and comparison.baseline_run_ids == ["R1"]
    assert by_metric(comparison.findings)["ttft_ms"].verdict == NO_DIFFERENCE


def test_baseline_median_pools_the_last_n_comparable_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "R1", 0, [900.0] * 8)  # too old for median:2
    add_run(store, "R2", 1, FAST)
    add_run(store, "R3", 2, [v + 8 for v in FAST], digest="e" * 64)  # another model digest
    add_run(store, "R4", 3, [v + 16 for v in FAST])
    add_run(store, "R5", 4, SLOW)
    store.set_baseline("R5", "median:2")
    comparison = baseline_comparison(store, "R5")
    assert comparison is not None and comparison.baseline_run_ids == ["R4", "R2"]
    ttft = by_metric(comparison.findings)["ttft_ms"]
    assert ttft.baseline_run_ids == ("R4", "R2")
    assert ttft.n_a == 16
    assert ttft.median_a == pytest.approx((107 + 116) / 2)
    assert ttft.verdict == REGRESSION


def test_baseline_median_reads_only_the_runs_it_pools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """median:N reads the raw rows of the runs its pools can use (found in the summaries), not
    of every earlier run, and pools what a scan of every earlier run would."""
    store = Store(tmp_path / "db.duckdb")
    for n in range(30):
        digest = "e" * 64 if n in (25, 26) else "d" * 64  # two runs of another model digest
        model = "m" if n % 3 else "other"  # one run in three measured another model only
        status = "aborted" if n == 27 else "complete"
        add_run(store, f"R{n:02d}", n, [v + n for v in FAST], digest=digest, model=model,
                status=status)  # fmt: skip
    add_run(store, "NEW", 40, SLOW)
    store.set_baseline("NEW", "median:3")
    read: list[list[str]] = []
    history = store.history

    def counted(*args: object, **kwargs: object) -> object:
        read.append(list(kwargs.get("run_ids") or []))
        return history(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "history", counted)
    comparison = baseline_comparison(store, "NEW")
    # newest first: R29, R28 measured model m with digest d; R27 was aborted, R26 and R25 had
    # another digest, R24 measured another model; then R23
    assert comparison is not None and comparison.baseline_run_ids == ["R29", "R28", "R23"]
    assert sorted(r for ids in read for r in ids if r != "NEW") == ["R23", "R28", "R29"]


def test_a_run_pruned_with_its_summaries_kept_is_never_a_baseline(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "R1", 0, FAST)
    add_run(store, "R2", 1, FAST)
    add_run(store, "R3", 2, SLOW)
    prune_runs(store, plan_prune(store, PruneRule(keep_last=2, keep_summaries=True)))
    assert store.get_run("R1").pruned_at is not None
    with store.connect() as con:
        con.execute("UPDATE runs SET pruned_at = now() WHERE run_id = 'R2'")  # as if pruned too
    for baseline in ("last", "median:2"):
        store.set_baseline("R3", baseline)
        comparison = baseline_comparison(store, "R3")
        assert comparison is not None and comparison.baseline_run_ids == [], baseline
        assert "no comparable earlier run" in " ".join(comparison.notes)


def test_parse_and_check_baseline(tmp_path: Path) -> None:
    assert parse_baseline("last").kind == "last"
    assert parse_baseline("median:5").runs == 5
    assert parse_baseline("20261127T100000Z-aaaa").run_id == "20261127T100000Z-aaaa"
    for bad in ("median:0", "median:x", "median:", "median:-1"):
        with pytest.raises(BaselineError, match="N must be a whole number of runs, at least 1"):
            parse_baseline(bad)
    store = Store(tmp_path / "db.duckdb")
    with pytest.raises(BaselineError) as raised:
        check_baseline(store, "nonsense")
    assert str(raised.value) == (
        f"--baseline 'nonsense': not 'last', 'median:N' or a run id in {store.path} "
        "('novabench runs' lists them)"
    )
    assert raised.value.exit_code == 2
    assert not store.path.exists()  # checking created no database
    add_run(store, "R1", 0, FAST)
    assert check_baseline(store, "R1").run_id == "R1"


def test_history_changes_against_the_previous_comparable_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_run(store, "R1", 0, FAST)
    add_run(store, "R2", 1, SLOW)  # regression against R1
    add_run(store, "R3", 2, FAST, status="aborted")  # improvement against R2, never a baseline
    add_run(store, "R4", 3, [v + 0.5 for v in SLOW])  # against R2: noise
    add_run(store, "R5", 4, FAST, digest="e" * 64)  # a new digest: nothing to compare with
    add_run(store, "R6", 5, FAST, suite="other")  # another suite: likewise
    changes = history_changes(store)
    assert sorted(changes) == ["R2", "R3"]
    assert {f.verdict for f in changes["R2"]} == {REGRESSION}
    assert {f.metric for f in changes["R2"]} == {"ttft_ms", "e2e_ms"}
    assert changes["R2"][0].baseline_run_ids == ("R1",)
    assert {f.verdict for f in changes["R3"]} == {IMPROVEMENT}


def test_migration_3_adds_the_baseline_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    with duckdb.connect(str(path)) as con:  # a database written before m003 shipped
        con.execute(
            "CREATE TABLE schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        for version, name, migrate in MIGRATIONS[:2]:
            migrate(con)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    store = Store(path)
    add_run(store, "R1", 0, FAST)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.get_run("R1")["baseline"] is None
    assert baseline_comparison(store, "R1") is None


# ---- the command line, against the double --------------------------------------------------

REPLY = "I am doing well, thank you for asking."


def run_ids(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY started_at").fetchall()]


def slower_double(port: int) -> OllamaDouble:
    """The same model name (so the same digest) on the same port, four times slower per token."""
    return OllamaDouble(
        models=[FakeModel("llama3.2", reply=REPLY, token_interval_s=0.016)], port=port
    )


def test_run_with_baseline_gates_regressions_and_compare_shows_them(
    ollama: OllamaDouble, isolated: Path
) -> None:
    suite = write_suite(
        isolated / "s.yaml",
        ollama.url,
        models="[llama3.2]",
        prompts='["Hi."]',
        modes="[sequential]",
        repetitions=8,
    )
    first = CliRunner().invoke(cli, ["run", str(suite), "--no-report", "--baseline", "last"])
    assert first.exit_code == 0, first.output
    assert "no comparable earlier run of suite 'mini'" in first.stdout
    ollama.stop()

    with slower_double(ollama.port):
        args = ["run", str(suite), "--no-report", "--baseline", "last"]
        gated = CliRunner().invoke(cli, [*args, "--fail-on-regression", "10"])
        assert gated.exit_code == 4, gated.output
        (run_a, run_b) = run_ids(isolated / "reports" / "novabench.duckdb")
        assert f"baseline last: run {run_a}" in gated.stdout
        assert (
            "gen rate, client (tok/s)" in gated.stdout
            and "regression (p = 0.00016)" in gated.stdout
        )
        assert "larger than 10%: exit 4" in gated.stdout

        tolerant = CliRunner().invoke(
            cli, ["run", str(suite), "--baseline", run_a, "--fail-on-regression", "500"]
        )
        assert tolerant.exit_code == 0, tolerant.output
        assert "regression (p = 0.00016)" in tolerant.stdout  # reported, within tolerance

    compared = CliRunner().invoke(cli, ["compare", run_a, run_b])
    assert compared.exit_code == 0, compared.output
    assert f"A = run {run_a}, B = run {run_b}" in compared.stdout
    assert "gen rate, server (tok/s)" in compared.stdout
    assert "regression (p = 0.00016)" in compared.stdout
    everything = CliRunner().invoke(cli, ["compare", run_a, run_b, "--all", "--metric", "ttft_ms"])
    assert everything.exit_code == 0
    assert "TTFT (ms)" in everything.stdout and "gen rate" not in everything.stdout


def test_a_regression_exit_4_takes_precedence_over_failed_requests_1(
    ollama: OllamaDouble, isolated: Path
) -> None:
    suite = write_suite(
        isolated / "s.yaml",
        ollama.url,
        models="[llama3.2, ghost]",
        prompts='["Hi."]',
        modes="[sequential]",
        repetitions=5,
    )
    assert CliRunner().invoke(cli, ["run", str(suite), "-q", "--no-report"]).exit_code == 1
    ollama.stop()
    with slower_double(ollama.port):
        args = ["run", str(suite), "-q", "--no-report", "--baseline", "last"]
        gated = CliRunner().invoke(cli, [*args, "--fail-on-regression", "10"])
        assert gated.exit_code == 4, gated.output
        assert gated.stdout == ""  # --quiet: the failures and the regressions, on stderr
        assert "failed: ghost p1" in gated.stderr  # the failures are still shown
        assert "Error: regression: sequential llama3.2 p1" in gated.stderr
        assert gated.stderr.endswith("larger than 10%: exit 4\n")
        tolerant = CliRunner().invoke(cli, [*args, "--fail-on-regression", "500"])
        assert tolerant.exit_code == 1  # no regression beyond the tolerance: the failures count


def test_bad_baseline_is_one_error_line_before_anything_runs(
    ollama: OllamaDouble, isolated: Path
) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url)
    result = CliRunner().invoke(cli, ["run", str(suite), "--baseline", "nonsense"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --baseline 'nonsense': not 'last', 'median:N' or a run id in "
        "reports/novabench.duckdb ('novabench runs' lists them)\n"
    )
    result = CliRunner().invoke(cli, ["run", str(suite), "--baseline", "median:0"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --baseline 'median:0': N must be a whole number of runs, at least 1, "
        "as in median:5\n"
    )
    assert ollama.requests == [] and not (isolated / "reports").exists()


def test_fail_on_regression_needs_a_baseline(ollama: OllamaDouble, isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url)
    result = CliRunner().invoke(cli, ["run", str(suite), "--fail-on-regression", "10"])
    assert result.exit_code == 2
    assert "Error: --fail-on-regression needs --baseline" in result.stderr
    assert ollama.requests == []


def test_compare_prints_untrusted_names_safely_and_counts_hidden_rows(isolated: Path) -> None:
    store = Store(isolated / "reports" / "novabench.duckdb")
    model = "evil\x1b[31m[bold]x"
    add_run(store, "A", 0, FAST, model=model)
    add_run(store, "B", 1, SLOW, model=model)
    result = CliRunner().invoke(cli, ["compare", "A", "B"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "evil\\x1b[31m[bold]x" in result.stdout  # shown as an escape, never as markup
    assert "TTFT (ms)" in result.stdout and "+96.6%" in result.stdout
    assert "3 rows not significant: 3 no difference (--all shows them)" in result.stdout
    everything = CliRunner().invoke(cli, ["compare", "A", "B", "--all"])
    assert "identical samples" in everything.stdout and "not significant" not in everything.stdout


def test_compare_unknown_run(ollama: OllamaDouble, isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url, modes="[sequential]", repetitions=1)
    assert CliRunner().invoke(cli, ["run", str(suite), "-q", "--no-report"]).exit_code == 0
    (run_id,) = run_ids(isolated / "reports" / "novabench.duckdb")
    result = CliRunner().invoke(cli, ["compare", run_id, "20990101T000000Z-dead"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no run '20990101T000000Z-dead' in reports/novabench.duckdb: "
        "'novabench runs' lists them\n"
    )
