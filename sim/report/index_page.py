"""``reports/index.html``: the runs in a folder at a glance, newest first: scenario,
when it ran, seed, replications, the gate's result (gate.json) and links.

It is rebuilt after each ``routesim run`` into ``reports/`` (or into a folder that
already has routesim's index), and by ``routesim index FOLDER``. The page's first
line marks it as routesim's: an ``index.html`` without it is the user's and is
never replaced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError, Problem
from sim.files import first_line_is
from sim.run.folder import MANIFEST

INDEX = "index.html"
MARKER = "<!-- routesim index of runs -->"


@dataclass
class IndexedRun:
    name: str  # the folder's name, as the link
    scenario: str
    finished: str  # when summary.json was written (local time)
    seed: str
    replications: str
    baseline: str
    policies: str
    gate: str  # "PASS: dynamic vs static-gpt5", "FAIL: ...", or "" when no gate ran
    gate_passed: bool | None
    has_report: bool
    problem: str  # why the folder could not be read ("" when it could)
    mtime: float


def find_runs(folder: Path) -> list[IndexedRun]:
    """Every run folder directly inside ``folder`` (one with routesim's manifest), newest first."""
    from sim.verdicts.gate import read_gate
    from sim.run.folder import read_run_files

    runs = []
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir() and (p / MANIFEST).is_file()):
        summary_path = sub / "summary.json"
        mtime = summary_path.stat().st_mtime if summary_path.is_file() else sub.stat().st_mtime
        finished = dt.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M")
        try:
            summary, _ = read_run_files(sub)
            gate = read_gate(sub)
        except InputError as exc:  # listed, with what is wrong, rather than failing the whole index
            runs.append(IndexedRun(sub.name, "", finished, "", "", "", "", "", None, False,
                                   "; ".join(p.message for p in exc.problems), mtime))
            continue
        verdict = "" if gate is None else \
            f"{'PASS' if gate.passed else 'FAIL'}: {gate.candidate} vs {gate.baseline}"
        runs.append(IndexedRun(sub.name, summary["scenario"], finished, str(summary["seed"]),
                               str(summary["replications"]), summary["baseline"], ", ".join(summary["policies"]),
                               verdict, None if gate is None else gate.passed, (sub / "report.html").is_file(), "",
                               mtime))
    return sorted(runs, key=lambda r: (-r.mtime, r.name))


@dataclass
class IndexedSweep:
    path: str  # the folder, relative to the index (sweeps/<name>)
    name: str
    finished: str
    runs: str  # "12 (6 cells x 2 seeds)"
    parameters: str
    claim: str  # "dynamic holds in 3 of 12 run(s)", or ""
    claim_holds: bool | None  # in every run
    mtime: float


def find_sweeps(folder: Path) -> list[IndexedSweep]:
    """Every finished sweep in ``folder`` or its ``sweeps/`` (a folder with sweep.json), newest first."""
    import json

    from .sweep_report import SWEEP_RECORD

    found = []
    for record in sorted([*Path(folder).glob(f"*/{SWEEP_RECORD}"), *Path(folder).glob(f"sweeps/*/{SWEEP_RECORD}")]):
        try:
            doc = json.loads(record.read_text(encoding="utf-8"))
            claim = doc.get("claim")
            mtime = record.stat().st_mtime
            found.append(IndexedSweep(
                record.parent.relative_to(folder).as_posix(), str(doc["name"]),
                dt.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M"),
                f"{doc['runs']} ({doc['cells']} cells x {len(doc['seeds'])} seeds)", ", ".join(doc["parameters"]),
                "" if not claim else f"{claim['policy']} holds in {claim['holds']} of {claim['total']} run(s)",
                None if not claim else claim["holds"] == claim["total"], mtime))
        except (OSError, ValueError, KeyError, TypeError):  # not a sweep of ours after all: not listed
            continue
    return sorted(found, key=lambda s: (-s.mtime, s.path))


def write_index(folder: Path) -> Path:
    """Write ``folder``/index.html (replacing only routesim's own); returns its path."""
    from sim.files import atomic_file
    from .render import render_page

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(Problem("not a folder" if folder.exists() else "folder not found", file=str(folder)))
    path = folder / INDEX
    if path.exists() and not first_line_is(path, MARKER):
        raise InputError(Problem("exists and is not routesim's index of runs; it is left as it is", file=str(path)))
    html = render_page("index.html.j2", folder=folder.name or str(folder), runs=find_runs(folder),
                       sweeps=find_sweeps(folder))
    with atomic_file(path, "index") as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path


def index_after_sweep(sweep_folder: Path, default_reports: Path) -> Path | None:
    """After a sweep into ``reports/sweeps/<name>`` (or beside routesim's index): that index again."""
    parent = Path(sweep_folder).absolute().parent
    return _reindex((parent, parent.parent) if parent.name == "sweeps" else (parent,), default_reports)


def index_after_run(run_folder: Path, default_reports: Path) -> Path | None:
    """After a run: rebuild the index of the folder holding it when that is the default
    reports folder or already has routesim's index; elsewhere nothing is written unasked."""
    return _reindex((Path(run_folder).absolute().parent,), default_reports)


def _reindex(folders, default_reports: Path) -> Path | None:
    """The index of the first of ``folders`` that is the default reports folder or has
    routesim's index, rewritten; None when none is."""
    for folder in folders:
        if folder == Path(default_reports).absolute() or first_line_is(folder / INDEX, MARKER):
            return write_index(folder)
    return None

