"""Where a run's page lives in a reports folder, and removing the pages of pruned runs without
ever reaching outside that folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from novabench.storage.prune import PruneOutcome
    from novabench.storage.store import Store

RUN_PAGES = "runs"  # out_dir/runs/<run_id>.html, as pages.render_run writes them


def run_page_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / RUN_PAGES / f"{run_id}.html"


@dataclass(frozen=True)
class PagesRemoved:
    """The run pages deleted, those that could not be (with why), or why none were touched."""

    removed: tuple[Path, ...] = ()
    failed: tuple[tuple[Path, str], ...] = ()
    refused: str | None = None  # the run pages' folder leads outside the reports folder

    def failures(self) -> str:
        """One line per page that could not be deleted."""
        return "\n".join(
            f"cannot delete {page} ({why}): the run is removed from the database; delete its "
            "page yourself"
            for page, why in self.failed
        )


def remove_run_pages(out_dir: Path, run_ids: list[str] | tuple[str, ...]) -> PagesRemoved:
    """Delete out_dir/runs/<run_id>.html of each run; a page that is a symbolic link loses the
    link, never what it points to, and a runs folder that leads elsewhere is left alone."""
    folder = Path(out_dir) / RUN_PAGES
    if not folder.exists() and not folder.is_symlink():
        return PagesRemoved()
    inside = Path(out_dir).resolve()
    if folder.is_symlink() or not folder.resolve().is_relative_to(inside):
        return PagesRemoved(
            refused=f"{folder} leads to {folder.resolve()}, outside {out_dir}: novabench "
            "deletes no page there; the removed runs' pages are left as they are"
        )
    removed: list[Path] = []
    failed: list[tuple[Path, str]] = []
    for run_id in run_ids:
        if (
            not run_id
            or any(part in run_id for part in ("/", "\\", "\0"))
            or run_id.strip(".") == ""
        ):
            continue  # no page can have that name: nothing of it to delete
        page = run_page_path(out_dir, run_id)
        if not page.is_symlink() and not page.is_file():
            continue
        try:
            page.unlink()  # on a symbolic link: the link itself
        except OSError as exc:
            failed.append((page, exc.strerror or str(exc)))
        else:
            removed.append(page)
    return PagesRemoved(removed=tuple(removed), failed=tuple(failed))


def prune_pages(store: Store, out_dir: Path, outcome: PruneOutcome) -> PagesRemoved:
    """Delete the pages of runs removed from the store, then rewrite the history and index pages
    found in out_dir (from the store, which no longer has those runs) so nothing links them.

    Runs reduced to their summaries keep their pages: the history still shows them, and a page
    is the one detailed view of them left."""
    from novabench.report.pages import render_history, render_index

    if outcome.keep_summaries:
        return PagesRemoved()
    pages = remove_run_pages(out_dir, outcome.run_ids)
    for name, render in (("history.html", render_history), ("index.html", render_index)):
        if (Path(out_dir) / name).exists():
            render(store, out_dir)
    return pages
