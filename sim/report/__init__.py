"""Reports of a finished run, built from its folder: figures (matplotlib),
report.md (for a pull request) and report.html (self-contained, for approvers)."""

from __future__ import annotations

import os
from pathlib import Path

from .context import report_context
from .figures import write_figures
from .render import render_html, render_markdown
from .run_data import load_run


def write_report(folder: Path) -> None:
    """Figures, report.md and report.html of the run in ``folder``, from its files.

    Each file is written beside its final name and moved into place, so a
    rebuild that fails halfway leaves the previous report whole."""
    folder = Path(folder)
    data = load_run(folder)
    figures = write_figures(data, folder)
    context = report_context(data, figures)
    for name, text in (("report.md", render_markdown(context)), ("report.html", render_html(context, folder))):
        tmp = folder / f".{name}.partial"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / name)
