"""A finished result is written or the run stops, never dropped: values the database cannot hold,
a full disk, a database held by another process, a damaged or foreign database file."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from novabench import Store, load_suite, run_suite
from novabench.cli import cli
from novabench.errors import StoreError
from novabench.storage import journal as journal_files
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, Fault, OllamaDouble
from tests.robustness.conftest import Figures

SURROGATE_LINE = (
    b'{"model":"m","created_at":"2026-12-01T00:00:00Z",'
    b'"message":{"role":"assistant","content":" \\ud800 "},"done":false}'
)
# model name -> (fault, what its error row must say)
HOSTILE_VALUES = {
    "big-prompt": (Fault.done_fields(prompt_eval_count=2147483648), "prompt_eval_count=2147483648"),
    "huge-eval": (Fault.done_fields(eval_count=1e30), "eval_count=1e+30"),
    "huge-load": (Fault.done_fields(load_duration=1.5e300), "load_duration_ns=1.5e+300"),
    "negative": (Fault.done_fields(total_duration=-5), "total_duration_ns=-5"),
    "text-count": (Fault.done_fields(eval_count="big"), "eval_count='big'"),
    "surrogate": (
        Fault.malformed(after_tokens=1, line=SURROGATE_LINE),
        "response_text has invalid",
    ),
}
HEALTHY = ("llama3.2", "nemotron-mini", "wizardlm2")


def _hostile_double() -> OllamaDouble:
    models = [FakeModel(name, token_interval_s=0.002) for name in (*HEALTHY, *HOSTILE_VALUES)]
    return OllamaDouble(models=models)


def test_values_the_database_cannot_hold_become_error_rows_and_lose_nothing(
    tmp_path: Path, figures: Figures
) -> None:
    with _hostile_double() as double:
        for name, (fault, _) in HOSTILE_VALUES.items():
            for _ in range(4):  # every request of the model: 2 modes x 2 prompts
                double.add_fault(name, fault)
                figures.faults_injected += 1
        names = ", ".join((*HEALTHY, *HOSTILE_VALUES))
        path = write_suite(
            tmp_path / "s.yaml", double.url, models=f"[{names}]", repetitions=1, warmup=0
        )
        result = CliRunner().invoke(cli, ["run", str(path), "--db", "db.duckdb"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert (tmp_path / "runs").exists() or (tmp_path / "index.html").exists()  # report written
    store = Store(tmp_path / "db.duckdb")
    (run,) = store.list_runs()
    assert run["status"] == "complete"
    rows = store.results(run["run_id"])
    expected = 2 * 2 * (len(HEALTHY) + len(HOSTILE_VALUES))
    figures.rows_expected += expected
    figures.rows_found += len(rows)
    assert len(rows) == expected
    for row in rows:
        if row["model"] in HEALTHY:
            assert row["error"] is None, row
        else:
            shown = HOSTILE_VALUES[row["model"]][1]
            assert shown in row["error"], (row["model"], row["error"])
            assert row["error"].startswith("server sent values that cannot be stored: ")
    surrogate = next(r for r in rows if r["model"] == "surrogate")
    assert "\ufffd" in surrogate["response_text"]


def test_a_row_the_database_refuses_is_stored_alone_as_an_error_row(
    tmp_path: Path, figures: Figures
) -> None:
    """The last line of defence: a batch that fails is applied row by row."""
    from tests.history import make_run

    store = Store(tmp_path / "db.duckdb")
    run_id = make_run(store)
    good = {"table": "results", "run_id": run_id, "mode": "sequential", "model": "m", "host": "h"}
    good.update(prompt_id="p1", repetition=0, is_warmup=False, started_at="2026-12-01 00:00:00")
    good.update(chunk_count=1, response_bytes=10, response_text="ok", thinking_text="")
    good.update(start_offset_s=0.5)
    records = [
        {**good, "seq": 0},
        {**good, "seq": 1, "eval_count": 2**31},  # past make_storable: INTEGER cannot hold it
        {**good, "seq": 2},
    ]
    segment = tmp_path / "00000001.ndjson"
    journal_files.write_segment(segment, records)
    figures.hostile_inputs += 1
    problems = store.apply_journal([segment], records)
    rows = store.results(run_id)
    figures.rows_expected += 3
    figures.rows_found += len(rows)
    assert [r["seq"] for r in rows] == [0, 1, 2]
    assert rows[0]["error"] is None and rows[2]["error"] is None
    assert rows[1]["error"].startswith("the result could not be stored as received: ")
    assert len(problems) == 1 and problems[0].startswith("result 1: stored as an error row")


def _slow_suite(tmp_path: Path, url: str, repetitions: int = 30) -> Path:
    return write_suite(
        tmp_path / "s.yaml",
        url,
        models="[slow]",
        prompts="[hi]",
        modes="[sequential]",
        repetitions=repetitions,
        warmup=0,
        sample_interval_s=0.05,
    )


def _slow_double() -> OllamaDouble:
    return OllamaDouble(models=[FakeModel("slow", reply="one two three", token_interval_s=0.03)])


def _import(spill: Path, db: Path) -> str:
    result = CliRunner().invoke(cli, ["import", str(spill), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return result.output


def _spill_of(message: str) -> Path:
    words = [w.strip(":'") for w in message.split()]
    return Path(next(w for w in words if w.endswith(".ndjson") and "spill" in w)).resolve()


def test_a_storage_failure_stops_the_run_and_spills_what_the_database_lacks(
    tmp_path: Path, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seam for a full disk: the store refuses every write after the first few."""
    real = Store.apply_journal
    calls = [0]

    def fill_up(self: Store, paths: list[Path], records: list[dict[str, object]]) -> list[str]:
        calls[0] += 1
        if calls[0] > 3:
            raise StoreError(f"{self.path}: no space left on its disk (No space left on device)")
        return real(self, paths, records)

    monkeypatch.setattr(Store, "apply_journal", fill_up)
    figures.faults_injected += 1
    with _slow_double() as double:
        path = _slow_suite(tmp_path, double.url)
        result = CliRunner().invoke(cli, ["run", str(path), "--db", "db.duckdb"])
        sent = sum(1 for r in double.requests if r.path == "/api/chat")
    assert result.exit_code == 6, result.output
    assert "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert "the run stopped" in line and "novabench import" in line
    assert sent < 30  # no request is sent once the database fails
    finished = result.output.count(" slow p1 #")  # a log line per finished request
    assert sent - 1 <= finished <= sent  # the one in flight when it failed was cancelled
    spill = _spill_of(line)
    assert spill.parent == tmp_path  # beside the database
    monkeypatch.setattr(Store, "apply_journal", real)
    _import(spill, tmp_path / "db.duckdb")
    _import(spill, tmp_path / "db.duckdb")  # twice adds nothing twice
    store = Store(tmp_path / "db.duckdb")
    (run,) = store.list_runs()
    rows = store.results(run["run_id"])
    figures.rows_expected += finished
    figures.rows_found += len(rows)
    assert len(rows) == finished and [r["seq"] for r in rows] == list(range(finished))
    assert run["status"] == "aborted"
    assert not journal_files.journal_root(tmp_path / "db.duckdb").exists()


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the seam test "
                    "covers a full disk")  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 65536)
            file.flush()
    return filler


