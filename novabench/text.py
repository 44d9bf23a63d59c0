"""Anything novabench did not write itself is untrusted: make it safe to print to a terminal."""

from __future__ import annotations

import unicodedata

# Control characters (ESC starts terminal escape sequences) and format characters (bidi overrides
# can make text read differently from what it is) are shown as escapes instead of being obeyed;
# so are line and paragraph separators (a line must stay one line) and lone surrogates (JSON and
# YAML escapes can make them, and writing one to a UTF-8 stream raises UnicodeEncodeError).
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def terminal_safe(text: str, keep_newlines: bool = False) -> str:
    """Return `text` with every control and format character written as a visible escape."""
    out: list[str] = []
    for char in text:
        if keep_newlines and char == "\n":
            out.append(char)
        elif char == "\u200d" or unicodedata.category(char) not in _UNSAFE_CATEGORIES:
            out.append(char)  # ZWJ joins emoji and is harmless
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def one_line(text: str, width: int) -> str:
    """The end of `text` on one terminal-safe line of at most `width` characters."""
    flat = terminal_safe(" ".join(text.split()))
    return flat if len(flat) <= width else "…" + flat[-(width - 1) :]
