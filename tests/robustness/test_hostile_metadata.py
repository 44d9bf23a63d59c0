"""Hostile answers around the chat (version, model lists, show, ps) and broken HTTP: each ends
in one line that says what the server did, never a traceback, and loses no row."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from novabench.cli import cli
from novabench.engines import CallLimits
from novabench.engines.ollama import OllamaBackend
from novabench.engines.transport import ConnectTimeout, NdjsonHttpClient
from novabench.errors import HostUnreachableError
from tests.conftest import write_suite
from tests.ollama_double import OllamaDouble
from tests.robustness.conftest import Figures
from tests.robustness.hostile_http import (
    CLOSE,
    NEVER,
    Answer,
    HostileHTTP,
    chunked,
    json_response,
    response,
)

NOT_OLLAMA = "answered something that is not what Ollama answers"
NOT_OPENAI = "answered something that is not what an OpenAI-compatible server answers"
TAGS = {
    "models": [
        {
            "name": "m:latest",
            "model": "m:latest",
            "size": 2019393189,
            "digest": "a80c4f17acd5" * 5 + "b72f",
            "details": {"family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4"},
        }
    ]
}
SHOW = {
    "details": {"family": "llama", "families": ["llama"], "parameter_size": "3.2B"},
    "parameters": 'stop                           "<|eot_id|>"',
    "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
    "capabilities": ["completion"],
}
PS = {"models": [{"name": "m:latest", "model": "m:latest", "size": 3000, "size_vram": 1000}]}
CHAT_LINES = [
    {"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": False},
    {"model": "m", "message": {"role": "assistant", "content": " there."}, "done": False},
    {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True,
     "done_reason": "stop", "eval_count": 2, "eval_duration": 20_000_000},
]  # fmt: skip
CHAT = response(
    "".join(json.dumps(line) + "\n" for line in CHAT_LINES), content_type="application/x-ndjson"
)
HEAD_OVER_64_KIB = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 70_000 + b"\r\n\r\n"
BROKEN_HTTP = {
    "bad-chunk-size": (
        chunked("HTTP/1.1 200 OK\nContent-Type: application/json", b"zz\r\n{}\r\n0\r\n\r\n"),
        "bad chunk size line: b'zz'",
    ),
    "lf-only-head": (
        b"HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 2\n\n{}",
        "response head lines end in LF, not CRLF",
    ),
    "head-over-64-kib": (HEAD_OVER_64_KIB, "response head larger than 64 KiB"),
    "not-http": (
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        "not an HTTP/1.x status line: 'SSH-2.0-OpenSSH_9.6'",
    ),
}


@pytest.fixture
def server() -> Any:
    """A hostile server that answers like Ollama with one model, 'm', until a test says not."""
    with HostileHTTP() as hostile:
        hostile.answer("/api/version", json_response({"version": "0.12.6"}))
        hostile.answer("/api/tags", json_response(TAGS))
        hostile.answer("/api/show", json_response(SHOW))
        hostile.answer("/api/ps", json_response(PS))
        hostile.answer("/api/chat", CHAT)
        yield hostile


def suite_file(tmp_path: Path, host: str, **overrides: object) -> Path:
    keys: dict[str, object] = {"models": "[m]", "modes": "[sequential]", "warmup": 0}
    keys.update({"timeout_s": 5, **overrides})
    return write_suite(tmp_path / "s.yaml", host, **keys)


def run_cli(suite: Path, tmp_path: Path, flags: tuple[str, ...] = ("--quiet",)) -> Result:
    """`novabench run` into tmp_path/db.duckdb, without a report."""
    db = tmp_path / "db.duckdb"
    return CliRunner().invoke(cli, ["run", str(suite), "--db", str(db), "--no-report", *flags])


def warnings_logged(result: Result) -> list[str]:
    """The warning lines of a run logged as plain lines (stderr is not a terminal here)."""
    return [line.split(" ", 1)[1] for line in result.stderr.splitlines() if " warning: " in line]


def stored(tmp_path: Path, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as con:
        return con.execute(query).fetchall()


def assert_one_error_line(result: Result, line: str, code: int = 3) -> None:
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    assert result.stderr == f"Error: {line}\n"


# ---- 1. malformed metadata --------------------------------------------------------------------

BAD_TAGS = [
    ([{"name": "m"}], "the body: [{'name': 'm'}] is not a JSON object"),
    ({"models": {"name": "m"}}, "models: {'name': 'm'} is not a list"),
    ({}, "models: missing"),
    ({"models": [{"name": "m", "size": "big"}]}, "models[0].size: 'big' is not a whole number"),
    ({"models": [{"name": "m", "size": 1.5}]}, "models[0].size: 1.5 is not a whole number"),
    ({"models": [{"name": "m", "size": True}]}, "models[0].size: True is not a whole number"),
    ({"models": [{"name": "m", "size": -1}]}, "models[0].size: -1 is negative"),
    (
        {"models": [{"name": "m", "size": 2**63}]},
        "models[0].size: 9223372036854775808 does not fit a signed 64-bit integer",
    ),
    (
        {"models": [{"name": "m", "digest": "ab\u0000cd"}]},
        "models[0].digest: 'ab\\x00cd' holds '\\x00': not storable text (a NUL or a "
        "lone surrogate)",
    ),
    (
        {"models": [{"name": "m\ud800"}]},
        "models[0].name: 'm\\ud800' holds '\\ud800': not storable text (a NUL or a lone surrogate)",
    ),
    ({"models": [{"size": 1}]}, "models[0]: {'size': 1} has neither a name nor a model"),
    (
        {"models": [{"name": "m", "details": []}]},
        "models[0].details: [] is not a JSON object",
    ),
    (
        {"models": [{"name": "m", "details": {"family": 7}}]},
        "models[0].details.family: 7 is not a string",
    ),
]


@pytest.mark.parametrize(("body", "problem"), BAD_TAGS)
def test_a_broken_model_list_makes_the_host_unusable(
    server: HostileHTTP, tmp_path: Path, figures: Figures, body: Any, problem: str
) -> None:
    server.answer("/api/tags", json_response(body))
    figures.hostile_inputs += 1
    result = run_cli(suite_file(tmp_path, server.url), tmp_path)
    assert_one_error_line(result, f"{server.url}/api/tags {NOT_OLLAMA}: {problem}")
    assert not (tmp_path / "db.duckdb").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (response("<html>login</html>", content_type="text/html"), NOT_OLLAMA + ": the body is "
         "not JSON: '<html>login</html>'"),
        (json_response({"version": 12}), NOT_OLLAMA + ": version: 12 is not a string"),
        (json_response({"ok": True}), NOT_OLLAMA + ": version: missing"),
        (response(b"[" * 100_000), NOT_OLLAMA + ": the body is JSON nested too deep"),
        (response("404 page not found", 404), "answered HTTP 404: 404 page not found"),
        (response("\x1b[31mred\nline", 500), "answered HTTP 500: \\x1b[31mred\\x0aline"),
        (
            response(b"", 307, extra_headers="Location: http://elsewhere/\r\n"),
            "answered HTTP 307: redirected to http://elsewhere/ (novabench does not follow "
            "redirects)",
        ),
    ],
)  # fmt: skip
def test_a_broken_version_answer_makes_the_host_unusable(
    server: HostileHTTP, tmp_path: Path, figures: Figures, raw: bytes, problem: str
) -> None:
    server.answer("/api/version", raw)
    figures.hostile_inputs += 1
    result = run_cli(suite_file(tmp_path, server.url), tmp_path)
    assert_one_error_line(result, f"{server.url}/api/version {problem}")


def test_a_broken_host_fails_only_its_models_and_loses_no_row(
    ollama: OllamaDouble, server: HostileHTTP, tmp_path: Path, figures: Figures
) -> None:
    server.answer("/api/tags", json_response({"models": [{"name": "m", "size": "big"}]}))
    figures.faults_injected += 1
    models = f"[llama3.2, {{name: m, host: '{server.url}'}}]"
    suite = suite_file(tmp_path, ollama.url, models=models, repetitions=2)
    result = run_cli(suite, tmp_path)
    assert "Traceback" not in result.output
    assert result.exit_code == 1
    rows = stored(tmp_path, "SELECT model, error FROM results ORDER BY model, seq")
    figures.rows_expected += 8  # 2 models x 2 prompts x 2 repetitions
    figures.rows_found += len(rows)
    reason = f"{server.url}/api/tags {NOT_OLLAMA}: models[0].size: 'big' is not a whole number"
    assert [error for model, error in rows if model == "llama3.2"] == [None] * 4
    assert [error for model, error in rows if model == "m"] == [reason] * 4
    assert f"failed: m p1: {reason}" in result.stderr


@pytest.mark.parametrize(
    ("show", "problem"),
    [
        ({**SHOW, "model_info": [1, 2]}, "model_info: [1, 2] is not a JSON object"),
        (
            {**SHOW, "model_info": {"general.architecture": "llama", "llama.context_length": "x"}},
            "model_info.llama.context_length: 'x' is not a whole number",
        ),
        (
            {**SHOW, "model_info": {"llama.context_length": 2**40}},
            "model_info.llama.context_length: 1099511627776 does not fit a signed 32-bit integer",
        ),
        (
            {**SHOW, "model_info": {"general.parameter_count": -5}},
            "model_info.general.parameter_count: -5 is negative",
        ),
        (
            {**SHOW, "model_info": {"\x1b[2J.context_length": None}},
            "model_info.\\x1b[2J.context_length: None is not a whole number",
        ),
        ({**SHOW, "parameters": ["stop"]}, "parameters: ['stop'] is not a string"),
        ({**SHOW, "capabilities": "completion"}, "capabilities: 'completion' is not a list"),
    ],
)
def test_a_broken_show_answer_leaves_show_info_empty_and_the_run_goes_on(
    server: HostileHTTP, tmp_path: Path, figures: Figures, show: Any, problem: str
) -> None:
    server.answer("/api/show", json_response(show))
    figures.hostile_inputs += 1
    result = run_cli(suite_file(tmp_path, server.url, repetitions=1), tmp_path, flags=())
    assert result.exit_code == 0, result.output
    warning = (
        f"{server.url}/api/show {NOT_OLLAMA}: {problem} (m: no show info kept; the run goes on)"
    )
    assert warnings_logged(result) == [f"warning: {warning}"]
    [(show_info, context_length, manifest)] = stored(
        tmp_path,
        "SELECT show_info, context_length, manifest FROM models JOIN runs USING (run_id)",
    )
    assert (show_info, context_length) == (None, None)
    assert json.loads(manifest)["server_warnings"] == [warning]
    rows = stored(tmp_path, "SELECT error, response_text FROM results")
    figures.rows_expected += 2
    figures.rows_found += len(rows)
    assert rows == [(None, "Hi there.")] * 2


@pytest.mark.parametrize(
    ("ps", "problem"),
    [
        (
            [PS],
            "the body: [{'models': [{'name': 'm:latest', 'model': 'm:latest', 'siz… is not a "
            "JSON object",
        ),
        (
            {"models": [{"name": "m:latest", "size": "big", "size_vram": 0}]},
            "models[0].size: 'big' is not a whole number",
        ),
        (
            {"models": [{"name": "m:latest", "size": 1, "size_vram": -1}]},
            "models[0].size_vram: -1 is negative",
        ),
    ],
)
def test_a_broken_ps_answer_records_no_loaded_size_and_the_run_goes_on(
    server: HostileHTTP, tmp_path: Path, figures: Figures, ps: Any, problem: str
) -> None:
    server.answer("/api/ps", json_response(ps))
    figures.hostile_inputs += 1
    result = run_cli(suite_file(tmp_path, server.url, repetitions=1), tmp_path, flags=())
    assert result.exit_code == 0, result.output
    assert warnings_logged(result) == [
        f"warning: {server.url}/api/ps {NOT_OLLAMA}: {problem} "
        "(m: no loaded size recorded; the run goes on)"
    ]
    assert stored(tmp_path, "SELECT loaded_size_bytes, loaded_vram_bytes FROM models") == [
        (None, None)
    ]
    rows = stored(tmp_path, "SELECT error FROM results")
    figures.rows_expected += 2
    figures.rows_found += len(rows)
    assert rows == [(None,), (None,)]


def test_warnings_are_json_events_with_log_json_and_silent_with_quiet(
    server: HostileHTTP, tmp_path: Path, figures: Figures
) -> None:
    server.answer("/api/ps", json_response({"models": "none"}))
    figures.hostile_inputs += 1
    suite = suite_file(tmp_path, server.url, repetitions=1, prompts="[hi]")
    result = run_cli(suite, tmp_path, flags=("--log-json",))
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    assert [e["message"] for e in events if e["event"] == "warning"] == [
        f"{server.url}/api/ps {NOT_OLLAMA}: models: 'none' is not a list "
        "(m: no loaded size recorded; the run goes on)"
    ]
    quiet = run_cli(suite, tmp_path)  # a warning is not a failure: a silent success
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_a_healthy_show_and_ps_are_stored(server: HostileHTTP, tmp_path: Path) -> None:
    """The other side of the tests above: the same server with good answers fills the facts."""
    result = run_cli(suite_file(tmp_path, server.url, repetitions=1), tmp_path, flags=())
    assert result.exit_code == 0, result.output
    assert warnings_logged(result) == []
    [(context_length, size, vram, show_info)] = stored(
        tmp_path,
        "SELECT context_length, loaded_size_bytes, loaded_vram_bytes, show_info FROM models",
    )
    assert (context_length, size, vram) == (131072, 3000, 1000)
    assert json.loads(show_info)["details"]["families"] == ["llama"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"data": {"id": "m"}}, "data: {'id': 'm'} is not a list"),
        ({"data": [{"id": 5}]}, "data[0].id: 5 is not a string"),
        ({"data": [{"object": "model"}]}, "data[0].id: missing"),
        ({"object": "list"}, "data: missing"),
    ],
)
def test_a_broken_openai_model_list_makes_the_host_unusable(
    tmp_path: Path, figures: Figures, body: Any, problem: str
) -> None:
    with HostileHTTP() as openai:
        openai.answer("/v1/models", json_response(body))
        figures.hostile_inputs += 1
        result = run_cli(suite_file(tmp_path, openai.url, backend="openai"), tmp_path)
    assert_one_error_line(result, f"{openai.url}/v1/models {NOT_OPENAI}: {problem}")


# ---- 2. host addresses -------------------------------------------------------------------------

BAD_HOSTS = [
    ("192.168.1.300:11434", "300 is not 0-255 (an IPv4 address is four numbers 0-255, e.g. "
     "192.168.1.30)"),
    ("010.0.0.1", "010 has a leading zero (an IPv4 address is four numbers 0-255, e.g. "
     "192.168.1.30)"),
    ("10.1:11434", "2 numbers where an IPv4 address has four (0-255 each, e.g. 192.168.1.30)"),
    ("gpu box:11434", "'gpu box' is not a host name label (1-63 letters, digits, hyphens or "
     "underscores, not starting or ending with a hyphen)"),
    ("-gpu.lan", "'-gpu' is not a host name label (1-63 letters, digits, hyphens or underscores, "
     "not starting or ending with a hyphen)"),
    ("gpu..lan", "the host name has an empty label ('..')"),
    ("a" * 64 + ".lan", f"'{'a' * 64}' is not a host name label (1-63 letters, digits, hyphens "
     "or underscores, not starting or ending with a hyphen)"),
    (".".join(["a" * 60] * 5), "the host name is 304 characters long (at most 253)"),
    ("http://[::g]:11434", "only an IPv6 address goes in brackets, e.g. '[::1]:11434'"),
    ("http://[10.0.0.1]:11434", "only an IPv6 address goes in brackets, e.g. '[::1]:11434'"),
    ("gpu-box:0", "the port must be a number 1-65535"),
]  # fmt: skip


@pytest.mark.parametrize(("host", "problem"), BAD_HOSTS)
def test_validate_refuses_a_host_that_is_not_an_address(
    isolated: Path, figures: Figures, host: str, problem: str
) -> None:
    figures.hostile_inputs += 1
    suite = isolated / "s.yaml"
    suite.write_text(f"name: s\nhost: '{host}'\nmodels: [m]\nprompts: [hi]\n")
    for command in ("validate", "run"):
        result = CliRunner().invoke(cli, [command, str(suite)])
        assert "Traceback" not in result.output
        assert result.exit_code == 2
        # the loader shortens a long value: the line ends with the problem in full
        assert result.stderr.startswith(f"Error: {suite}:2:7: host: '")
        assert result.stderr.endswith(f"' is not an Ollama address: {problem}\n")
        assert result.stderr.count("\n") == 1


def test_a_model_host_is_validated_too(isolated: Path) -> None:
    suite = isolated / "s.yaml"
    suite.write_text(
        "name: s\nmodels:\n  - {name: m, host: 'box.lan:1'}\n  - {name: n, host: 1.2.3.256}\n"
        "prompts: [hi]\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(suite)])
    assert_one_error_line(
        result,
        f"{suite}:4:21: models[1].host: '1.2.3.256' is not an Ollama address: 256 is not 0-255 "
        "(an IPv4 address is four numbers 0-255, e.g. 192.168.1.30)",
        code=2,
    )


def test_ollama_host_and_models_host_are_validated(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "192.168.1.300")
    suite = isolated / "s.yaml"
    suite.write_text("name: s\nmodels: [m]\nprompts: [hi]\n")
    result = CliRunner().invoke(cli, ["validate", str(suite)])
    assert_one_error_line(
        result,
        f"{suite}:1:1: host: $OLLAMA_HOST='192.168.1.300' is not an Ollama address: 300 is not "
        "0-255 (an IPv4 address is four numbers 0-255, e.g. 192.168.1.30)",
        code=2,
    )
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.endswith(
        "Error: Invalid value for --host: '192.168.1.300' is not an Ollama address: 300 is "
        "not 0-255 (an IPv4 address is four numbers 0-255, e.g. 192.168.1.30)\n"
    )


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("bücher.lan:8080", "http://xn--bcher-kva.lan:8080"),
        ("[fe80::1%eth0]:11434", "http://[fe80::1%eth0]:11434"),
        ("gpu-box.lan.", "http://gpu-box.lan.:11434"),
        ("255.255.255.255", "http://255.255.255.255:11434"),
    ],
)
def test_valid_unusual_hosts_pass(isolated: Path, host: str, url: str) -> None:
    suite = isolated / "s.yaml"
    suite.write_text(f"name: s\nhost: '{host}'\nmodels: [m]\nprompts: [hi]\n")
    result = CliRunner().invoke(cli, ["validate", str(suite)])
    assert result.exit_code == 0, result.output
    from novabench import load_suite

    assert load_suite(suite).host == url


# ---- 3. broken HTTP and silent servers ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/version", "/api/tags"])
@pytest.mark.parametrize("case", BROKEN_HTTP)
def test_broken_http_on_the_calls_before_the_chat(
    server: HostileHTTP, tmp_path: Path, figures: Figures, path: str, case: str
) -> None:
    raw, what = BROKEN_HTTP[case]
    server.answer(path, raw)
    figures.faults_injected += 1
    result = run_cli(suite_file(tmp_path, server.url), tmp_path)
    assert_one_error_line(result, f"{server.url}{path}: server answered with broken HTTP ({what})")


@pytest.mark.parametrize("case", BROKEN_HTTP)
def test_broken_http_on_the_chat_is_an_error_row(
    server: HostileHTTP, tmp_path: Path, figures: Figures, case: str
) -> None:
    raw, what = BROKEN_HTTP[case]
    server.answer("/api/chat", raw)
    figures.faults_injected += 1
    result = run_cli(suite_file(tmp_path, server.url, repetitions=1), tmp_path)
    assert "Traceback" not in result.output and result.exit_code == 1
    rows = stored(tmp_path, "SELECT error FROM results")
    figures.rows_expected += 2
    figures.rows_found += len(rows)
    assert rows == [(f"server answered with broken HTTP ({what})",)] * 2


def test_broken_chunking_mid_stream_says_after_how_many_chunks(
    server: HostileHTTP, tmp_path: Path, figures: Figures
) -> None:
    line = json.dumps(CHAT_LINES[0]).encode() + b"\n"
    server.answer(
        "/api/chat",
        chunked("HTTP/1.1 200 OK", b"%x\r\n%s\r\n" % (len(line), line), b"zz\r\n"),
    )
    figures.faults_injected += 1
    result = run_cli(suite_file(tmp_path, server.url, repetitions=1, prompts="[hi]"), tmp_path)
    assert result.exit_code == 1
    assert stored(tmp_path, "SELECT error, response_text FROM results") == [
        ("server answered with broken HTTP after 1 chunks (bad chunk size line: b'zz')", "Hi")
    ]


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_is_given_timeout_s(
    server: HostileHTTP, tmp_path: Path, figures: Figures
) -> None:
    server.answer("/api/version", NEVER)
    figures.faults_injected += 1
    started = time.monotonic()
    result = run_cli(suite_file(tmp_path, server.url, timeout_s=1), tmp_path)
    assert time.monotonic() - started < 15  # not the 30 s of before
    assert_one_error_line(
        result, f"{server.url}/api/version: connected, no answer within timeout_s=1"
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (CLOSE, "server closed the connection without an answer"),
        (
            Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{", close=False),
            "connected, the answer did not end within timeout_s=1",
        ),
        (
            Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{", close=True),
            "server closed the connection mid-body (49 bytes of Content-Length missing)",
        ),
    ],
)
def test_a_server_that_stops_answering_says_what_happened(
    server: HostileHTTP, tmp_path: Path, figures: Figures, answer: Answer, reason: str
) -> None:
    server.answer("/api/tags", answer)
    figures.faults_injected += 1
    result = run_cli(suite_file(tmp_path, server.url, timeout_s=1), tmp_path)
    assert_one_error_line(result, f"{server.url}/api/tags: {reason}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("first_token_timeout_s", "reason"),
    [(None, "no complete response within timeout_s=1"),
     (0.5, "no first token within first_token_timeout_s=0.5")],
)  # fmt: skip
def test_a_chat_that_never_answers_is_bounded(
    server: HostileHTTP,
    tmp_path: Path,
    figures: Figures,
    first_token_timeout_s: float | None,
    reason: str,
) -> None:
    server.answer("/api/chat", NEVER)
    figures.faults_injected += 1
    suite = suite_file(
        tmp_path,
        server.url,
        timeout_s=1,
        first_token_timeout_s=first_token_timeout_s,
        repetitions=1,
        prompts="[hi]",
    )
    started = time.monotonic()
    result = run_cli(suite, tmp_path)
    assert time.monotonic() - started < 15
    assert result.exit_code == 1 and "Traceback" not in result.output
    rows = stored(tmp_path, "SELECT error FROM results")
    figures.rows_expected += 1
    figures.rows_found += len(rows)
    assert rows == [(reason,)]


@pytest.mark.timeout(60)
def test_openai_servers_get_the_same_words(tmp_path: Path, figures: Figures) -> None:
    raw, _ = BROKEN_HTTP["bad-chunk-size"]
    with HostileHTTP() as openai:
        openai.answer("/v1/models", raw)
        figures.faults_injected += 3
        result = run_cli(suite_file(tmp_path, openai.url, backend="openai"), tmp_path)
        assert_one_error_line(
            result,
            f"{openai.url}/v1/models: server answered with broken HTTP (illegal chunk header: "
            "bytearray(b'zz\\r\\n'))",
        )
        openai.answer("/v1/models", NEVER)
        result = run_cli(suite_file(tmp_path, openai.url, backend="openai", timeout_s=1), tmp_path)
        assert_one_error_line(
            result, f"{openai.url}/v1/models: connected, no answer within timeout_s=1"
        )
        openai.answer("/v1/models", json_response({"object": "list", "data": [{"id": "m"}]}))
        openai.answer("/v1/chat/completions", raw)
        suite = suite_file(tmp_path, openai.url, backend="openai", repetitions=1, prompts="[hi]")
        result = run_cli(suite, tmp_path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    rows = stored(tmp_path, "SELECT error FROM results")
    figures.rows_expected += 1
    figures.rows_found += len(rows)
    assert rows == [
        ("server answered with broken HTTP (illegal chunk header: bytearray(b'zz\\r\\n'))",)
    ]


def test_the_models_command_says_what_the_server_answered(server: HostileHTTP) -> None:
    server.answer("/api/tags", json_response({"models": [{"name": "m", "size": -3}]}))
    result = CliRunner().invoke(cli, ["models", "--host", server.url])
    assert_one_error_line(
        result, f"{server.url}/api/tags {NOT_OLLAMA}: models[0].size: -3 is negative"
    )


def test_a_connect_timeout_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never_connects(self: NdjsonHttpClient, timeout_s: float) -> None:
        raise ConnectTimeout(f"no connection within {timeout_s:g} s")

    monkeypatch.setattr(NdjsonHttpClient, "_connect", never_connects)

    async def ask() -> None:
        backend = OllamaBackend("http://127.0.0.1:9", limits=CallLimits(3, 2))
        try:
            await backend.version()
        finally:
            await backend.aclose()

    with pytest.raises(HostUnreachableError) as caught:
        asyncio.run(ask())
    assert caught.value.reason == "no connection within connect_timeout_s=2"


def test_no_rows_were_lost(figures: Figures) -> None:
    """Runs last in this module: the tally of every test above."""
    assert figures.rows_lost == 0
