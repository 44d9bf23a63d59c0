"""HTML reports rendered from the store: one page per run, the history, comparisons, an index."""

from novabench.report.pages import (
    render_all,
    render_comparison,
    render_history,
    render_index,
    render_run,
)

__all__ = ["render_all", "render_comparison", "render_history", "render_index", "render_run"]
