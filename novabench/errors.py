"""Domain exceptions. The library raises these; only cli.py turns them into exit codes."""

from __future__ import annotations

# Exit codes that belong to no exception: the run's verdict, and an interrupt.
EXIT_REGRESSION = 4
EXIT_INTERRUPTED = 130


class NovabenchError(Exception):
    """Base class for every error novabench reports to a user as one line."""

    exit_code = 1


class SuiteError(NovabenchError):
    """A suite file is missing, unreadable or invalid; `problems` holds one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class HostUnreachableError(NovabenchError):
    """A server (Ollama unless `server` says otherwise) cannot be reached at all."""

    exit_code = 3

    def __init__(
        self,
        url: str,
        reason: str,
        *,
        server: str = "Ollama",
        hint: str = "start it with 'ollama serve' or set OLLAMA_HOST",
    ) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach {server} at {url} ({reason}): {hint}")


class RequestError(NovabenchError):
    """One request failed (HTTP error, mid-stream error, broken stream): an error row."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        self.http_status = http_status
        super().__init__(message)


class ServerAnswerError(RequestError):
    """A server answered, but not as its engine does: broken HTTP, an HTTP error, no answer in
    time, or a body of the wrong shape. Its host cannot be used when this is its model list."""

    exit_code = 3


class StoreError(NovabenchError):
    """The results database cannot be opened, migrated or queried."""


class StorageFailure(NovabenchError):
    """The database stopped taking results during a run: the run stopped, nothing was lost.

    What had not reached the database is in the spill file the message names.
    """

    exit_code = 6


class OutputError(NovabenchError):
    """A file or folder novabench must write (a report, an export, the locks folder) cannot be."""

    exit_code = 6


class RunNotFoundError(NovabenchError):
    """A run id (or --latest) names no run in the database."""


class PruneRuleError(NovabenchError, ValueError):
    """A prune rule that would remove runs without saying which (no age, no count)."""

    exit_code = 2


class RunPrunedError(NovabenchError):
    """A run's raw rows were pruned (`prune --keep-summaries`): what needs them cannot be made."""


class BaselineError(NovabenchError):
    """A --baseline value is neither 'last', 'median:N' nor a run in the database."""

    exit_code = 2


class SuiteRunningError(NovabenchError):
    """Another process holds the suite's lock file: the same suite is still running."""

    exit_code = 5
