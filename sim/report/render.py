"""Jinja2 rendering of the report templates."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


def markdown_text(value):
    """Every value printed into report.md: names and reasons come from user files, so
    HTML is shown as text (as report.html escapes it) and cannot break a table."""
    if not isinstance(value, str):
        return value
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


_MARKDOWN = Environment(loader=PackageLoader("sim.report", "templates"), undefined=StrictUndefined,
                        keep_trailing_newline=True, finalize=markdown_text)
_HTML = Environment(loader=PackageLoader("sim.report", "templates"), undefined=StrictUndefined,
                    autoescape=select_autoescape(["html", "j2"]))


def render_markdown(context: dict) -> str:
    return _MARKDOWN.get_template("report.md.j2").render(**context)


def embedded_images(folder: Path, files) -> dict[str, str]:
    """Each PNG of ``folder`` named in ``files`` as a data URI: a page that carries its figures."""
    return {file: "data:image/png;base64," + base64.b64encode((folder / file).read_bytes()).decode("ascii")
            for file in files}


def render_html(context: dict, folder: Path) -> str:
    """One self-contained file: every figure embedded as a data URI, no network needed."""
    return _HTML.get_template("report.html.j2").render(images=embedded_images(folder, context["figures"]), **context)


def render_page(template: str, **context) -> str:
    """Any other HTML page of routesim's (the comparison, the index of runs), escaped as report.html is."""
    return _HTML.get_template(template).render(**context)

