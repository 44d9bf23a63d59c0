"""Ctrl-C and SIGTERM in every phase of every command: exit 130 and one `Error:` line, promptly,
never a traceback; while Python is still importing too."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import novabench.report
from novabench import Store, load_suite, run_suite
from novabench.cli import cli
from novabench.report import render_all, render_run
from tests.conftest import REPO, write_suite
from tests.ollama_double import OllamaDouble

EXIT_INTERRUPTED = 130
# Far below the lock timeout the children are given: a signal must not wait for it.
PROMPTLY_S = 20.0
LOCK_TIMEOUT_S = "120"


class Child:
    """A novabench process started with `-X importtime`: its stderr is read as it comes, the
    import lines (which say how far Python has got) kept apart from what novabench prints."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-X", "importtime", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NOVABENCH_DB_LOCK_TIMEOUT_S": LOCK_TIMEOUT_S, **(env or {})},
        )
        self.imported: list[str] = []
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.startswith("import time:"):
                self.imported.append(line.rsplit("|", 1)[-1].strip())
            else:
                self.stderr.append(line.rstrip("\n"))

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout.append(line.rstrip("\n"))

    def wait_until(self, done: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert self.process.poll() is None, f"ended before {what}: {self.stderr}"
            assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
            time.sleep(0.01)

    def wait_for_import(self, module: str) -> None:
        self.wait_until(lambda: module in self.imported, f"import of {module}")

    def interrupt(self, signum: int) -> tuple[int, float]:
        """Send `signum`; the exit code and how long the process took to end."""
        assert self.process.poll() is None, f"ended before the signal: {self.stderr}"
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=PROMPTLY_S)
        finally:
            self.process.kill()
        for reader in self._readers:
            reader.join(timeout=10)
        return code, time.monotonic() - sent

    def assert_interrupted(self, signum: int, line: str = "Error: interrupted") -> None:
        code, seconds = self.interrupt(signum)
        assert "Traceback" not in "\n".join(self.stderr)
        assert (code, self.stderr) == (EXIT_INTERRUPTED, [line])
        assert seconds < PROMPTLY_S


SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


# ---- while Python imports ----------------------------------------------------------------------


def console_script(folder: Path) -> Path:
    """The `novabench` script pip writes for pyproject.toml's [project.scripts] entry."""
    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = target["novabench"].split(":")
    script = folder / "novabench"
    script.write_text(
        "import re\nimport sys\n"
        f"from {module} import {function}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({function}())\n"
    )
    return script


@pytest.mark.timeout(300)
@pytest.mark.parametrize("entry", ["python -m novabench", "console script"])
@pytest.mark.parametrize("signum", SIGNALS)
def test_an_interrupt_while_python_imports_is_one_line(
    tmp_path: Path, entry: str, signum: int
) -> None:
    # Reading a FIFO nobody writes waits for ever: the process can end only by the signal.
    os.mkfifo(tmp_path / "suite.yaml")
    program = (
        ["-m", "novabench"] if entry == "python -m novabench" else [str(console_script(tmp_path))]
    )
    while_importing = []
    for delay_s in (0.0, 0.05, 0.1, 0.2, 0.4):
        child = Child([*program, "validate", "suite.yaml"])
        # The clock starts when novabench's code runs: before that it is the interpreter's own
        # start-up (site, the venv's .pth files), which no program can guard.
        child.wait_for_import("novabench.entry")
        time.sleep(delay_s)
        while_importing.append("novabench.cli" not in child.imported)
        child.assert_interrupted(signum)
    # Some signals landed while the CLI was being imported (they take effect once it is done).
    assert any(while_importing)


# ---- while the first requests are on their way ------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[tuple[str, threading.Event]]:
    """A server that accepts connections and never answers: (its URL, set once one connects)."""
    listener = socket.create_server(("127.0.0.1", 0))
    connected = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            connected.set()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", connected
    listener.close()
    for conn in held:
        conn.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", ["run", "models"])
@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_while_a_server_never_answers(
    tmp_path: Path, silent_server: tuple[str, threading.Event], command: str, signum: int
) -> None:
    url, connected = silent_server
    write_suite(tmp_path / "s.yaml", url, models="[llama3.2]", modes="[sequential]")
    args = ["run", "s.yaml", "--db", "db.duckdb"] if command == "run" else ["models", "--host", url]
    child = Child(["-m", "novabench", *args])
    child.wait_until(connected.is_set, "connection to the server")
    time.sleep(0.2)
    child.assert_interrupted(signum)
    if command == "run":
        assert not (tmp_path / "db.duckdb").exists()  # stopped before any run was made


# ---- while another process holds the database --------------------------------------------------


@pytest.fixture
def stored(ollama: OllamaDouble, tmp_path: Path) -> tuple[Path, str]:
    """A database holding one complete run: (its path, the run id)."""
    db = tmp_path / "db.duckdb"
    suite = write_suite(tmp_path / "s.yaml", ollama.url, models="[llama3.2]", modes="[sequential]")
    return db, run_suite(load_suite(suite), Store(db)).run_id


