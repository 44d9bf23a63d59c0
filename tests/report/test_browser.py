"""The HTML reports in headless Chromium: no console error, no network, charts drawn, text inert.

Real data: two runs of a suite against the Ollama double, whose models answer with hostile HTML.
Every page rendered from them (whatever `*.html` the renderer writes) is opened once in its own
browser context; the tests below then judge what each visit recorded. A screenshot of each page
lands in reports/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from novabench import report
from novabench.config.reading import load_suite
from novabench.report import render_history, render_index, render_run
from novabench.run.runner import run_suite
from novabench.storage.store import Store
from tests.conftest import REPO, write_suite
from tests.ollama_double import FakeModel, Fault, OllamaDouble

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
REQUIRE_BROWSER = os.environ.get("NOVABENCH_REQUIRE_BROWSER") == "1"
SCREENSHOTS = REPO / "reports" / "screenshots"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
CHART_TIMEOUT_MS = 15_000

# Each payload sets window.__xss (and opens an alert) if a page ever lets it run.
SCRIPT_TAG = "<script>window.__xss=1;alert(1)</script>"
IMG_TAG = '<img src=x onerror="window.__xss=2;alert(2)">'
BREAKOUT = "</script><script>window.__xss=3;alert(3)</script>"
JS_LINK = "[click me](javascript:window.__xss=4)"
SVG_TAG = '<svg onload="window.__xss=5;alert(5)">'
ERROR_TAG = '<img src=x onerror="window.__xss=6;alert(6)">'
BOLD_MODEL = "m<b>bold</b>"  # Plotly reads <b> in labels: it must show the tag, not bold text
PROMPT_TAG = "<script>window.__xss=7</script>"

MODELS = [
    FakeModel("scripter", reply=f"Sure: {SCRIPT_TAG} and {IMG_TAG} make 4."),
    FakeModel("breaker", reply=f"{BREAKOUT} {JS_LINK} is 4"),
    FakeModel("thinker", reply="It is 4.", thinking=f"Maybe {SCRIPT_TAG} or {SVG_TAG}?"),
    FakeModel(BOLD_MODEL, reply="<b>Four</b>, that is 4."),
]
SUITE_KEYS: dict[str, object] = {
    "description": f"'Hostile <b>output</b> {PROMPT_TAG}'",
    "models": f'[scripter, breaker, thinker, "{BOLD_MODEL}"]',
    "prompts": f'[{{id: math, text: "2+2? {PROMPT_TAG}", checks: {{contains: "4"}}}}, "Say hi."]',
    "checks": "{max_sentences: 1}",
    "modes": "[parallel, sequential]",
    "sample_interval_s": 0.1,
}
# What every run page must show as text once its <details> are open.
RUN_PAGE_TEXTS = (SCRIPT_TAG, IMG_TAG, BREAKOUT, JS_LINK, SVG_TAG, PROMPT_TAG, BOLD_MODEL)
# How many charts a page of each kind has at least with this data (ids change as pages grow):
# a run page its distributions, gaps, wall times and resources, history two metrics.
MIN_CHARTS = {"run": 6, "history": 2}
# The third run adds a load sweep (1 slot: it saturates at once) to one sequential repetition.
LOAD_KEYS: dict[str, object] = {
    "modes": "[sequential, load]",
    "repetitions": 1,
    "load": "{concurrency: [1, 2, 4], requests_per_level: 6, slo: {ttft_ms: 50}}",
}
# Traces per swept model in each chart of the Load section.
LOAD_TRACES = {"load-throughput": 1, "load-requests": 2, "load-ttft": 3, "load-itl": 3}

# Runs in the page after Plotly: each chart, the figure JSON beside it, and what got drawn.
CHARTS_JS = """() => {
  const length = (v) => Array.isArray(v) || ArrayBuffer.isView(v) ? v.length
    : (v && typeof v === "object" && v.bdata ? 1 : 0);
  const drawn = (g) => {
    const box = g.getBBox();
    return (box.width > 0 || box.height > 0)
      && [...g.querySelectorAll("path")].some((p) => (p.getAttribute("d") || "").length > 2);
  };
  const figures = [...document.querySelectorAll('script[type="application/json"][id^="figure-"]')];
  const charts = [...document.querySelectorAll("div[data-figure]")].map((div) => {
    const traces = (div.data || []).filter((t) => ![false, "legendonly"].includes(t.visible));
    return {
      id: div.id,
      figure: div.getAttribute("data-figure"),
      has_figure_json: !!document.getElementById(div.getAttribute("data-figure")),
      has_svg: !!div.querySelector("svg.main-svg"),
      height: div.getBoundingClientRect().height,
      traces_with_data: traces.filter((t) => ["x", "y"].some((k) => length(t[k]) > 0)).length,
      drawn_traces: [...div.querySelectorAll(".cartesianlayer g.trace")].filter(drawn).length,
      empty_subplots: [...div.querySelectorAll(".cartesianlayer > g.subplot")]
        .filter((s) => ![...s.querySelectorAll("g.trace")].some(drawn))
        .map((s) => s.getAttribute("class")),
      svg_text: [...div.querySelectorAll("svg.main-svg")].map((s) => s.textContent).join(" "),
    };
  });
  return {figure_ids: figures.map((s) => s.id), charts};
}"""

# Elements that model output, prompts or suite text would have created had they been parsed.
INJECTED_JS = """() => {
  const hits = [...document.querySelectorAll(
    'img, iframe, object, embed, a[href^="javascript:" i], [onerror], [onload], [onclick]')]
    .map((el) => el.outerHTML.slice(0, 120));
  for (const el of document.querySelectorAll("script")) {
    const type = (el.getAttribute("type") || "").toLowerCase();
    if (!type.includes("json") && el.textContent.includes("__xss")) {
      hits.push("<script>" + el.textContent.slice(0, 80));
    }
  }
  for (const el of document.querySelectorAll("b, strong")) {
    if (["bold", "Four", "output"].includes(el.textContent.trim())) hits.push(el.outerHTML);
  }
  for (const el of document.querySelectorAll("svg tspan")) {
    if (/bold/.test(el.getAttribute("style") || "") && el.textContent.includes("bold")) {
      hits.push("plotly bold tspan: " + el.textContent);
    }
  }
  return hits;
}"""
XSS_JS = "() => typeof window.__xss === 'undefined' ? null : String(window.__xss)"
FRAMES_JS = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


@dataclasses.dataclass
class Visit:
    """What one page did in the browser."""

    name: str
    path: Path
    console_errors: list[str] = dataclasses.field(default_factory=list)
    page_errors: list[str] = dataclasses.field(default_factory=list)
    outside_requests: list[str] = dataclasses.field(default_factory=list)
    dialogs: list[str] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
    figure_ids: list[str] = dataclasses.field(default_factory=list)
    charts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    xss: list[str] = dataclasses.field(default_factory=list)
    injected: list[str] = dataclasses.field(default_factory=list)
    text: str = ""
    screenshot: Path | None = None

    @property
    def kind(self) -> str:
        return "run" if self.name.startswith("run-") else self.name


@dataclasses.dataclass
class Site:
    """The rendered report folder and a stable name for each page in it."""

    out_dir: Path
    pages: dict[str, Path]
    comparison_rendered: bool


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright; skipped (or, in CI, failed) when it is missing."""
    problem = None
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problem = f"{CHROMIUM} not found: install Debian's chromium package (`make browser`)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            problem = "playwright is not installed: pip install -e '.[dev]'"
    if problem is not None:
        if REQUIRE_BROWSER:
            pytest.fail(f"NOVABENCH_REQUIRE_BROWSER=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Two real runs against a hostile double, rendered into one folder with every page kind."""
    root = tmp_path_factory.mktemp("browser-reports")
    out_dir = root / "reports"
    models = [dataclasses.replace(m, token_interval_s=0.003, load_s=0.03) for m in MODELS]
    with pytest.MonkeyPatch.context() as mp, OllamaDouble(models=models) as double:
        mp.chdir(root)
        store = Store(root / "novabench.duckdb")
        first = write_suite(
            root / "first.yaml",
            double.url,
            **SUITE_KEYS,
            repetitions="auto",
            min_repetitions=2,
            max_repetitions=3,
            cold_start="true",
        )
        run_1 = _run(first, store)
        # The second run is slower, so history has two distinct points, and one warm-up fails.
        for model in double.models:
            model.token_interval_s = 0.008
        double.add_fault("scripter", Fault.http_status(500, {"error": ERROR_TAG}))
        second = write_suite(root / "second.yaml", double.url, **SUITE_KEYS, repetitions=2)
        run_2 = _run(second, store)
        swept = write_suite(root / "load.yaml", double.url, **{**SUITE_KEYS, **LOAD_KEYS})
        run_load = _run(swept, store)
    names = {
        render_run(store, run_1, out_dir).resolve(): "run-1",
        render_run(store, run_2, out_dir).resolve(): "run-2",
        render_run(store, run_load, out_dir).resolve(): "run-load",
    }
    render_history(store, out_dir)
    render_index(store, out_dir)
    render_comparison: Callable[..., Any] | None = getattr(report, "render_comparison", None)
    if render_comparison is not None:
        before = set(out_dir.rglob("*.html"))
        returned = _as_paths(render_comparison(store, run_1, run_2, out_dir))
        # Named by what it returned, else by what appeared: the page counts either way.
        written = returned or sorted(set(out_dir.rglob("*.html")) - before)
        for index, path in enumerate(written):
            names.setdefault(path.resolve(), "comparison" if index == 0 else f"comparison-{index}")
    pages = {}
    for path in sorted(out_dir.rglob("*.html")):
        name = names.get(path.resolve()) or path.relative_to(out_dir).with_suffix("").as_posix()
        pages[name.replace("/", "-")] = path
    return Site(out_dir, pages, render_comparison is not None)


@pytest.fixture(scope="module")
def visits(browser: Any, site: Site) -> dict[str, Visit]:
    """Every page of the site, opened once each in a fresh browser context."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = {}
    for name, path in site.pages.items():
        result[name] = visit_page(browser, name, path, SCREENSHOTS / f"{name}.png")
    print(f"\nvisited {len(result)} pages in {time.perf_counter() - started:.1f} s")
    return result


# ---- the visit ----------------------------------------------------------------------------


def visit_page(
    browser: Any, name: str, path: Path, screenshot: Path | None, chart_timeout_ms: int = 0
) -> Visit:
    """Open `path`, wait for its charts, screenshot it, open every <details>, record everything."""
    visit = Visit(name, path)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        _watch(context, visit)
        page = context.new_page()
        page.set_default_timeout(CHART_TIMEOUT_MS)
        page.on("console", lambda m: m.type == "error" and visit.console_errors.append(m.text))
        page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
        page.on("dialog", lambda d: (visit.dialogs.append(f"{d.type}: {d.message}"), d.dismiss()))
        page.goto(path.as_uri(), wait_until="load")
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('div[data-figure]')]"
                ".every((d) => d._fullLayout && d.querySelector('svg.main-svg'))",
                timeout=chart_timeout_ms or CHART_TIMEOUT_MS,
            )
        except Exception as exc:  # reported with the chart details below, not raised
            visit.failures.append(f"charts did not finish drawing: {type(exc).__name__}")
        page.evaluate(FRAMES_JS)
        charts = page.evaluate(CHARTS_JS)
        visit.figure_ids, visit.charts = charts["figure_ids"], charts["charts"]
        visit.xss.append(f"after load: {page.evaluate(XSS_JS)}")
        if screenshot is not None:
            # First response of each model open, so the picture shows model output as text.
            page.evaluate(
                "() => document.querySelectorAll('.model-block > details:first-of-type')"
                ".forEach((d) => { d.open = true; })"
            )
            page.screenshot(path=str(screenshot), full_page=True)
            visit.screenshot = screenshot
        page.evaluate(
            "() => document.querySelectorAll('details').forEach((d) => { d.open = true; })"
        )
        for summary in page.locator("details > summary").all()[:3]:
            summary.click()  # a real click too: toggling must not run anything either
        page.evaluate(FRAMES_JS)
        visit.xss.append(f"after opening details: {page.evaluate(XSS_JS)}")
        visit.injected = page.evaluate(INJECTED_JS)
        visit.text = page.locator("body").inner_text()
    except Exception as exc:
        visit.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        context.close()
    return visit


def _watch(context: Any, visit: Visit) -> None:
    """Record every request that is not local, and abort it so nothing leaves the machine."""

    def outside(url: str) -> bool:
        return not url.startswith(LOCAL_SCHEMES)

    def record(url: str) -> None:
        if outside(url) and url not in visit.outside_requests:
            visit.outside_requests.append(url)

    context.on("request", lambda request: record(request.url))
    context.route(outside, lambda route: (record(route.request.url), route.abort()))


def _run(suite_path: Path, store: Store) -> str:
    """Run a suite in its own thread: the Playwright sync API keeps an event loop running here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: run_suite(load_suite(suite_path), store).run_id).result()


