"""Do two commits produce the same outputs? Every shipped scenario (``scenarios/*.yaml``) is run
and every shipped sweep (``scenarios/sweeps/*.yaml``) swept at each commit, and the results are
compared: every Parquet table (requests, attempts, decisions, replications), summary.json and
summary.csv with the wall-clock decision times left out (they are measured, not simulated),
faults.csv byte for byte, sweep.parquet cell for cell.

    python benchmarks/compare_commits.py OLD [NEW] [--no-sweeps] [--keep DIR]

OLD and NEW are commits (NEW defaults to the working tree as it is, uncommitted changes
included). Each commit runs from a git worktree of its own, with this Python, so both see the
same libraries. Exit 0 when everything matches, 1 with the differences listed otherwise.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
#: Measured on the wall clock, different on every run: not results.
WALL_CLOCK_PREFIXES = ("decision_us", "decision_cpu_us")
TABLES = ("requests", "attempts", "decisions", "replications")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the commit to compare against")
    parser.add_argument("new", nargs="?", default=None, help="a commit (default: the working tree)")
    parser.add_argument("--no-sweeps", action="store_true", help="scenarios only")
    parser.add_argument("--keep", type=Path, default=None, help="keep the outputs under this folder")
    args = parser.parse_args()
    scratch = Path(args.keep or tempfile.mkdtemp(prefix="routesim-compare-"))
    old_tree = _worktree(args.old, scratch / "old-tree")
    new_tree = ROOT if args.new is None else _worktree(args.new, scratch / "new-tree")
    try:
        jobs = _jobs(old_tree, not args.no_sweeps)
        problems: list[str] = []
        for kind, relative in jobs:
            outs = [scratch / side / relative.stem for side in ("old", "new")]
            for tree, out in zip((old_tree, new_tree), outs):
                _run(tree, kind, relative, out)
            found = _compare_sweep(*outs) if kind == "sweep" else _compare_run(*outs)
            print(f"{'same' if not found else 'DIFFERENT'}  {kind} {relative}", flush=True)
            problems += [f"{relative}: {p}" for p in found]
    finally:
        for tree in {old_tree, new_tree} - {ROOT}:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    print(f"{len(jobs)} compared, {len({p.split(':')[0] for p in problems})} different; outputs in {scratch}")
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


def _worktree(commit: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(where), commit],
                   check=True, capture_output=True)
    return where


def _jobs(tree: Path, sweeps: bool) -> list[tuple[str, Path]]:
    runs = [("run", p.relative_to(tree)) for p in sorted((tree / "scenarios").glob("*.yaml"))]
    if sweeps:
        runs += [("sweep", p.relative_to(tree)) for p in sorted((tree / "scenarios" / "sweeps").glob("*.yaml"))]
    return runs


def _run(tree: Path, kind: str, scenario: Path, out: Path) -> None:
    """``python -m sim`` from the tree itself, so that tree's ``sim`` is the one imported."""
    command = [sys.executable, "-m", "sim", kind, str(scenario), "--out", str(out)]
    command += ["--no-report"] if kind == "run" else []
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: a gate failed, the outputs are written
        raise SystemExit(f"{' '.join(command)} (in {tree}) exited {done.returncode}:\n{done.stderr}")


def _compare_run(old: Path, new: Path) -> list[str]:
    problems = []
    for table in TABLES:
        a, b = (_without_wall_clock(pq.read_table(side / f"{table}.parquet")) for side in (old, new))
        if not _same_table(a, b):
            problems.append(f"{table}.parquet differs")
    a, b = (_summary(side / "summary.json") for side in (old, new))
    if a != b:
        problems.append("summary.json differs")
    csvs = sorted({p.name for p in old.glob("*.csv")} | {p.name for p in new.glob("*.csv")})
    for name in csvs:
        if not ((old / name).is_file() and (new / name).is_file()) or _csv(old / name) != _csv(new / name):
            problems.append(f"{name} differs")
    return problems


def _compare_sweep(old: Path, new: Path) -> list[str]:
    a, b = (pq.read_table(side / "sweep.parquet") for side in (old, new))
    return [] if _same_table(a, b) else ["sweep.parquet differs"]


def _same_table(a, b) -> bool:
    """Same schema and values, NaN equal to NaN (Arrow's equals counts NaN as a difference)."""
    return a.schema.equals(b.schema) and a.to_pandas().equals(b.to_pandas())


def _without_wall_clock(table):
    return table.drop_columns([c for c in table.column_names if c.startswith(WALL_CLOCK_PREFIXES)])


def _csv(path: Path) -> str:
    """The file's text, or with wall-clock columns (summary.csv's) its rows without them."""
    text = path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    keep = [k for k, name in enumerate(rows[0] if rows else []) if not name.startswith(WALL_CLOCK_PREFIXES)]
    if rows and len(keep) == len(rows[0]):
        return text
    return "\n".join(",".join(row[k] for k in keep) for row in rows)


def _summary(path: Path):
    """summary.json with every wall-clock key removed, at any depth."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not k.startswith(WALL_CLOCK_PREFIXES)}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(json.loads(path.read_text()))


if __name__ == "__main__":
    sys.exit(main())
