"""Where a result leaves its engine: held to what the results table can keep."""

from __future__ import annotations

import math

from novabench.records import RequestResult

# What the results table's columns hold (INTEGER is 32-bit, BIGINT 64-bit, in DuckDB).
INT32_MAX = 2**31 - 1


INT64_MAX = 2**63 - 1


# Server-reported fields: (field, what it is, the largest value the column holds).
_SERVER_INTEGERS = (
    ("prompt_eval_count", "a token count", INT32_MAX),
    ("eval_count", "a token count", INT32_MAX),
    ("prompt_eval_duration_ns", "a duration in ns", INT64_MAX),
    ("eval_duration_ns", "a duration in ns", INT64_MAX),
    ("load_duration_ns", "a duration in ns", INT64_MAX),
    ("total_duration_ns", "a duration in ns", INT64_MAX),
)


_CLIENT_INTEGERS = (("chunk_count", INT32_MAX), ("response_bytes", INT64_MAX))


_TEXTS = ("response_text", "thinking_text", "done_reason", "error")


def make_storable(result: RequestResult) -> None:
    """Make a result fit the results table, whatever the engine recorded.

    A server value that is no count or duration the table can hold (out of range, negative,
    not finite, not an integer) is dropped (stored as NULL) and the request becomes an error row
    naming the field and the value as sent; text with invalid Unicode (a lone surrogate from a
    JSON escape) is kept with U+FFFD in place of the bad characters, and also makes it an error
    row. Called where a result leaves its engine, and again before it is stored.
    """
    problems: list[str] = []
    for name, what, largest in _SERVER_INTEGERS:
        value = getattr(result, name)
        if value is None:
            continue
        fixed = _whole_number(value, largest)
        setattr(result, name, fixed)
        if fixed is None:
            problems.append(f"{name}={_shown(value)} (not {what} from 0 to {largest})")
    for name, largest in _CLIENT_INTEGERS:
        value = getattr(result, name)
        if _whole_number(value, largest) is None:
            setattr(result, name, 0)
            problems.append(f"{name}={_shown(value)} (out of range)")
    if not _finite_offset(result.ttft_s):
        problems.append(f"ttft_s={_shown(result.ttft_s)} (not a time)")
        result.ttft_s = None
    if not _finite_offset(result.e2e_s):
        problems.append(f"e2e_s={_shown(result.e2e_s)} (not a time)")
        result.e2e_s = None
    if not all(_finite_offset(t) for t in result.token_offsets_s):
        problems.append("token arrival times (not finite)")
        result.token_offsets_s = [t for t in result.token_offsets_s if _finite_offset(t)]
    if result.http_status is not None and _whole_number(result.http_status, 999) is None:
        result.http_status = None
    for name in _TEXTS:
        text = getattr(result, name)
        if text is not None and not _valid_unicode(text):
            setattr(result, name, _replace_invalid(text))
            if name != "error":
                problems.append(f"{name} has invalid Unicode (a lone surrogate, shown as U+FFFD)")
    if problems:
        found = "server sent values that cannot be stored: " + "; ".join(problems)
        result.error = found if result.error is None else f"{result.error}; {found}"


def _whole_number(value: object, largest: int) -> int | None:
    """`value` as an int in 0..largest, or None (floats only when whole and finite)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value <= largest:
        return value
    return None


def _finite_offset(value: float | None) -> bool:
    return value is None or (
        isinstance(value, int | float) and math.isfinite(value) and -1e9 < value < 1e9
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _valid_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _replace_invalid(text: str) -> str:
    # Through UTF-16: a surrogate pair written as two escapes becomes its character, a lone one
    # U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