def _as_paths(value: Any) -> list[Path]:
    if isinstance(value, list | tuple):
        return [Path(v) for v in value]
    return [Path(value)] if value is not None else []


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def _problems(visits: dict[str, Visit], check: Callable[[Visit], list[str]]) -> str:
    lines = [f"{name}: {p}" for name, v in visits.items() for p in check(v)]
    return "\n".join(lines)


# ---- tests --------------------------------------------------------------------------------


def test_every_page_kind_is_rendered_and_opens(visits: dict[str, Visit], site: Site) -> None:
    expected = {"index", "history", "run-1", "run-2", "run-load"}
    if site.comparison_rendered:
        expected.add("comparison")
    assert expected <= set(visits), f"pages rendered: {sorted(visits)}"
    problems = _problems(visits, lambda v: v.failures)
    assert not problems, f"pages that did not load cleanly:\n{problems}"


def test_no_console_error_and_no_script_error(visits: dict[str, Visit]) -> None:
    problems = _problems(
        visits,
        lambda v: (
            [f"console error: {e}" for e in v.console_errors]
            + [f"uncaught: {e}" for e in v.page_errors]
        ),
    )
    assert not problems, f"pages logged errors:\n{problems}"


def test_no_request_leaves_the_machine(visits: dict[str, Visit]) -> None:
    problems = _problems(visits, lambda v: [f"requested {url}" for url in v.outside_requests])
    assert not problems, f"pages asked for non-local URLs (aborted):\n{problems}"


