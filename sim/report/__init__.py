"""Reports of a finished run: figures (matplotlib) and report.md (jinja2)."""

from __future__ import annotations

from pathlib import Path

from .figures import write_figures
from .markdown import render_markdown


def write_report(result, resolved: dict, folder: Path) -> None:
    figures = write_figures(result, folder)
    (folder / "report.md").write_text(render_markdown(result, resolved, figures), encoding="utf-8")
