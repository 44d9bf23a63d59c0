"""How a command ends: `Error: ...` lines (or one JSON object) and the exit code, never a
traceback; and the guard that makes a command's imports safe from an interrupt. Light on purpose:
the CLI imports it before parsing."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from novabench.config.ages import parse_age
from novabench.errors import EXIT_INTERRUPTED
from novabench.storage.settings import DEFAULT_DB
from novabench.text import terminal_safe

F = TypeVar("F", bound=Callable[..., Any])

# The options several commands share.
db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="The DuckDB history file.",
)
out_option = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for HTML reports [default: the database's folder].",
)


_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Signals wait while a command imports its libraries (as during the CLI's own import, see
    novabench.entry): an interrupt in the middle of an import can abort the process."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)  # a waiting one is raised now


def say_error(message: str, code: int, as_json: bool = False) -> None:
    """`Error: ...` lines on stderr (or, with --log-json, one JSON error object)."""
    if as_json:
        from novabench.console.log import log_json_event

        log_json_event("error", message=message, exit_code=code)
    else:
        # Messages quote names, hosts and server answers: no escape sequence may reach a terminal.
        for line in message.split("\n"):
            click.echo(f"Error: {terminal_safe(line)}", err=True)


def fail(message: str, code: int, as_json: bool = False) -> NoReturn:
    """`Error: ...` lines (or one JSON error object), then exit with `code`."""
    say_error(message, code, as_json)
    sys.exit(code)


def friendly_errors(command: F) -> F:
    """Turn library, database and filesystem errors and interrupts into `Error: ...` lines and
    their exit codes, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("log_json"))
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED, as_json)
        except Exception as exc:
            from novabench.console.errors import user_error

            error = user_error(exc, kwargs.get("db_path"))
            if error is None:
                raise
            fail(str(error), error.exit_code, as_json)

    return wrapper  # type: ignore[return-value]


def age_option(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """An option's age (`--older-than 90d`) as a timedelta; a bad one is a usage error naming it."""
    try:
        return None if value is None else parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
