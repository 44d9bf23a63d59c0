"""A Plotly figure as the pages embed it: an id, a title, a caption and script-safe JSON."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import plotly.io as pio
from markupsafe import Markup

# The trace fields a page may keep once when several traces repeat them (see SharedArrays).
SHARED_FIELDS = ("text", "x")


def script_json(value: str) -> Markup:
    """JSON text safe inside <script>: no '</script>', '<!--' or '&' can survive escaping."""
    safe = (
        value.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return Markup(safe)


def figure(
    figure_id: str,
    title: str,
    caption: str,
    fig: Any | None,
    note: str | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """What templates' figure_card needs; `json` is None when there was nothing to draw.

    `note`: what the chart leaves out, said beside it (a big run's thinned dots and bars).
    `text`: the figure's JSON text (`figure_json`) when it was made before, instead of `fig`.
    """
    if text is None and fig is not None:
        text = figure_json(fig)
    return {
        "id": figure_id,
        "title": title,
        "caption": caption,
        "note": note,
        "json": None if text is None else script_json(text),
    }


def figure_json(fig: Any) -> str:
    """A figure (a Plotly figure or the plain dict of one) as the JSON text Plotly.js reads."""
    text: str = pio.to_json(fig, validate=False, pretty=False)
    return text


class SharedArrays:
    """Arrays that several traces of a page repeat, kept once in the page.

    The history draws each line in every metric's chart with the same times and hover texts;
    most of its weight was those repeats. A repeated array is replaced in each trace by
    {"$shared": key}, and the page's loader (base.html.j2) puts it back before Plotly draws.
    """

    def __init__(self, prefix: str = "") -> None:
        """`prefix`: put before every key, so that arrays of several parts of a page (the
        history's suites, drawn at different times) can be joined."""
        self.arrays: dict[str, list[Any]] = {}
        self._keys: dict[str, str] = {}
        self._prefix = prefix

    def share(self, figures: list[dict[str, Any] | None]) -> None:
        """Replace, in place, each SHARED_FIELDS array that appears in more than one trace."""
        found = [(trace, field, value, _key(value)) for trace, field, value in _arrays(figures)]
        seen = Counter(key for *_, key in found)
        for trace, field, value, key in found:
            if seen[key] > 1:
                ref = self._keys.setdefault(key, f"{self._prefix}{len(self._keys)}")
                self.arrays[ref] = value
                trace[field] = {"$shared": ref}

    def inside(self) -> str:
        """The arrays as the inside of a JSON object ('"0": [...], ...'; '' when none), to be
        joined with other parts' into the page's."""
        return pio.json.to_json_plotly(self.arrays)[1:-1] if self.arrays else ""


def _arrays(figures: list[dict[str, Any] | None]) -> list[tuple[dict[str, Any], str, list[Any]]]:
    return [
        (trace, field, trace[field])
        for fig in figures
        if fig is not None
        for trace in fig.get("data", [])
        for field in SHARED_FIELDS
        if isinstance(trace.get(field), list) and len(trace[field]) > 1
    ]


def _key(value: list[Any]) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))