def test_every_chart_is_drawn_with_data(visits: dict[str, Visit]) -> None:
    def check(v: Visit) -> list[str]:
        found: list[str] = []
        containers = [c["figure"] for c in v.charts]
        if sorted(containers) != sorted(v.figure_ids):
            found.append(f"figure JSON {v.figure_ids} but chart containers {containers}")
        if len(v.figure_ids) < MIN_CHARTS.get(v.kind, 0):
            found.append(
                f"only {len(v.figure_ids)} charts ({v.figure_ids}), expected at least "
                f"{MIN_CHARTS[v.kind]}"
            )
        for chart in v.charts:
            where = chart["id"]
            if not chart["has_figure_json"]:
                found.append(f"{where}: no <script id={chart['figure']!r}> with its figure")
            if not chart["has_svg"]:
                found.append(f"{where}: no svg.main-svg (Plotly did not draw it)")
            if chart["height"] < 100:
                found.append(f"{where}: only {chart['height']:.0f} px high")
            if chart["traces_with_data"] == 0:
                found.append(f"{where}: no trace with data in the figure")
            elif chart["drawn_traces"] != chart["traces_with_data"]:
                found.append(
                    f"{where}: {chart['drawn_traces']} traces drawn of "
                    f"{chart['traces_with_data']} with data"
                )
            if chart["empty_subplots"]:
                found.append(f"{where}: subplots with nothing drawn: {chart['empty_subplots']}")
        return found

    problems = _problems(visits, check)
    assert not problems, f"charts not rendered:\n{problems}"
    drawn = {name: [c["id"] for c in v.charts] for name, v in visits.items()}
    print(f"\ncharts drawn: {drawn}")