@pytest.mark.timeout(120)
def test_a_full_disk_stops_the_run_and_loses_nothing(tmp_path: Path, figures: Figures) -> None:
    with _tmpfs(tmp_path / "small", "8m") as small, _slow_double() as double:
        db = small / "db.duckdb"
        path = _slow_suite(tmp_path, double.url, repetitions=60)
        log = tmp_path / "stderr.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "novabench", "run", str(path), "--db", str(db)],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 60
        while log.read_text().count(" slow p1 #") < 5:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        filler = _fill(small)
        figures.faults_injected += 1
        assert process.wait(timeout=60) == 6, log.read_text()
        sent = sum(1 for r in double.requests if r.path == "/api/chat")
        errors = [x for x in log.read_text().splitlines() if x.startswith("Error:")]
        assert len(errors) == 1 and "Traceback" not in log.read_text(), log.read_text()
        assert sent < 60
        finished = log.read_text().count(" slow p1 #")
        spill = _spill_of(errors[0])
        filler.unlink()
        _import(spill, db)
        store = Store(db)
        (run,) = store.list_runs()
        rows = store.results(run["run_id"])
        figures.rows_expected += finished
        figures.rows_found += len(rows)
        assert len(rows) == finished >= sent - 1


HOLDER = """
import duckdb, sys, time
while True:
    try:
        con = duckdb.connect(sys.argv[1]); break
    except duckdb.IOException:
        time.sleep(0.005)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@pytest.mark.timeout(120)
def test_a_database_held_past_the_lock_timeout_stops_the_run_and_spills(
    tmp_path: Path, figures: Figures
) -> None:
    with _slow_double() as double:
        db = tmp_path / "db.duckdb"
        path = _slow_suite(tmp_path, double.url, repetitions=60)
        log = tmp_path / "stderr.log"
        env = {**os.environ, "NOVABENCH_DB_LOCK_TIMEOUT_S": "1"}
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "novabench", "run", str(path), "--db", str(db)],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
            )
        deadline = time.monotonic() + 60
        while log.read_text().count(" slow p1 #") < 5:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db), "4"], stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        figures.faults_injected += 1
        assert process.wait(timeout=60) == 6, log.read_text()
        sent = sum(1 for r in double.requests if r.path == "/api/chat")
    holder.wait(timeout=30)
    errors = [x for x in log.read_text().splitlines() if x.startswith("Error:")]
    assert len(errors) == 1, log.read_text()
    assert "locked by another process" in errors[0] and "the run stopped" in errors[0]
    _import(_spill_of(errors[0]), db)
    finished = log.read_text().count(" slow p1 #")
    store = Store(db)
    (run,) = store.list_runs()
    rows = store.results(run["run_id"])
    figures.rows_expected += finished
    figures.rows_found += len(rows)
    assert len(rows) == finished >= sent - 1


def test_a_duckdb_file_that_is_not_a_history_is_refused_untouched(
    tmp_path: Path, figures: Figures, ollama: OllamaDouble
) -> None:
    foreign = tmp_path / "other.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE runs (id INTEGER, athlete VARCHAR)")
    con.execute("INSERT INTO runs VALUES (1, 'kipchoge')")
    con.close()
    before = foreign.read_bytes()
    figures.hostile_inputs += 1
    suite = write_suite(tmp_path / "s.yaml", ollama.url)
    for args in (["runs"], ["history"], ["run", str(suite)], ["export", "--format", "csv",
                 "--out", "x.csv"]):  # fmt: skip
        result = CliRunner().invoke(cli, [*args, "--db", str(foreign)])
        assert result.exit_code != 0 and "Traceback" not in result.output, (args, result.output)
        assert result.output.strip().splitlines()[-1] == (
            f"Error: {foreign} is a DuckDB database but not a novabench history (it has the "
            "tables runs and no schema_migrations): novabench leaves it as it is; give another "
            "--db"
        ), args
    assert foreign.read_bytes() == before
    assert not any(ollama.requests)  # refused before anything was run


# DuckDB's file: three 4 KiB headers, then 256 KiB blocks (each starts with its checksum).
HEADERS_BYTES = 3 * 4096
BLOCK_BYTES = 256 * 1024


def _damaged_copy(tmp_path: Path, ollama: OllamaDouble, table: str = "results") -> Path:
    """A copy of a real history with one data block of `table` overwritten."""
    db = tmp_path / "db.duckdb"
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url, repetitions=3))
    run_suite(suite, Store(db))
    con = duckdb.connect(str(db), read_only=True)
    (block,) = con.execute(
        f"SELECT max(block_id) FROM pragma_storage_info('{table}') WHERE block_id >= 0"
    ).fetchone()
    con.close()
    data = bytearray(db.read_bytes())
    start = HEADERS_BYTES + block * BLOCK_BYTES + 512
    data[start : start + 4096] = os.urandom(4096)
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.mark.parametrize("table", ["results", "runs"])
def test_a_damaged_database_is_refused_before_a_run_is_added(
    tmp_path: Path, figures: Figures, ollama: OllamaDouble, table: str
) -> None:
    damaged = _damaged_copy(tmp_path, ollama, table)
    figures.hostile_inputs += 1
    with pytest.raises(StoreError, match="is damaged"):
        Store(damaged).check_health()
    requests_before = len(ollama.requests)
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml"), "--db", str(damaged)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert f"{damaged} is damaged" in line and "start a new history with --db" in line
    asked = [r.path for r in ollama.requests[requests_before:]]
    assert "/api/chat" not in asked, asked  # the preflight's metadata calls only
    con = duckdb.connect(str(damaged))
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)  # nothing was added
    con.close()


def test_every_reading_command_says_one_line_about_a_damaged_database(
    tmp_path: Path, figures: Figures, ollama: OllamaDouble
) -> None:
    damaged = _damaged_copy(tmp_path, ollama)
    for args in (["report", "--latest"], ["history"], ["runs"], ["export", "--format", "json",
                 "--out", "x.json"]):  # fmt: skip
        figures.hostile_inputs += 1
        result = CliRunner().invoke(cli, [*args, "--db", str(damaged)])
        assert "Traceback" not in result.output, (args, result.output)
        if result.exit_code != 0:  # the damaged block may not be one this command reads
            assert result.output.strip().splitlines()[-1].startswith(f"Error: {damaged}"), args


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("repetitions: 10000000000", "repetitions: 10000000000 is not allowed: must be an "
         "integer <= 10,000 or 'auto'"),
        ("warmup: 10000000000", "warmup: 10000000000 is not allowed: must be an integer <= 100"),
        ("repetitions: auto\nmax_repetitions: 100000", "max_repetitions: 100000 is not allowed: "
         "must be an integer <= 10000"),
        ("modes: [load]\nload: {concurrency: [1], requests_per_level: 99999999}",
         "load.requests_per_level: 99999999 is not allowed: must be an integer <= 1000000"),
    ],
)  # fmt: skip
def test_suite_caps_are_checked_by_validate(
    tmp_path: Path, figures: Figures, text: str, message: str
) -> None:
    figures.hostile_inputs += 1
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodels: [m]\nprompts: [p]\n" + text + "\n")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert message in result.output, result.output


def test_a_run_planning_too_many_requests_is_refused(tmp_path: Path, figures: Figures) -> None:
    figures.hostile_inputs += 1
    path = tmp_path / "s.yaml"
    prompts = ", ".join(f"p{i}" for i in range(60))
    path.write_text(
        f"name: s\nmodels: [a, b]\nprompts: [{prompts}]\nmodes: [parallel, sequential]\n"
        "repetitions: 5000\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert "would send 1,200,000 requests, more than 1,000,000 in one run" in result.output


@pytest.mark.timeout(60)
def test_sigterm_stops_a_run_of_a_missing_model_with_many_repetitions(
    tmp_path: Path, figures: Figures, ollama: OllamaDouble
) -> None:
    prompts = ", ".join(f"p{i}" for i in range(50))
    path = write_suite(
        tmp_path / "s.yaml",
        ollama.url,
        models="[missing-model, llama3.2]",
        prompts=f"[{prompts}]",
        modes="[sequential]",
        repetitions=10000,
        warmup=0,
    )
    figures.hostile_inputs += 1
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "novabench", "run", str(path), "--db", "db.duckdb"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 30
    while " started: " not in log.read_text(errors="replace"):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    time.sleep(1)  # well inside the missing model's 500,000 failed rows
    process.terminate()
    started = time.monotonic()
    assert process.wait(timeout=30) == 130, log.read_text()[-2000:]
    assert time.monotonic() - started < 10
    assert "Traceback" not in log.read_text(errors="replace")


def test_spill_files_are_recognised(tmp_path: Path) -> None:
    spill, failures = journal_files.write_spill(tmp_path / "db.duckdb", "r1", [{"table": "op"}])
    assert failures == [] and spill.parent == tmp_path
    header = journal_files.spill_header(spill)
    assert header is not None and header["run_id"] == "r1"
    (other := tmp_path / "x.ndjson").write_text(json.dumps({"a": 1}) + "\n")
    assert journal_files.spill_header(other) is None
    result = CliRunner().invoke(cli, ["import", str(other)])
    assert result.exit_code == 1
    assert result.output == f"Error: {other}: not a novabench spill file\n"


def test_no_rows_were_lost_here(figures: Figures) -> None:
    assert figures.rows_lost == 0
