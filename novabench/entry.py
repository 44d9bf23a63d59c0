"""The `novabench` command's entry point, kept tiny: Ctrl-C or SIGTERM at any moment once it
runs, even while the CLI is still being imported, ends as one line and exit 130."""

from __future__ import annotations

import signal
import sys

EXIT_INTERRUPTED = 130
_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


def main() -> None:
    """Run the CLI; an interrupt ends it with `Error: interrupted` and exit 130."""
    # SIGTERM (kill, systemd, timeout) is an interrupt like Ctrl-C, so every command stops the
    # same way; `run` installs its own handlers while a run is going.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        # Importing the CLI takes a second or two, and an interrupt in the middle of it is not
        # safe: DuckDB's extension aborts the process, others turn it into an ImportError, or
        # print it as 'ignored' and go on. So signals wait until the import is done.
        signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
        try:
            from novabench.cli import cli
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)  # a waiting one is raised now
        cli.main(prog_name="novabench")
    except KeyboardInterrupt:
        _interrupted()


def _interrupted() -> None:
    """Say so in one line (JSON with --log-json) and exit 130; a further signal changes nothing."""
    for signum in _INTERRUPTS:
        signal.signal(signum, signal.SIG_IGN)
    if "--log-json" in sys.argv[1:]:
        import json
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = json.dumps(
            {"ts": stamp, "event": "error", "message": "interrupted", "exit_code": EXIT_INTERRUPTED}
        )
    else:
        line = "Error: interrupted"
    try:
        print(line, file=sys.stderr, flush=True)
    finally:
        sys.exit(EXIT_INTERRUPTED)
