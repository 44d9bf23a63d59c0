"""Self-contained HTML pages (Jinja2 + inlined Plotly) rendered from the store alone."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import pickle
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import plotly.offline
from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, Undefined
from jinja2.bccache import Bucket
from markupsafe import Markup

from novabench.errors import OutputError
from novabench.records import utcnow
from novabench.report import charts, trends
from novabench.report.compare_page import comparison_context
from novabench.report.figures import script_json as _script_json
from novabench.report.history_page import history_context
from novabench.report.index_page import index_context, month_context, month_href
from novabench.report.run_page import run_context
from novabench.storage.store import Store
from novabench.version import __version__

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

# What system.system_info() records; older or partial runs may lack some.


# ---- public API ---------------------------------------------------------------------------


def render_run(store: Store, run_id: str, out_dir: Path) -> Path:
    """Write out_dir/runs/<run_id>.html: one run's provenance, summary, charts and responses."""
    _check_run_id(run_id)
    with store.holding():  # one open of the file for the page's reads (~20 ms each when large)
        context = run_context(store, run_id)
    page = _render("run.html.j2", root="../", **context)
    return _write_atomic(Path(out_dir) / "runs" / f"{run_id}.html", page)


def render_history(store: Store, out_dir: Path) -> Path:
    """Write out_dir/history.html: per-run medians of every model over all runs in the store."""
    page = _render("history.html.j2", root="", **history_context(store))
    return _write_atomic(Path(out_dir) / "history.html", page)


def render_index(store: Store, out_dir: Path, run_id: str | None = None) -> Path:
    """Write out_dir/index.html: the newest runs, and beyond index_page.RECENT_RUNS of them a
    page per month (out_dir/index/YYYY-MM.html): every month's, or after the run `run_id` only
    its month's and any that is missing."""
    with store.holding():  # the reads of every page at one open of the file
        context = index_context(store)
        months = [m["month"] for m in context["months"]]
        if run_id is not None and months:
            started = store.get_run(run_id).started_at.strftime("%Y-%m")
            months = [
                m for m in months if m == started or not (Path(out_dir) / month_href(m)).exists()
            ]
        monthly = [month_context(store, month) for month in months]
    for month, month_page in zip(months, monthly, strict=True):
        page = _render("index_month.html.j2", root="../", **month_page)
        _write_atomic(Path(out_dir) / month_href(month), page)
    return _write_atomic(Path(out_dir) / "index.html", _render("index.html.j2", root="", **context))


def missing_run_pages(store: Store, out_dir: Path) -> list[str]:
    """The runs whose page is not in `out_dir` (made with --no-report, or deleted); a pruned
    run's page cannot be made again, so it is never missing."""
    return [
        run_id
        for run_id in store.unpruned_run_ids()
        if not (out_dir / "runs" / f"{run_id}.html").exists()
    ]


def render_comparison(store: Store, run_a: str, run_b: str, out_dir: Path) -> Path:
    """Write out_dir/compare/<run_a>__<run_b>.html: run B against run A, every finding."""
    _check_run_id(run_a)
    _check_run_id(run_b)
    context = comparison_context(store, run_a, run_b, Path(out_dir))
    page = _render("compare.html.j2", root="../", **context)
    return _write_atomic(Path(out_dir) / "compare" / f"{run_a}__{run_b}.html", page)


def render_all(store: Store, run_id: str, out_dir: Path) -> list[Path]:
    """Write the run's page, the history page and the index; return their paths in that order."""
    return [
        render_run(store, run_id, out_dir),
        render_history(store, out_dir),
        render_index(store, out_dir, run_id),
    ]


# ---- page contents ------------------------------------------------------------------------


# ---- figures in the page ------------------------------------------------------------------


@functools.cache
def _plotly_js() -> Markup:
    # plotly.js holds no '</script', but a future build must not be able to end our tag early.
    return Markup(plotly.offline.get_plotlyjs().replace("</script", "<\\/script"))


# ---- Jinja and files ----------------------------------------------------------------------


class _CompiledTemplates(FileSystemBytecodeCache):
    """Templates compiled by an earlier command, kept in jinja2's per-user folder of the temp
    directory (made 0700 and checked to be the user's by jinja2; a template's source checksum
    and the Python version are checked on load): compiling them cost every command writing
    pages about 0.3 s. A folder that cannot be read or written only costs that again."""

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        # bytecode depends on the environment's options and novabench's filters, not only on
        # the template's text: compiled by another novabench, it is compiled again
        return super().get_cache_key(f"{name}\0{__version__}\0{_TEMPLATE_OPTIONS}", filename)

    def load_bytecode(self, bucket: Bucket) -> None:
        # a damaged file: jinja2 reads a pickled checksum and marshalled code from it
        with contextlib.suppress(OSError, ValueError, EOFError, pickle.UnpicklingError):
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _compiled_templates() -> _CompiledTemplates | None:
    try:
        return _CompiledTemplates()
    except (OSError, RuntimeError):  # no safe folder of the user's in the temp directory
        return None