def test_the_load_section_draws_every_sweep(visits: dict[str, Visit]) -> None:
    visit = visits["run-load"]
    assert "Load" in visit.text and "OLLAMA_NUM_PARALLEL is probably 1." in visit.text
    charts = {c["id"].removeprefix("chart-"): c for c in visit.charts}
    assert {*LOAD_TRACES, "load-curve"} <= set(charts), sorted(charts)
    for chart_id, per_model in LOAD_TRACES.items():
        chart = charts[chart_id]
        assert chart["traces_with_data"] == per_model * len(MODELS), (chart_id, chart)
        assert chart["drawn_traces"] == chart["traces_with_data"], (chart_id, chart)
    # a line per model and the ringed knees, every model saturated at its one slot
    curve = charts["load-curve"]
    assert curve["drawn_traces"] == curve["traces_with_data"] == len(MODELS) + 1, curve
    assert BOLD_MODEL in curve["svg_text"]


def test_model_names_in_charts_show_their_tags(visits: dict[str, Visit]) -> None:
    charted = {name: " ".join(c["svg_text"] for c in v.charts) for name, v in visits.items()}
    charted = {name: text for name, text in charted.items() if text}
    assert {"run-1", "run-2", "history"} <= set(charted)
    for name, text in charted.items():
        # Plotly would draw "<b>bold</b>" as a bold "bold": the literal tag shows it was escaped.
        assert BOLD_MODEL in text, f"{name}: {BOLD_MODEL!r} not shown literally in its charts"


