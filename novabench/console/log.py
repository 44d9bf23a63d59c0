"""Plain log lines and JSON events for a run without a terminal (cron, pipes, --log-json)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import IO, Any

from novabench.analysis.figures import derive
from novabench.analysis.sweeps import level_name
from novabench.records import LevelSummary, RequestResult
from novabench.text import terminal_safe


def describe_result(result: RequestResult) -> str:
    """One plain line about a finished request (model output never appears in it)."""
    names = terminal_safe(f"{result.mode} {result.model} {result.prompt_id}")
    what = f"{names} #{result.repetition + 1}"
    if result.is_warmup:
        what += " (warm-up)"
    if result.is_cold:
        what += " (cold start)"
    if result.error is not None:
        return f"{what}: FAILED: {terminal_safe(result.error)}"
    figures = derive(result)
    parts = [f"ttft {figures.ttft_ms:.0f} ms" if figures.ttft_ms is not None else "no tokens"]
    if figures.eval_tokens_per_s is not None:
        parts.append(f"{figures.eval_tokens_per_s:.1f} tok/s")
    parts.append(f"e2e {figures.e2e_ms or 0:.0f} ms")
    return f"{what}: " + ", ".join(parts)


def describe_level(model: str, host: str, summary: LevelSummary) -> str:
    """One plain line about a finished load level: throughput, latency, errors, why it stopped."""
    where = level_name(summary.kind, summary.level)
    parts = [f"{summary.requests} requests"]
    if summary.output_tokens_per_s is not None:
        parts.append(f"{summary.output_tokens_per_s:.1f} tok/s")
        parts.append(f"{summary.requests_per_s or 0:.2f} req/s")
    for name, label in (("ttft_ms", "ttft"), ("e2e_ms", "e2e")):
        p50, p95 = summary.percentile(name, 50), summary.percentile(name, 95)
        if p50 is not None and p95 is not None:
            parts.append(f"{label} p50/p95 {p50:.0f}/{p95:.0f} ms")
    if summary.goodput_rps is not None:
        parts.append(f"goodput {summary.goodput_rps:.2f} req/s")
    if summary.errors:
        parts.append(f"{summary.errors} failed")
    if summary.stop_reason == "saturated":
        parts.append("saturated: sweep stops")
    elif summary.stop_reason == "failing":
        parts.append("too many failures: sweep stops")
    return f"load {terminal_safe(model)} @ {where}: " + ", ".join(parts)


class LogObserver:
    """One timestamped line per event, for cron and pipes."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def _log(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{stamp} {message}", file=self.stream, flush=True)

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int | None]) -> None:
        planned = sum(n or 0 for n in plan.values())
        more = " or more (some levels last a duration)" if None in plan.values() else ""
        self._log(f"run {run_id} started: {planned} requests{more}")

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None:
        pass

    def text_received(self, mode: str, model: str, piece: str) -> None:
        pass

    def request_finished(self, result: RequestResult) -> None:
        self._log(describe_result(result))

    def phase_finished(self, mode: str, wall_s: float) -> None:
        self._log(f"{mode} phase done in {wall_s:.2f} s")

    def level_finished(self, model: str, host: str, summary: LevelSummary) -> None:
        self._log(describe_level(model, host, summary))

    def server_warning(self, message: str) -> None:
        self._log(f"warning: {terminal_safe(message)}")


def _utc_stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def json_event_line(event: str, **fields: Any) -> str:
    """One JSON object on one line: ts (UTC ISO 8601), event, then the fields."""
    # json.dumps escapes control characters and newlines: a name can never break a line.
    return json.dumps({"ts": _utc_stamp(), "event": event, **fields}, default=str)


def log_json_event(event: str, stream: IO[str] | None = None, **fields: Any) -> None:
    """Write json_event_line(event, **fields) to `stream` (stderr)."""
    print(json_event_line(event, **fields), file=stream or sys.stderr, flush=True)


class JsonLogObserver:
    """One JSON object per event on stderr (--log-json); model output never goes into them.

    With errors_only (--quiet) only failed requests, errors and a failing run's end are written.
    """

    def __init__(self, stream: IO[str] | None = None, errors_only: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.errors_only = errors_only

    def _event(self, event: str, **fields: Any) -> None:
        log_json_event(event, self.stream, **fields)

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int | None]) -> None:
        if not self.errors_only:
            self._event(
                "run_started",
                run_id=run_id,
                planned_requests=None if None in plan.values() else sum(plan.values()),
                plan=[
                    {"mode": mode, "model": model, "requests": n}
                    for (mode, model), n in plan.items()
                ],
            )

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None:
        pass

    def text_received(self, mode: str, model: str, piece: str) -> None:
        pass

    def request_finished(self, result: RequestResult) -> None:
        if self.errors_only and result.error is None:
            return
        figures = derive(result)
        self._event(
            "request_finished",
            mode=result.mode,
            model=result.model,
            host=result.host,
            prompt_id=result.prompt_id,
            repetition=result.repetition,
            warmup=result.is_warmup,
            cold=result.is_cold,
            ok=result.error is None,
            error=result.error,
            ttft_ms=_rounded(figures.ttft_ms),
            e2e_ms=_rounded(figures.e2e_ms),
            eval_tokens_per_s=_rounded(figures.eval_tokens_per_s),
            output_tokens=result.eval_count,  # the server's count; None when it gave none
        )

    def phase_finished(self, mode: str, wall_s: float) -> None:
        if not self.errors_only:
            self._event("phase_finished", mode=mode, wall_s=round(wall_s, 3))

    def level_finished(self, model: str, host: str, summary: LevelSummary) -> None:
        if not self.errors_only:
            keys = (
                "kind", "level", "requests", "errors", "wall_s", "output_tokens_per_s",
                "requests_per_s", "goodput_rps", "ttft_ms_p50", "ttft_ms_p95", "ttft_ms_p99",
                "itl_ms_p50", "itl_ms_p95", "itl_ms_p99", "e2e_ms_p50", "e2e_ms_p95",
                "queue_ms_p50", "stop_reason",
            )  # fmt: skip
            chosen = {k: v for k, v in summary.as_dict().items() if k in keys}
            figures = {k: _rounded(v) if isinstance(v, float) else v for k, v in chosen.items()}
            self._event("level_finished", model=model, host=host, **figures)

    def server_warning(self, message: str) -> None:
        if not self.errors_only:
            self._event("warning", message=message)

    def run_finished(
        self,
        run_id: str,
        status: str,
        exit_code: int,
        requests: int,
        failed: int,
        report: str | None,
    ) -> None:
        if not self.errors_only or exit_code != 0:
            self._event(
                "run_finished",
                run_id=run_id,
                status=status,
                exit_code=exit_code,
                requests=requests,
                failed=failed,
                report=report,
            )
