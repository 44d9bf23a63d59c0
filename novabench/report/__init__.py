"""HTML reports rendered from the store: one page per run, the history, and an index."""

from novabench.report.render import render_all, render_history, render_index, render_run

__all__ = ["render_all", "render_history", "render_index", "render_run"]
