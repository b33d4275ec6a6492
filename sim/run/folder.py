"""Run folders: the one place that writes, replaces, locks and reads back the
folder of a ``routesim run``.

A run folder is proven to be routesim's by its manifest (``routesim-manifest.json``),
which lists every file routesim wrote there. A later run may replace those files
and only those: anything else in the folder (the user's notes, the scenario
itself) is never deleted or overwritten, and a non-empty folder without a
manifest is refused untouched.

While a run works, the folder is locked (``flock`` on the folder itself, so no
lock file is left anywhere) and its outputs are written into a hidden partial
folder inside it. They are moved into place only when complete, with
SIGINT/SIGTERM held back for the few milliseconds of the move, so an interrupted
run never leaves a report that looks whole. A partial folder left by a killed
run (SIGKILL allows no clean-up) is removed by the next run that takes the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Annotated, Any, Iterable, Iterator

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.errors import InputError, Problem

MANIFEST = "routesim-manifest.json"
#: What ``routesim run`` writes besides the report (``sim.report.report_files()``).
RUN_FILES = ("requests.parquet", "attempts.parquet", "decisions.parquet", "replications.parquet", "summary.json",
             "summary.csv", "faults.csv", "scenario.resolved.yaml")
_PARTIAL_PREFIX = ".routesim-partial-"
_PARTIAL_MARKER = ".routesim-partial"  # inside a partial folder: proves routesim made it
_LAST = "summary.json"  # moved into place last: a folder without it is not a finished run


# --------------------------------------------------------------------------- the manifest
def read_manifest(folder: Path) -> list[str] | None:
    """The files routesim wrote in ``folder``, or None when it has no manifest."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Problem(f"damaged routesim manifest ({exc}); nothing was touched", file=str(path))) from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) and _plain_name(f) for f in files):
        raise InputError(Problem("damaged routesim manifest ('files' must list plain file names); nothing was touched",
                                 file=str(path)))
    return files


def _plain_name(name: str) -> bool:
    """A file directly in the folder: no separator, no '..', not the manifest itself."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..", MANIFEST)


def _write_manifest(folder: Path, files: Iterable[str], scratch: Path) -> None:
    from sim import __version__

    doc = {"written_by": "routesim", "routesim_version": __version__,
           "note": "routesim replaces only the files listed here; anything else in this folder is left alone",
           "files": sorted(set(files))}
    tmp = scratch / f".{MANIFEST}.partial"
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


# --------------------------------------------------------------------------- locking and checks
@contextlib.contextmanager
def locked_folder(folder: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (an existing directory); exit 2 if another run holds it."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(Problem(f"another routesim process is writing this folder; wait for it to finish "
                                     f"or choose another {what}", file=str(folder))) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _os_problem(path: Path, doing: str, exc: OSError) -> InputError:
    reason = exc.strerror or str(exc)
    return InputError(Problem(f"cannot {doing}: {reason}", file=str(path)))


def _own_partials(folder: Path) -> list[Path]:
    return [p for p in folder.glob(_PARTIAL_PREFIX + "*") if p.is_dir() and (p / _PARTIAL_MARKER).exists()]


def _remove_stale_partials(folder: Path) -> None:
    """Partial folders of killed runs, inside the output folder and proven routesim's by the
    marker it writes in them. Only called under the folder's lock, so no live run owns them.
    Nothing outside the output folder is ever removed: a folder beside it that looks like an
    older routesim's partial may be the user's."""
    for partial in _own_partials(folder):
        shutil.rmtree(partial, ignore_errors=True)


def _check_replaceable(folder: Path, will_write: Iterable[str], what: str) -> list[str]:
    """The files of the earlier run in ``folder`` (none if empty); InputError if the folder is
    not provably a routesim run or a file we would write is the user's."""
    partials = set(_own_partials(folder))
    foreign = [p for p in folder.iterdir() if p not in partials and p.name != MANIFEST]
    listed = read_manifest(folder)
    if listed is None:
        if foreign and {"summary.json", "requests.parquet"} <= {p.name for p in foreign}:
            raise InputError(Problem(f"looks like a run of an older routesim, which has no {MANIFEST} to prove "
                                     f"which files are its own; nothing was touched: remove it yourself or choose "
                                     f"another {what}", file=str(folder)))
        if foreign:
            raise InputError(Problem(f"is not empty and is not a routesim run (no {MANIFEST}); nothing was "
                                     f"touched: choose another {what}", file=str(folder)))
        return []
    ours_to_write = set(will_write) - set(listed)
    clashes = sorted(p.name for p in foreign if p.name in ours_to_write)
    if clashes:
        raise InputError(Problem(f"holds {', '.join(clashes)}, which routesim did not write; nothing was touched: "
                                 f"move it or choose another {what}", file=str(folder)))
    for name in listed:
        path = folder / name
        if path.is_symlink() or path.is_file():
            _probe_replaceable(path)
        elif path.exists():  # routesim writes files only: the manifest was edited, or the entry replaced
            raise InputError(Problem(f"{MANIFEST} lists {name}, which is a folder (or not a regular file), not a "
                                     f"file routesim wrote; nothing was touched: move it or choose another {what}",
                                     file=str(folder)))
    return listed


