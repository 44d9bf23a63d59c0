"""Reading a suite: from a file or from text, bounded in size, into a validated Suite that keeps
its exact text and digest for provenance."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from novabench.config.loader import validate_yaml
from novabench.config.suite import Suite
from novabench.errors import SuiteError

MAX_SUITE_BYTES = 1024 * 1024


def load_suite(path: str | os.PathLike[str]) -> Suite:
    """Read and validate a suite file; raise SuiteError listing every problem found."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            data = b"" if size > MAX_SUITE_BYTES else file.read(MAX_SUITE_BYTES + 1)
    except FileNotFoundError:
        raise SuiteError([f"{source}: no such file"]) from None
    except IsADirectoryError:
        raise SuiteError([f"{source}: is a directory, not a suite file"]) from None
    except OSError as error:
        raise SuiteError([f"{source}: cannot read: {error.strerror or error}"]) from None
    if size > MAX_SUITE_BYTES or len(data) > MAX_SUITE_BYTES:
        raise SuiteError([_too_large(source, max(size, len(data)))])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        raise SuiteError(
            [f"{source}: not UTF-8 text (invalid byte 0x{byte:02x} at offset {error.start})"]
        ) from None
    return _parse(text, data, source, Path(source))


def parse_suite(text: str, source: str = "<string>") -> Suite:
    """Validate a suite given as text; `source` names it in messages."""
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) > MAX_SUITE_BYTES:
        raise SuiteError([_too_large(source, len(data))])
    return _parse(text, data, source, None)


def _too_large(source: str, size: int) -> str:
    limit = f"{MAX_SUITE_BYTES:,} bytes, 1 MiB"
    return f"{source}: {size:,} bytes is too large for a suite (limit {limit})"


def _parse(text: str, data: bytes, source: str, path: Path | None) -> Suite:
    suite = validate_yaml(text, source, Suite, defaults_from={("host",): "$OLLAMA_HOST"})
    suite._path = path
    suite._text = text
    suite._sha256 = hashlib.sha256(data).hexdigest()
    return suite
