"""report.html in a real browser: at a phone's width (390 px) and a laptop's (1280 px), nothing
overflows the page. Tables scroll inside their own box, plots shrink to the page, the page itself
never scrolls sideways. Measured from the DOM of headless Chromium (Debian: chromium +
chromium-driver; CI installs them), for the committed example report and a short diurnal one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import plan_doubles as D

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "reports" / "example" / "report.html"
WIDTHS = (390, 1280)

# What the page measures of itself: every table, its scroll box, every plot and code block.
MEASURE = """
const vw = document.documentElement.clientWidth;
const box = el => { const r = el.getBoundingClientRect(); return {left: r.left, right: r.right, width: r.width, height: r.height}; };
const out = {vw, page_width: document.documentElement.scrollWidth,
             viewport_meta: !!document.querySelector('meta[name=viewport]'), tables: [], images: [], blocks: []};
for (const t of document.querySelectorAll('table')) {
  const wrap = t.closest('.table-wrap');
  out.tables.push({table: box(t), wrap: wrap ? box(wrap) : null,
                   overflow_x: wrap ? getComputedStyle(wrap).overflowX : null,
                   scrolls: wrap ? wrap.scrollWidth > wrap.clientWidth : false});
}
for (const i of document.querySelectorAll('img')) out.images.push({...box(i), loaded: i.complete && i.naturalWidth > 0});
for (const p of document.querySelectorAll('pre')) out.blocks.push(box(p));
return out;
"""


def _driver():
    """A headless Chromium driven by selenium, or a skip naming what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("no headless browser: install Chromium and its driver (Debian: apt-get install chromium "
                    "chromium-driver) to run the report rendering test")
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=opts)


@pytest.fixture(scope="module")
def browser():
    driver = _driver()
    try:
        yield driver
    finally:
        driver.quit()


def _measure(driver, page: Path, width: int) -> dict:
    # A phone's screen (mobile=True honours the page's viewport tag, as a phone's browser does).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    driver.get(page.resolve().as_uri())
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([...document.images].map(i => i.decode().catch(() => null))).then(() => done());")
    return driver.execute_script(MEASURE)


def _check_fits(m: dict, width: int) -> None:
    vw = m["vw"]
    assert m["viewport_meta"], "report.html has no viewport meta tag (phones would lay it out 980 px wide)"
    assert vw == width
    assert m["page_width"] <= vw, f"the page is {m['page_width']} px wide at a {vw} px viewport"
    assert m["tables"] and m["images"], "the report has tables and plots"
    for t in m["tables"]:
        assert t["wrap"] is not None, "a table outside a scroll box"
        assert t["wrap"]["left"] >= 0 and t["wrap"]["right"] <= vw + 0.5
        if t["table"]["width"] > t["wrap"]["width"] + 0.5:  # wider than the page: it scrolls in its box
            assert t["overflow_x"] in ("auto", "scroll") and t["scrolls"]
    for img in m["images"]:
        assert img["loaded"], "a plot did not load"
        assert img["left"] >= 0 and img["right"] <= vw + 0.5, f"a plot overflows: {img}"
        assert img["height"] > 20
    for b in m["blocks"]:
        assert b["right"] <= vw + 0.5


@pytest.fixture(scope="module")
def diurnal_report(tmp_path_factory):
    """A six-hour diurnal plan (test doubles for capacities and the simulator), written as a report."""
    from planner.plan import plan
    from planner.report.optimize_report import write_report
    from planner.traffic import generate_workload

    profile = D.profile({"process": "diurnal", "mean_rate_per_s": 4.0, "peak_to_trough": 6.0, "start_hour": 8.0},
                        traffic__horizon_seconds=6 * 3600, traffic__sizes={"distribution": "lognormal",
                        "prompt_tokens": {"median": 500, "p90": 2000}, "output_tokens": {"median": 120, "p90": 400}})
    workload = generate_workload(profile, 0)
    result, arts = plan(profile, backend=D.backend(), use_cache=False, workload=workload)
    assert len({e.gpu for e in result.plan}) >= 1 and np.isfinite(result.cost_per_month_usd)
    out = tmp_path_factory.mktemp("diurnal") / "report"
    write_report(result, arts, out, profile=profile)
    return out / "report.html"


@pytest.mark.parametrize("width", WIDTHS)
def test_example_report_fits_the_page(browser, width):
    assert EXAMPLE.is_file(), "the committed example report (reports/example/) is missing"
    _check_fits(_measure(browser, EXAMPLE, width), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_diurnal_report_fits_the_page(browser, diurnal_report, width):
    _check_fits(_measure(browser, diurnal_report, width), width)


def test_check_catches_an_overflowing_page(browser, tmp_path):
    """The check fails on the old page style: a bare wide table with no viewport tag."""
    page = tmp_path / "wide.html"
    cells = "".join(f"<td>column-{i}-with-long-text</td>" for i in range(12))
    page.write_text(f"<!doctype html><html><body><table><tr>{cells}</tr></table><img src='x.png'></body></html>")
    with pytest.raises(AssertionError):
        _check_fits(_measure(browser, page, 390), 390)