def _probe_replaceable(path: Path) -> None:
    """Fail now, not after the simulation, on a file we could not replace (immutable, read-only mount)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW))
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # a symlink is replaced, not written through
            raise _os_problem(path, "replace this file of the earlier run", exc) from None


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM (delivered when the block ends): the move must not stop halfway."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# --------------------------------------------------------------------------- writing a run
def check_output_folder(out: Path, will_write: Iterable[str], what: str = "--out") -> None:
    """What ``new_run`` would refuse, checked before any work (no lock, nothing written);
    ``new_run`` checks again under the lock."""
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise InputError(Problem(f"exists and is not a folder; choose another {what}", file=str(out)))
    if out.is_dir():
        _check_replaceable(out, will_write, what)


@contextlib.contextmanager
def new_run(out: Path, will_write: Iterable[str], what: str = "--out") -> Iterator[Path]:
    """Yield an empty partial folder to write a run into; when the block completes, its
    files replace the earlier run's in ``out`` (the user's own files stay)."""
    out = Path(out).absolute()
    will_write = list(will_write)
    if out.exists() and not out.is_dir():  # the rest is checked under the lock below
        raise InputError(Problem(f"exists and is not a folder; choose another {what}", file=str(out)))
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_problem(out, "create the output folder", exc) from None
    held = False  # only the process that held the lock may remove the folder it made
    try:
        with locked_folder(out, what):
            held = True
            _remove_stale_partials(out)
            listed = _check_replaceable(out, will_write, what)  # again, now that we hold the lock
            try:
                partial = Path(tempfile.mkdtemp(prefix=f"{_PARTIAL_PREFIX}{os.getpid()}-", dir=out))
            except OSError as exc:
                raise _os_problem(out, "write in the output folder", exc) from None
            try:
                (partial / _PARTIAL_MARKER).write_text(f"{os.getpid()}\n", encoding="utf-8")
            except OSError as exc:  # a full disk: the folder we just made goes again
                shutil.rmtree(partial, ignore_errors=True)
                raise _os_problem(out, "write in the output folder", exc) from None
            try:
                with _device_errors_as_input(out):
                    yield partial
                    with _signals_held():
                        _move_into_place(partial, out, listed)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    except BaseException:
        # Only if still empty, we made it and we were the one writing it: a process that found the
        # lock taken must not remove the folder the other is about to fill (both may have seen it
        # missing and both called mkdir).
        if created and held:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _move_into_place(partial: Path, out: Path, earlier: list[str]) -> None:
    new = sorted(p.name for p in partial.iterdir() if p.name != _PARTIAL_MARKER)
    # Everything that could stop the move is checked before the earlier run loses a file.
    blocked = sorted(n for n in set(new) | set(earlier) if (out / n).is_dir() and not (out / n).is_symlink())
    if blocked:
        raise InputError(Problem(f"{', '.join(blocked)} in the folder is a folder, where routesim writes a file; "
                                 "nothing of the earlier run was changed: move it or choose another --out",
                                 file=str(out)))
    try:
        # While files move, the manifest lists old and new, so the folder stays provably ours.
        _write_manifest(out, set(earlier) | set(new), partial)
        # summary.json goes first, so a folder half-way through the move never looks finished.
        for name in [_LAST] + sorted(set(earlier) - set(new) - {_LAST}):
            (out / name).unlink(missing_ok=True)
        for name in sorted(new, key=lambda n: n == _LAST):  # summary.json comes last
            os.replace(partial / name, out / name)
        _write_manifest(out, new, partial)
    except OSError as exc:
        raise _os_problem(out, "move the finished run into place", exc) from None


@contextlib.contextmanager
def updating_run(folder: Path, will_write: Iterable[str]) -> Iterator[Path]:
    """Lock a finished run to add or rewrite ``will_write`` (the report) in place;
    the manifest then lists them too."""
    folder = Path(folder)
    will_write = list(will_write)
    read_run_files(folder)
    if read_manifest(folder) is None:
        raise InputError(Problem(f"has no {MANIFEST}: written by an older routesim or not by routesim, so its files "
                                 "cannot be proven routesim's; run the scenario again", file=str(folder)))
    with locked_folder(folder, "run folder"), _device_errors_as_input(folder):
        listed = _check_replaceable(folder, will_write, "run folder")
        yield folder
        _write_manifest(folder, set(listed) | set(will_write), folder)


#: What the machine, not routesim, is to blame for when a write fails: a full disk or quota, a
#: file-size limit, a read-only or failing device.
DEVICE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


@contextlib.contextmanager
def _device_errors_as_input(folder: Path) -> Iterator[None]:
    """A write that fails for the device (``DEVICE_ERRORS``) is exit 2 naming the folder, not a bug."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DEVICE_ERRORS:
            raise
        raise InputError(Problem(f"cannot write the outputs: {os.strerror(exc.errno)}; the earlier files in the "
                                 "folder are as they were", file=str(folder))) from None


