"""Reports of a finished run, built from its folder: figures (matplotlib),
report.md (for a pull request) and report.html (self-contained, for approvers).

The drawing modules load matplotlib, so they are imported only when a report is written.
"""

from __future__ import annotations

from pathlib import Path

from sim.files import atomic_file

TEXT_FILES = ("report.md", "report.html")


def report_files() -> list[str]:
    """Every file a report writes into a run folder."""
    from .figures import FIGURES

    return list(TEXT_FILES) + list(FIGURES)


def write_report(folder: Path) -> None:
    """Figures, report.md and report.html of the run in ``folder``, from its files.

    Each text file is written beside its final name and moved into place, so a
    rebuild that fails halfway leaves the previous report whole."""
    from .context import report_context
    from .figures import write_figures
    from .render import render_html, render_markdown
    from .run_data import load_run

    folder = Path(folder)
    data = load_run(folder)
    figures = write_figures(data, folder)
    context = report_context(data, figures)
    for name, text in (("report.md", render_markdown(context)), ("report.html", render_html(context, folder))):
        with atomic_file(folder / name, "report") as tmp:
            tmp.write_text(text, encoding="utf-8")


def rebuild_report(folder: Path) -> None:
    """``routesim report``: rewrite the report of a finished run in place, under its lock;
    refuses to overwrite a file of the same name that routesim did not write."""
    from sim.run.folder import updating_run

    with updating_run(folder, report_files()):
        write_report(folder)


def record_gate(folder: Path, record) -> None:
    """Write gate.json into the run folder (under its lock; never over a file routesim did not
    write there) and, when the run has a report, rewrite the report so it opens with this gate.
    Here, not in gate.py: the gate judges a run and writes its own file; the report reads it."""
    from sim.verdicts.gate import GATE_FILE, write_gate_file
    from sim.run.folder import updating_run

    folder = Path(folder)
    has_report = (folder / "report.html").is_file()
    with updating_run(folder, [GATE_FILE] + (report_files() if has_report else [])):
        write_gate_file(folder, record)
        if has_report:
            write_report(folder)
