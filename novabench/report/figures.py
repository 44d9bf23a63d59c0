"""A Plotly figure as the pages embed it: an id, a title, a caption and script-safe JSON."""

from __future__ import annotations

from typing import Any

import plotly.io as pio
from markupsafe import Markup


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
    figure_id: str, title: str, caption: str, fig: Any | None, note: str | None = None
) -> dict[str, Any]:
    """What templates' figure_card needs; `json` is None when there was nothing to draw.

    `note`: what the chart leaves out, said beside it (a big run's thinned dots and bars).
    """
    text = None if fig is None else pio.to_json(fig, validate=False, pretty=False)
    return {
        "id": figure_id,
        "title": title,
        "caption": caption,
        "note": note,
        "json": None if text is None else script_json(text),
    }