def hold_database(path: Path) -> subprocess.Popen[str]:
    """Another process that opens `path` with DuckDB and keeps it open until killed."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time\ncon = duckdb.connect({str(path)!r})\n"
            "print('open', flush=True)\ntime.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "open\n"
    return holder


WAITING_COMMANDS = {
    "runs": ["runs"],
    "report": ["report", "--latest", "--out", "out"],
    "history": ["history", "--out", "out"],
    "export": ["export", "--format", "csv", "--out", "x.csv"],
    "compare": ["compare", "RUN", "RUN"],
    "run": ["run", "s.yaml"],  # marking abandoned runs, before the run starts
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("command", "signum"),
    [pytest.param(name, signal.SIGTERM, id=f"{name}-SIGTERM") for name in WAITING_COMMANDS]
    + [pytest.param("runs", signal.SIGINT, id="runs-SIGINT")],
)
def test_a_signal_while_waiting_for_the_database(
    stored: tuple[Path, str], command: str, signum: int
) -> None:
    db, run_id = stored
    holder = hold_database(db)
    try:
        args = [a.replace("RUN", run_id) for a in WAITING_COMMANDS[command]]
        child = Child(["-m", "novabench", *args, "--db", str(db)])
        child.wait_for_import("novabench.cli")
        time.sleep(1.0)  # the command has started, and is retrying to open the file
        child.assert_interrupted(signum)
    finally:
        holder.kill()
        holder.wait()
    assert [r["run_id"] for r in Store(db).list_runs()] == [run_id]


class _GatedOllama(BaseHTTPRequestHandler):
    """Answers /api/version only once `gate` is set; no models installed."""

    asked = threading.Event()
    gate = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/api/version":
            self.asked.set()
            self.gate.wait(60)
            self._json({"version": "0.12.6"})
        elif self.path == "/api/tags":
            self._json({"models": []})
        else:
            self._json({"error": "not found"}, 404)

    def do_POST(self) -> None:  # noqa: N802
        self._json({"error": "not found"}, 404)

    def _json(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_while_the_run_waits_to_store_its_run(tmp_path: Path, signum: int) -> None:
    handler = type(
        "Gated", (_GatedOllama,), {"asked": threading.Event(), "gate": threading.Event()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    write_suite(tmp_path / "s.yaml", url, models="[llama3.2]", modes="[sequential]")
    child = Child(["-m", "novabench", "run", "s.yaml", "--db", "db.duckdb"])
    holder = None
    try:
        child.wait_until(handler.asked.is_set, "the run's first request")
        # The run has checked for the database (there was none); now another process takes it,
        # and the run, once its server answers, waits to write its run row.
        holder = hold_database(tmp_path / "db.duckdb")
        handler.gate.set()
        time.sleep(1.0)
        child.assert_interrupted(signum)
    finally:
        handler.gate.set()
        server.shutdown()
        if holder is not None:
            holder.kill()
            holder.wait()
    assert Store(tmp_path / "db.duckdb").list_runs() == []


# ---- while reports are written -----------------------------------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_while_history_writes_pages(
    ollama: OllamaDouble, tmp_path: Path, signum: int
) -> None:
    db = tmp_path / "db.duckdb"
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url, modes="[sequential]"))
    run_ids = [run_suite(suite, Store(db)).run_id for _ in range(4)]
    child = Child(["-m", "novabench", "history", "--db", str(db), "--out", "out"])
    child.wait_until(lambda: bool(child.stdout), "the first page")
    child.assert_interrupted(signum)
    pages = sorted((tmp_path / "out").rglob("*"))
    assert [p.name for p in pages if p.name.startswith(".")] == []  # no half-written page
    written = [p for p in pages if p.suffix == ".html"]
    assert 1 <= len(written) < len(run_ids) + 2  # it stopped part way
    for page in written:
        assert page.read_text().rstrip().endswith("</html>")


def test_a_signal_while_run_writes_its_report(
    ollama: OllamaDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def signal_midway(store: Store, run_id: str, out_dir: Path) -> list[Path]:
        render_run(store, run_id, out_dir)
        os.kill(os.getpid(), signal.SIGTERM)  # the run's own handler takes it
        return render_all(store, run_id, out_dir)

    monkeypatch.setattr(novabench.report, "render_all", signal_midway)
    suite = write_suite(tmp_path / "s.yaml", ollama.url, models="[llama3.2]", modes="[sequential]")
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(cli, ["run", str(suite), "--db", "db.duckdb"])
    store = Store(tmp_path / "db.duckdb")
    ((run_id, status),) = [(r["run_id"], r["status"]) for r in store.list_runs()]
    assert result.exit_code == EXIT_INTERRUPTED and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1] == (
        f"Error: interrupted while writing the report: the results are kept (run {run_id} in "
        f"db.duckdb): 'novabench report {run_id} --db db.duckdb --out DIR' writes the report"
    )
    assert status == "complete" and len(store.results(run_id)) == 5
    assert signal.getsignal(signal.SIGTERM) == before  # the run's handler is gone


@pytest.mark.timeout(120)
def test_a_second_signal_says_it_stops_at_once(ollama: OllamaDouble, tmp_path: Path) -> None:
    write_suite(
        tmp_path / "s.yaml", ollama.url, models="[llama3.2]", modes="[sequential]", repetitions=200
    )
    child = Child(["-m", "novabench", "run", "s.yaml", "--db", "db.duckdb"])
    child.wait_until(lambda: len(child.stderr) >= 3, "the first requests")
    child.process.send_signal(signal.SIGINT)
    # Apart: two signals before Python's handler runs are one. The first one's stop (storing
    # what finished, then the report) takes far longer than this.
    time.sleep(0.1)
    code, _ = child.interrupt(signal.SIGINT)
    errors = [line for line in child.stderr if line.startswith("Error:")]
    assert code == EXIT_INTERRUPTED and "Traceback" not in "\n".join(child.stderr)
    assert errors == ["Error: interrupted again: stopping at once; what is stored stays stored"]
