"""``routesim sweep``: one scenario run per cell (a base scenario with overrides,
and a seed), on local processes or a Dask cluster, resumable.

Each cell is identified by a hash of what it runs (the overridden scenario, its
seed and replications, routesim's version, and the content of every file it
reads: its trace, its plug-in policies' modules), and its result is written to
``cells/<id>.json`` the moment it lands, atomically. Rerunning a sweep skips
every cell whose file is there, so a killed sweep loses at most the cells in
flight. The outputs are made from the cell files alone, in the sweep's order,
so they are the same bytes whatever the executor, the worker count or the
order in which cells finished:

- ``sweep.parquet``: a row per (cell, seed, policy): the cell's number, each
  swept parameter, the seed, the policy and every summary metric's mean and 95%
  interval (the wall-clock decision times are left out: they are not results
  of the scenario);
- ``sweep.md``, ``sweep.html`` (the same, one self-contained page), ``sweep.json`` (what the index
  of runs lists) and figures (``sweep_report.py``).

The sweep folder is routesim's: it holds ``routesim-sweep.json`` (written
first), and a non-empty folder without it is refused untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from pydantic import ValidationError

from sim import __version__
from sim.errors import InputError, Problem, describe_error
from sim.files import atomic_file
from sim.metrics.registry import SUMMARY_METRICS
from sim.scenario.overrides import OverrideError, apply_overrides
from sim.scenario.schema.sweep import SweepSpec
from sim.scenario.yamlio import format_path, line_of, load_yaml

MARKER = "routesim-sweep.json"
CELLS = "cells"
#: Summary metrics a sweep keeps: all but the wall-clock timing of decisions.
SWEEP_METRICS = tuple(m for m in SUMMARY_METRICS if not m.startswith("decision_us"))

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SweepCell:
    number: int  # its place in the sweep (cells in order, each with every seed in order)
    overrides: dict[str, Any]
    seed: int
    data: dict  # the scenario it runs
    replications: int
    inputs: dict[str, str] = field(default_factory=dict)  # every file it reads -> the sha256 of its content

    @property
    def id(self) -> str:
        text = json.dumps({"scenario": self.data, "seed": self.seed, "replications": self.replications,
                           "routesim": __version__, "inputs": self.inputs}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass
class LoadedSweep:
    spec: SweepSpec
    path: Path
    base_path: Path
    cells: list[SweepCell]


# --------------------------------------------------------------------------- reading
def load_sweep(path: Path) -> LoadedSweep:
    """Read and check the sweep file, its base scenario and every cell's scenario (exit 2
    naming the cell and its field on a bad override or an invalid cell)."""
    from sim.scenario.load import scenario_from_data

    path = Path(path)
    raw, lines = load_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(Problem("a sweep must be a YAML mapping (name:, base:, grid: or cells:)", file=str(path),
                                 line=1))
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise InputError([Problem(describe_error(e), file=str(path), line=line_of(lines, tuple(e["loc"])),
                                  path=format_path(tuple(e["loc"]))) for e in exc.errors()]) from None
    base_path = (path.parent / spec.base).resolve()
    base, _ = load_yaml(base_path)
    base_loaded = scenario_from_data(base, base_path)  # the base itself must be valid
    if spec.claim is not None:
        policies = base_loaded.scenario.policies
        unknown = [name for name in [spec.claim.policy, *spec.claim.rivals] if name not in policies]
        if unknown:
            raise InputError(Problem(f"claim: no policy {', '.join(map(repr, unknown))} in the base scenario "
                                     f"(policies: {', '.join(policies)})", file=str(path),
                                     line=line_of(lines, ("claim",)), path="claim"))
    seeds = spec.seeds if spec.seeds is not None else [base_loaded.scenario.seed]
    replications = spec.replications or base_loaded.scenario.replications
    cells, problems = [], []
    for k, overrides in enumerate(spec.overrides()):
        try:
            data = apply_overrides(base, overrides)
        except OverrideError as exc:
            where = ("grid" if spec.grid else "cells",) + (() if spec.grid else (k,))
            problems.append(Problem(str(exc), file=str(path), line=line_of(lines, where), path=format_path(where)))
            continue
        loaded, found = checked_cell(data, base_path, f"cell {k} ({{overrides}})", overrides, str(path))
        if found:
            problems += found
            continue
        inputs = input_digests(loaded)
        for seed in seeds:
            cells.append(SweepCell(len(cells), overrides, seed, data, replications, inputs))
    if problems:
        raise InputError(problems)
    return LoadedSweep(spec, path, base_path, cells)


def checked_cell(data: dict, base_path: Path, what: str, overrides: dict, file: str):
    """(the cell's loaded scenario, []) or (None, what is wrong with it), each problem naming the
    cell by ``what`` (its ``{overrides}`` filled in as ``path = value, ...``)."""
    from sim.scenario.load import scenario_from_data

    try:
        return scenario_from_data(data, base_path), []
    except InputError as exc:
        label = ", ".join(f"{p} = {v!r}" for p, v in overrides.items())
        named = what.format(overrides=label)
        return None, [Problem(f"{named}: {p.message}", file=file or p.file, path=p.path) for p in exc.problems]


def input_digests(loaded) -> dict[str, str]:
    """The sha256 of every file a scenario reads (its trace, the modules of its ``module:Class``
    policies), by path: a cell is run again when one of them changes, even at the same path."""
    from importlib.util import find_spec

    files = [loaded.trace_path()] if loaded.trace_path() is not None else []
    for spec in loaded.scenario.policies.values():
        module = spec.kind.partition(":")[0] if ":" in spec.kind else None
        try:
            origin = find_spec(module).origin if module else None
        except (ImportError, ValueError, AttributeError):
            origin = None  # not importable from here: its import error is the scenario's problem
        if origin and origin not in ("built-in", "frozen"):
            files.append(Path(origin))
    return {str(Path(f).resolve()): _digest(Path(f)) for f in files}


_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime) -> sha256: each file read once per process


def _digest(path: Path) -> str:
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _DIGESTS:
            with path.open("rb") as f:
                _DIGESTS[key] = hashlib.file_digest(f, "sha256").hexdigest()
        return _DIGESTS[key]
    except OSError as exc:
        raise InputError(Problem(f"cannot read it: {exc.strerror or exc}", file=str(path))) from None


# --------------------------------------------------------------------------- one cell
def run_cell(data: dict, base_path: str, seed: int, replications: int) -> list[dict]:
    """Run one cell's scenario; a row of summary metrics per policy. Runs anywhere (a
    local worker or a Dask worker): everything it needs is in its arguments."""
    from sim.run.runner import run_in_scratch

    _, result = run_in_scratch(data, Path(base_path), seed, replications)
    return [{"policy": policy, **metric_columns(metrics, SWEEP_METRICS)} for policy, metrics in result.summary.items()]


def metric_columns(summary: dict, metrics) -> dict[str, Any]:
    """``<metric>_mean``, ``<metric>_ci95_lo``, ``<metric>_ci95_hi`` of a policy's summary."""
    columns: dict[str, Any] = {}
    for metric in metrics:
        columns[f"{metric}_mean"] = summary[metric]["mean"]
        columns[f"{metric}_ci95_lo"], columns[f"{metric}_ci95_hi"] = summary[metric]["ci95"]
    return columns


