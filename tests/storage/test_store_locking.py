"""Several processes on one DuckDB file: lock retries with backoff, the limit, and its message."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from novabench.cli import cli
from novabench.errors import StoreError
from novabench.storage.store import Store
from tests.conftest import FAST_MODELS, write_suite
from tests.history import make_run
from tests.ollama_double import OllamaDouble

# `novabench` itself, with the store's debug log (its lock waits) on stderr.
NOVABENCH = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.WARNING, format='%(name)s: %(message)s')\n"
    "logging.getLogger('novabench.storage.store').setLevel(logging.DEBUG)\n"
    "from novabench.entry import main\n"
    "sys.argv[0] = 'novabench'\n"
    "main()\n"
)
WAITED = re.compile(r"waited ([0-9.]+) s \((\d+) tries\) for the lock")


def novabench(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", NOVABENCH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens `path` and keeps it open for `seconds`; started when it prints."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(path)!r})\n"
            "print('open', flush=True)\n"
            f"time.sleep({seconds})\n"
            "con.close()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "open\n"
    return holder


def test_an_open_waits_while_another_process_holds_the_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb", lock_timeout_s=20)
    make_run(store)
    holder = hold_lock(store.path, 0.5)
    try:
        started = time.monotonic()
        assert [r["run_id"] for r in store.list_runs()] == ["20261127T100000Z-aaaa"]
        waited_s = time.monotonic() - started
    finally:
        holder.wait(timeout=10)
    assert 0.2 < waited_s < 5
    assert len(store.lock_waits_s) == 1


def test_a_lock_held_past_the_limit_is_one_clear_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb", lock_timeout_s=0.3)
    store.schema_version()
    holder = hold_lock(store.path, 30)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            store.schema_version()
        assert time.monotonic() - started < 3
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert str(caught.value) == (
        f"{store.path} is locked by another process (pid {holder.pid}) for more than 0.3 s: "
        "wait for it to finish, or set NOVABENCH_DB_LOCK_TIMEOUT_S to wait longer"
    )


def test_the_cli_reports_a_lock_past_the_limit_set_in_the_environment(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = isolated / "reports" / "novabench.duckdb"
    Store(db).schema_version()
    monkeypatch.setenv("NOVABENCH_DB_LOCK_TIMEOUT_S", "0.2")
    holder = hold_lock(db, 30)
    try:
        result = CliRunner().invoke(cli, ["runs"])
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: reports/novabench.duckdb is locked by another process (pid {holder.pid}) for "
        "more than 0.2 s: wait for it to finish, or set NOVABENCH_DB_LOCK_TIMEOUT_S to wait "
        "longer"
    )


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_lock_timeout_in_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("NOVABENCH_DB_LOCK_TIMEOUT_S", value)
    with pytest.raises(StoreError) as caught:
        Store(tmp_path / "db.duckdb")
    assert str(caught.value) == (
        f"NOVABENCH_DB_LOCK_TIMEOUT_S={value!r}: expected a number of seconds (0 or more), e.g. 60"
    )


def test_other_open_errors_are_not_retried(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database.duckdb"
    path.write_text("plain text, not DuckDB\n" * 100)
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(path, lock_timeout_s=30).schema_version()
    assert time.monotonic() - started < 5


RUNS = 4
REPETITIONS = 3
PROMPTS = 2
MODES = 2


@pytest.mark.slow
def test_overlapping_runs_keep_every_row_while_reports_read(tmp_path: Path) -> None:
    models = [dataclasses.replace(m) for m in FAST_MODELS]
    db = tmp_path / "reports" / "novabench.duckdb"
    with OllamaDouble(models=models, num_parallel=4) as double:
        # one suite name each: runs of the same suite do not overlap (its lock file, exit 5)
        suites = [
            write_suite(
                tmp_path / f"s{i}.yaml",
                double.url,
                name=f"mini{i}",
                models="[" + ", ".join(m.name for m in models) + "]",
                repetitions=REPETITIONS,
                warmup=0,
            )
            for i in range(RUNS)
        ]
        writers = [novabench("run", str(s), "--db", str(db), "--quiet") for s in suites]
        readers: list[tuple[list[str], int, str, str]] = []

        def read_while_writing() -> None:
            while not db.exists() and any(w.poll() is None for w in writers):
                time.sleep(0.05)
            commands = (["runs", "--db", str(db)], ["history", "--db", str(db)])
            turn = 0
            while any(w.poll() is None for w in writers):
                args = commands[turn % 2]
                turn += 1
                reader = novabench(*args)
                out, err = reader.communicate(timeout=60)
                readers.append((args, reader.returncode, out, err))

        reading = threading.Thread(target=read_while_writing)
        reading.start()
        finished = [(w, *w.communicate(timeout=90)) for w in writers]
        reading.join(timeout=90)

    for writer, out, err in finished:
        assert writer.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert readers, "no report command ran while the runs wrote"
    for args, code, out, err in readers:
        assert code == 0, f"novabench {' '.join(args)}: stdout:\n{out}\nstderr:\n{err}"

    per_run = len(models) * PROMPTS * REPETITIONS * MODES
    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(
            con.execute("SELECT run_id, count(*) FROM results GROUP BY run_id").fetchall()
        )
        statuses = [r[0] for r in con.execute("SELECT status FROM runs").fetchall()]
        duplicates = con.execute(
            "SELECT count(*) FROM (SELECT run_id, mode, model, prompt_id, repetition "
            "FROM results GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
    assert statuses == ["complete"] * RUNS
    assert sorted(counts.values()) == [per_run] * RUNS
    assert sum(counts.values()) == RUNS * per_run
    assert duplicates == (0,)

    waits = [float(m.group(1)) for _, _, err in finished for m in WAITED.finditer(err)]
    waits += [float(m.group(1)) for *_, err in readers for m in WAITED.finditer(err)]
    summary = (
        f"{RUNS} runs x {per_run} rows, {len(readers)} report commands; "
        f"{len(waits)} opens waited for the lock"
    )
    if waits:
        waits.sort()
        summary += (
            f": median {waits[len(waits) // 2] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms, "
            f"total {sum(waits):.2f} s"
        )
    print(summary, file=sys.stderr)
