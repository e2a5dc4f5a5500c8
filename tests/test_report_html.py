"""report.html from report.md: markdown-it-py and the jinja2 page template (no browser needed)."""

from __future__ import annotations

import io

import numpy as np

from planner import __version__
from planner.report.html_page import markdown_to_html, render_page
from planner.report.plan_plots import cost_figure, latency_figure, log_ticks, time_axis


def test_page_has_viewport_version_command_and_scrolling_tables():
    page = render_page("# Plan\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", title="Plan <x>", command="planner optimize -p a.yaml")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<div class="table-wrap"><table>' in page and ".table-wrap{overflow-x:auto" in page
    assert f"planner {__version__}" in page and "<code>planner optimize -p a.yaml</code>" in page
    assert "<title>Plan &lt;x&gt;</title>" in page  # the template escapes what it is given


def test_sources_become_links_and_markup_in_text_is_escaped():
    html = markdown_to_html("- price (https://www.runpod.io/pricing, as of 2026-11-09)\n- <script>x</script> a|b\n")
    assert '<a href="https://www.runpod.io/pricing" rel="noopener" target="_blank">' in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_inline_png_plots_are_kept_and_javascript_links_dropped():
    html = markdown_to_html("![plot](data:image/png;base64,iVBORw0KGgo=)\n\n[x](javascript:alert(1))\n")
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html
    assert "href=\"javascript" not in html  # left as plain text


def test_day_long_axes_are_in_hours():
    assert time_axis(3600)[1] == "minutes from start"
    assert time_axis(86400) == (3600.0, "hours from start")


def test_log_ticks_do_not_crowd():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for lo, hi in ((0.008, 0.1), (0.0123, 0.0456), (1e-3, 50.0)):
        fig, ax = plt.subplots()
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        log_ticks(ax, "x", lo, hi)
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        plt.close(fig)
        assert 2 <= len(ticks) <= 7, (lo, hi, ticks)
        assert all(b / a >= 1.25 for a, b in zip(ticks, ticks[1:]))  # neighbours never closer than 2 -> 2.5


def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size


def test_one_cost_line_still_has_a_visible_bar():
    import matplotlib.image as mpimg

    data = cost_figure({"h100-sxm-tp1 pod": 3.99}, 730.0)
    width, height = _png_size(data)
    assert height >= 150
    pixels = mpimg.imread(io.BytesIO(data), format="png")
    green = (np.abs(pixels[..., 0] - 0x11 / 255) < 0.02) & (np.abs(pixels[..., 1] - 0x77 / 255) < 0.02)
    rows = np.flatnonzero(green.any(axis=1))
    assert len(rows) >= 20, "the single bar is drawn with a height"


def test_latency_figure_with_an_unsimulated_plan():
    nan = np.full(5, np.nan)
    assert _png_size(latency_figure(nan, nan, 2.0, 0.1))[1] > 100