# --------------------------------------------------------------------------- the sweep
def run_sweep(sweep: LoadedSweep, out: Path, workers: int = 1, dask: str | None = None,
              progress: Progress | None = None) -> tuple[int, int]:
    """Run the cells not yet done and write the outputs; returns (cells run now, cells reused)."""
    out = Path(out)
    check_dask(dask)
    with claimed_folder(out, sweep.spec.name, sweep.path):
        ran, reused = run_cells(sweep.cells, sweep.base_path, out, run_cell, workers, dask, progress)
        write_outputs(sweep, out)
    return ran, reused


def run_cells(cells: list[SweepCell], base_path: Path, out: Path, function: Callable[..., list[dict]],
              workers: int, dask: str | None, progress: Progress | None) -> tuple[int, int]:
    """Run ``function(data, base_path, seed, replications)`` for each cell not recorded in
    ``out/cells`` yet, recording each result as it lands; returns (cells run, cells reused)."""
    cells_folder = out / CELLS
    if cells_folder.is_symlink() or (cells_folder.exists() and not cells_folder.is_dir()):
        raise InputError(Problem(f"{CELLS} is a link or a file, not a folder of this sweep's results; nothing was "
                                 "written: remove it or choose another --out", file=str(out)))
    cells_folder.mkdir(exist_ok=True)
    todo = [cell for cell in cells if not (out / CELLS / f"{cell.id}.json").is_file()]
    reused = len(cells) - len(todo)
    if progress:
        progress(reused, len(cells), f"{reused} cell(s) already done")
    for done, (cell, rows) in enumerate(_execute(todo, base_path, function, workers, dask), start=1):
        _record(out, cell, rows)
        if progress:
            progress(reused + done, len(cells), f"cell {cell.number}")
    return len(todo), reused