_TEMPLATE_OPTIONS = {
    "autoescape": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
}


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("novabench", "report/templates"),
        bytecode_cache=_compiled_templates(),
        autoescape=_TEMPLATE_OPTIONS["autoescape"],
        trim_blocks=_TEMPLATE_OPTIONS["trim_blocks"],
        lstrip_blocks=_TEMPLATE_OPTIONS["lstrip_blocks"],
        keep_trailing_newline=_TEMPLATE_OPTIONS["keep_trailing_newline"],
    )
    env.filters.update(
        num=_num,
        utc=_utc,
        duration=_duration,
        short_digest=charts.short_digest,
        gigabytes=_gigabytes,
        gibibytes=_gibibytes,
        memory=_memory,
        percent=_percent,
        measure=_measure,
        change=_change,
        pvalue=_pvalue,
        host_label=trends.host_label,
    )
    return env


def _render(template: str, **context: Any) -> str:
    charted = context.pop("charted", False)
    return (
        _environment()
        .get_template(template)
        .render(
            **context,
            novabench_version=__version__,
            generated_at=utcnow(),
            plotly_js=_plotly_js() if charted else None,
            plotly_config=_script_json(json.dumps(PLOTLY_CONFIG)),
        )
    )


class _UnusableRunId(OutputError, ValueError):
    """A run id (given, or read from a database) that cannot name a report file; still a
    ValueError, as it was before the command line needed it to be an OutputError."""


def _check_run_id(run_id: str) -> None:
    if not run_id or run_id.strip(".") == "" or any(s in run_id for s in ("/", "\\", "..", "\0")):
        raise _UnusableRunId(
            f"run id {run_id!r} cannot name a report file: it must be non-empty and contain "
            "no '/', '\\' or '..' (novabench makes ids like '20261127T104500Z-3fa1')"
        )


def _write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` via a temporary file in the same folder: no half page ever exists.

    Raises OutputError (path, reason, what to do) when the page cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; a report is meant to be opened and shared
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from exc
        raise
    return path


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    """The one line for a page that cannot be written: which, why, and what to do."""
    # mkdir under /dev/null says only "Not a directory": name the part that is not a folder.
    blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
    reason = f"{blocker} is not a folder" if blocker is not None else exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space there, or give --out a folder on another disk"
    else:
        hint = "give --out a folder novabench can write to"
    return OutputError(f"cannot write the report {path} ({reason}): {hint}")


# ---- filters ------------------------------------------------------------------------------

MISSING = "—"


def _given(value: Any) -> Any:
    """None for a value that is missing from the store row or undefined in the template."""
    return None if isinstance(value, Undefined) else value


def _num(value: float | int | None, digits: int = 1) -> str:
    value = _given(value)
    if value is None:
        return MISSING
    return f"{value:,.{digits}f}"


def _measure(value: float | int | None, unit: str, digits: int = 1) -> str:
    value = _given(value)
    return MISSING if value is None else f"{_num(value, digits)} {unit}"


def _utc(value: datetime | None, seconds: bool = True) -> str:
    value = _given(value)
    if value is None:
        return MISSING
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " UTC"


def _duration(seconds: float | None) -> str:
    seconds = _given(seconds)
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


def _gigabytes(size_bytes: int | None) -> str:
    size_bytes = _given(size_bytes)
    return MISSING if size_bytes is None else f"{size_bytes / 1e9:.2f} GB"


def _gibibytes(size_bytes: int | None) -> str:
    size_bytes = _given(size_bytes)
    return MISSING if size_bytes is None else f"{size_bytes / 2**30:.1f} GiB"


def _memory(size_bytes: int | float | None) -> str:
    """Binary units that keep a figure readable: '3.0 GiB', '412 MiB'."""
    size_bytes = _given(size_bytes)
    if size_bytes is None:
        return MISSING
    if size_bytes >= 2**30:
        return f"{size_bytes / 2**30:.1f} GiB"
    return f"{size_bytes / 2**20:.0f} MiB"


def _percent(fraction: float | None, digits: int = 0) -> str:
    fraction = _given(fraction)
    return MISSING if fraction is None else f"{fraction * 100:.{digits}f}%"


def _change(percent: float | None) -> str:
    """A signed change in percent: '+12.3%'."""
    percent = _given(percent)
    return MISSING if percent is None else f"{percent:+.1f}%"


def _pvalue(p_value: float | None) -> str:
    """Two significant digits: '0.00016', '1.2e-07'."""
    p_value = _given(p_value)
    return MISSING if p_value is None else f"{p_value:.2g}"
