"""Files routesim reads and writes one at a time: an input is checked to be a
readable regular file before it is parsed; an output is checked before the work,
written beside its final name and moved into place only when complete, so a
failure leaves the earlier file (or nothing) and never half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InputError, Problem


def check_input_file(path: Path) -> None:
    """An input must be a regular file (not missing, a folder, a device or a pipe)."""
    if not path.exists():
        raise InputError(Problem("file not found", file=str(path)))
    if path.is_dir():
        raise InputError(Problem("is a folder, not a file", file=str(path)))
    if not path.is_file():
        raise InputError(Problem("is not a regular file", file=str(path)))


def check_writable(path: Path, what: str = "output") -> None:
    """Exit 2 now, before any work, if ``path`` cannot be written: it is a folder, or the
    nearest existing folder on its way is not a folder or refuses a new file. Nothing is
    created here (a folder still missing is made when the file is written)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(Problem(f"is a folder; give a file name for the {what}", file=str(path)))
    existing = next((p for p in path.absolute().parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InputError(Problem(f"cannot write the {what} here: {existing} is not a folder", file=str(path)))
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise InputError(Problem(f"cannot write the {what} here: {exc.strerror or exc}", file=str(path))) from None


@contextlib.contextmanager
def atomic_file(path: Path, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` when the block completes."""
    path = Path(path)
    check_writable(path, what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(Problem(f"cannot write the {what} here: {exc.strerror or exc}", file=str(path))) from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(Problem(f"cannot write the {what}: {exc.strerror or exc}", file=str(path))) from None
    finally:
        tmp.unlink(missing_ok=True)


def first_line_is(path: Path, marker: str) -> bool:
    """Whether ``path`` is a file whose first line is ``marker``: how routesim knows a page it
    writes outside a run folder (a comparison, an index of runs) is its own to replace."""
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as f:
            return f.readline().rstrip("\n") == marker
    except OSError:
        return False

