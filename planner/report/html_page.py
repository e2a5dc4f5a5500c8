"""Markdown to one self-contained HTML page: markdown-it-py for the text, a jinja2 template for the page.

The report is written once as Markdown (report.md); report.html is that same text rendered by a
CommonMark parser (with tables and clickable links) inside `templates/report.html.j2`, which adds
the viewport tag phones need and wraps every table in a horizontally scrolling box, so a wide
table scrolls inside the page instead of widening it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from planner import __version__


@lru_cache(maxsize=1)
def _markdown() -> Any:
    """The parser: CommonMark plus tables, and bare URLs turned into links (linkify)."""
    from markdown_it import MarkdownIt  # noqa: PLC0415

    md = MarkdownIt("commonmark", {"linkify": True, "html": False, "typographer": False})
    md.enable(["table", "linkify"])

    def table_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        return '<div class="table-wrap">' + self.renderToken(tokens, idx, options, env)

    def table_close(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        return self.renderToken(tokens, idx, options, env) + "</div>\n"

    def link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        # Sources open beside the report, which stays where the reader was.
        tokens[idx].attrSet("rel", "noopener")
        tokens[idx].attrSet("target", "_blank")
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("table_open", table_open)
    md.add_render_rule("table_close", table_close)
    md.add_render_rule("link_open", link_open)
    return md


@lru_cache(maxsize=1)
def _template() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape  # noqa: PLC0415

    env = Environment(loader=PackageLoader("planner.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined)
    return env.get_template("report.html.j2")


def markdown_to_html(text: str) -> str:
    """The HTML body of a Markdown text (tables scroll sideways inside their own box)."""
    # markdown-it's default link check keeps data:image/png (the inline plots) and drops javascript:.
    return str(_markdown().render(text))


def render_page(markdown_text: str, *, title: str, command: str | None = None) -> str:
    """A whole HTML page for a Markdown report.

    Args:
        markdown_text: the report (images may be data: URIs, so the page is self-contained).
        title: the page title.
        command: the command line that wrote the report, shown at the foot of the page.
    """
    from markupsafe import Markup  # noqa: PLC0415

    return str(_template().render(title=title, body=Markup(markdown_to_html(markdown_text)),
                                  version=__version__, command=command)) + "\n"