def test_hostile_text_shows_as_text_and_never_runs(visits: dict[str, Visit]) -> None:
    def check(v: Visit) -> list[str]:
        found = [state for state in v.xss if not state.endswith(": None")]
        found += [f"dialog opened: {d}" for d in v.dialogs]
        found += [f"element from hostile text in the DOM: {html}" for html in v.injected]
        if v.kind == "run":
            texts = RUN_PAGE_TEXTS + ((ERROR_TAG,) if v.name == "run-2" else ())
            found += [f"not shown as text: {t!r}" for t in texts if t not in v.text]
        return found

    problems = _problems(visits, check)
    assert not problems, f"hostile text ran or vanished:\n{problems}"
    assert all(len(v.xss) == 2 for v in visits.values()), "every page was probed twice"


def test_screenshot_of_every_page(visits: dict[str, Visit]) -> None:
    for visit in visits.values():
        assert visit.screenshot is not None and visit.screenshot.is_file(), visit.name
        width, height = _png_size(visit.screenshot)
        size_kb = visit.screenshot.stat().st_size / 1024
        print(f"{visit.screenshot}  {width}x{height} px, {size_kb:,.0f} KiB")
        assert width >= 1200 and height >= 600, f"{visit.name}: {width}x{height} px"


def test_the_checks_catch_a_misbehaving_page(browser: Any, tmp_path: Path) -> None:
    """The recorder itself: a page that breaks every rule is caught on every count."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body>"
        '<div data-figure="figure-x"></div>'
        '<script type="application/json" id="figure-x">{"data": [], "layout": {}}</script>'
        '<img src="http://127.0.0.1:9/pixel.png">'
        f"<pre>{SCRIPT_TAG}</pre>"  # not escaped: it runs, sets window.__xss and alerts
        "<script>console.error('boom');</script>"
        "<script>undefinedFunction();</script>"
        "</body></html>"
    )
    visit = visit_page(browser, "bad", page, None, chart_timeout_ms=500)
    assert any("boom" in e for e in visit.console_errors), visit.console_errors
    assert any("undefinedFunction" in e for e in visit.page_errors), visit.page_errors
    assert visit.outside_requests == ["http://127.0.0.1:9/pixel.png"]
    assert visit.dialogs == ["alert: 1"]
    assert visit.xss == ["after load: 1", "after opening details: 1"]
    assert any(html.startswith("<img") for html in visit.injected), visit.injected
    assert any(html.startswith("<script>") for html in visit.injected), visit.injected
    assert visit.failures == ["charts did not finish drawing: TimeoutError"]
    assert visit.charts[0]["has_svg"] is False
    assert SCRIPT_TAG not in visit.text  # this page parsed it: it is not text