@contextlib.contextmanager
def claimed_folder(out: Path, name: str, source: Path) -> Iterator[None]:
    """Make ``out`` a sweep folder (or check that it is one; a folder routesim did not make is
    refused) and hold its lock; the marker names this sweep only once the lock is held, so a
    sweep refused for the lock changes nothing."""
    from sim.run.folder import locked_folder

    marker = out / MARKER
    if out.exists():
        if not out.is_dir():
            raise InputError(Problem("not a folder", file=str(out)))
        if not marker.is_file() and any(out.iterdir()):
            raise InputError(Problem(f"not empty and not a routesim sweep folder (no {MARKER}); nothing was "
                                     "touched: choose another --out", file=str(out)))
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(Problem(f"cannot create the folder: {exc.strerror or exc}", file=str(out))) from None
    held = False  # only the process that held the lock may remove the folder it made
    try:
        with locked_folder(out, "--out"):
            held = True
            doc = {"sweep": name, "file": str(Path(source).resolve()), "routesim_version": __version__}
            with atomic_file(marker, "sweep marker") as tmp:
                tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            yield
    except BaseException:
        if created and held and not any(out.iterdir()):  # nothing in it: the folder we made goes again
            out.rmdir()
        raise


def _record(out: Path, cell: SweepCell, rows: list[dict]) -> None:
    doc = {"id": cell.id, "overrides": cell.overrides, "seed": cell.seed, "replications": cell.replications,
           "rows": rows}
    with atomic_file(out / CELLS / f"{cell.id}.json", "cell result") as tmp:
        tmp.write_text(json.dumps(doc, allow_nan=False, default=str) + "\n", encoding="utf-8")


def _execute(cells: list[SweepCell], base_path: Path, function: Callable[..., list[dict]], workers: int,
             dask: str | None) -> Iterable[tuple[SweepCell, list]]:
    """(cell, rows) as each cell finishes: here, in local processes, or on Dask."""
    if not cells:
        return
    args = [(cell.data, str(base_path), cell.seed, cell.replications) for cell in cells]
    if dask is not None:
        yield from _on_dask(cells, args, function, dask, workers)
        return
    if workers <= 1:
        for cell, arg in zip(cells, args):
            yield cell, function(*arg)
        return
    from concurrent.futures import as_completed

    from sim.run.pools import worker_pool

    # Interrupted or failed: the cells in flight are lost, the recorded ones stay.
    with worker_pool(min(workers, len(cells))) as pool:
        futures = {pool.submit(function, *arg): cell for cell, arg in zip(cells, args)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def check_dask(address: str | None) -> None:
    """Fail before anything is written when --dask cannot work: no distributed package, or a
    scheduler that does not answer."""
    if address is None:
        return
    _distributed()
    if address != "local":
        _connect(address).close()


def _distributed():
    try:
        import distributed
    except ImportError:
        raise InputError(Problem("--dask needs Dask's distributed package: pip install 'routesim[dask]'")) from None
    return distributed


def _connect(address: str):
    try:
        return _distributed().Client(address, timeout="5s")
    except OSError as exc:
        raise InputError(Problem(f"cannot reach the Dask scheduler at {address}: {exc}")) from None
    except (ValueError, TypeError) as exc:  # distributed's words for an address it cannot parse
        raise InputError(Problem(f"--dask {address!r}: not a scheduler address ({exc}); give 'local' or "
                                 "tcp://HOST:PORT")) from None


def _on_dask(cells: list[SweepCell], args: list[tuple], function, address: str, workers: int):
    distributed = _distributed()
    cluster = None
    if address == "local":
        cluster = distributed.LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
    else:
        client = _connect(address)
    as_completed = distributed.as_completed
    try:
        futures = {client.submit(function, *arg, pure=False, key=f"routesim-cell-{cell.id}"): cell
                   for cell, arg in zip(cells, args)}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- outputs
def sweep_rows(sweep: LoadedSweep, out: Path) -> list[dict]:
    """A row per (cell, seed, policy), in the sweep's order, from the cell files."""
    return cell_rows(sweep.cells, sweep.spec.parameters(), out)


def cell_rows(cells: list[SweepCell], parameters: list[str], out: Path) -> list[dict]:
    """The recorded rows of ``cells``, in their order, each headed by the cell's number, its
    parameters and its seed."""
    rows = []
    for cell in cells:
        path = out / CELLS / f"{cell.id}.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(Problem(f"damaged cell result ({exc}); delete it to run the cell again",
                                     file=str(path))) from None
        for row in doc["rows"]:
            head = {"cell": cell.number, **{p: _cell_value(cell.overrides.get(p)) for p in parameters},
                    "seed": cell.seed}
            rows.append({**head, **row})
    return rows


def _cell_value(value: Any) -> Any:
    """A parameter's value as a table cell: numbers and text as they are, anything else as JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True)


def write_outputs(sweep: LoadedSweep, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim.report.sweep_report import write_sweep_report

    rows = sweep_rows(sweep, out)
    columns = list(rows[0]) if rows else []
    table = pa.table({c: [row.get(c) for row in rows] for c in columns})
    with atomic_file(out / "sweep.parquet", "sweep table") as tmp:
        pq.write_table(table, tmp)
    write_sweep_report(sweep, rows, out)