# --------------------------------------------------------------------------- reading a run back
class _Checked(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class _Metric(_Checked):
    mean: float | None
    ci95: tuple[float | None, float | None]


class _RunBlock(_Checked):
    horizon_s: Annotated[float, Field(ge=0)]
    requests_per_replication: list[Annotated[int, Field(ge=0)]]
    fault_windows: list[tuple[float, float, str, str]]
    price_changes_s: list[float]
    decision_budget_ms: Annotated[float, Field(gt=0)]


class _Summary(_Checked):
    """summary.json as ``write_summary`` writes it; anything else is a damaged file."""

    scenario: str
    seed: int
    replications: Annotated[int, Field(ge=1)]
    baseline: str
    upper_bounds: list[str] = []
    knowledge: dict[str, dict[str, str]] = {}  # per policy: what it knew (belief sources, noise, feedback)
    routesim_version: str
    run: _RunBlock | None = None
    policies: dict[str, dict[str, _Metric]]
    comparisons: list[dict[str, Any]] = []

    @model_validator(mode="after")
    def _complete(self):
        from sim.metrics.registry import SUMMARY_METRICS

        if not self.policies:
            raise ValueError("policies: no policy in the run")
        if self.baseline not in self.policies:
            raise ValueError(f"baseline '{self.baseline}' is not among the policies ({', '.join(self.policies)})")
        for name, metrics in self.policies.items():
            missing = [m for m in SUMMARY_METRICS if m not in metrics]
            if missing:
                raise ValueError(f"policies.{name}: missing metric(s) {', '.join(missing)}")
        return self


def read_run_files(folder: Path) -> tuple[dict, dict]:
    """(summary.json, scenario.resolved.yaml) of a finished run, both checked; InputError
    naming the file and what is wrong when the folder is not a whole, undamaged run."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(Problem("not a folder written by routesim run" if folder.exists() else "folder not found",
                                 file=str(folder)))
    for name in ("summary.json", "scenario.resolved.yaml", "requests.parquet"):
        if not (folder / name).is_file():
            raise InputError(Problem(f"not a finished routesim run (no {name})", file=str(folder)))
    summary, resolved = _read_summary(folder / "summary.json"), _read_resolved(folder / "scenario.resolved.yaml")
    unknown = [name for name in summary["policies"] if name not in resolved["policies"]]
    if unknown:
        raise _damaged(folder / "scenario.resolved.yaml", f"no policy {', '.join(unknown)}, which summary.json has")
    return summary, resolved


def _damaged(path: Path, what: str) -> InputError:
    return InputError(Problem(f"damaged run file: {what}", file=str(path)))


def _read_summary(path: Path) -> dict:
    from sim.errors import describe_error
    from sim.scenario.yamlio import format_path

    try:
        return _Summary.model_validate_json(path.read_bytes()).model_dump()
    except ValidationError as exc:
        problems = [Problem(f"damaged run file: {describe_error(e)}", path=format_path(e["loc"]), file=str(path))
                    for e in exc.errors()[:10]]
        raise InputError(problems) from None
    except OSError as exc:
        raise _damaged(path, exc.strerror or str(exc)) from None


def _read_resolved(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise _damaged(path, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise _damaged(path, "empty, or not a YAML mapping")
    policies = doc.get("policies")
    if not isinstance(policies, dict) or not all(isinstance(p, dict) and isinstance(p.get("kind"), str)
                                                 for p in policies.values()):
        raise _damaged(path, "'policies' must map each policy to its kind and params")
    return doc


def read_table(folder: Path, name: str, columns: list[str], filters=None):
    """Columns of one of the run's Parquet tables as pandas; InputError when the file is
    damaged, not Parquet, or lacks a column the reader needs."""
    import pyarrow.parquet as pq

    with _reading(folder, name, columns, filters) as path:
        return pq.read_table(path, columns=columns, filters=filters).to_pandas()


def scan_table(folder: Path, name: str, columns: list[str], filters=None):
    """Like ``read_table``, as pandas frames of one row group each: a reader that reduces
    the rows as they come holds one row group at a time, never the whole table. Row groups
    whose statistics rule a ``=`` filter out are not read at all (a run writes each
    (policy, replication) cell in row groups of its own). ``filters``: (column, "=" or
    "in", value) triples, all of which a row must meet."""
    import pyarrow.parquet as pq

    filters = list(filters or [])
    with _reading(folder, name, columns, filters) as path:
        file = pq.ParquetFile(path)
        extra = [c for c, _, _ in filters if c not in columns]
        for group in range(file.metadata.num_row_groups):
            if not _may_match(file.metadata.row_group(group), file.schema_arrow.names, filters):
                continue
            frame = file.read_row_group(group, columns=list(dict.fromkeys(columns + extra))).to_pandas()
            for column, op, value in filters:
                frame = frame[frame[column] == value] if op == "=" else frame[frame[column].isin(list(value))]
            if len(frame):
                yield frame.drop(columns=extra).reset_index(drop=True)


def _may_match(group, names: list[str], filters) -> bool:
    """False when the row group's min/max statistics show no row meets an ``=`` filter."""
    for column, op, value in filters:
        if op != "=":
            continue
        stats = group.column(names.index(column)).statistics
        if stats is not None and stats.has_min_max and not stats.min <= value <= stats.max:
            return False
    return True


@contextlib.contextmanager
def _reading(folder: Path, name: str, columns: list[str], filters):
    """The table's path, once it is known to have the columns needed; Arrow and file errors
    inside become InputErrors naming the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"{name}.parquet"
    try:
        present = pq.read_schema(path).names
        needed = list(columns) + [f[0] for f in filters or []]
        missing = [c for c in dict.fromkeys(needed) if c not in present]
        if missing:
            raise _damaged(path, f"missing column(s) {', '.join(missing)}")
        yield path
    except (pa.ArrowException, OSError) as exc:
        raise _damaged(path, f"cannot read it as Parquet ({str(exc).splitlines()[0]})") from None
