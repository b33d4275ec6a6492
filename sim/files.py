"""Writing one output file safely: checked before the work, written beside its
final name and moved into place only when complete, so a failure leaves the
earlier file (or nothing) and never half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InputError, Problem


def check_writable(path: Path, what: str = "output") -> None:
    """Exit 2 now, before any work, if ``path`` cannot be written: its folder is missing
    and cannot be made, is not a folder, or refuses a new file; or ``path`` is a folder."""
    path = Path(path)
    if path.is_dir():
        raise InputError(Problem(f"is a folder; give a file name for the {what}", file=str(path)))
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise InputError(Problem(f"cannot write the {what} here: {blocker} is not a folder", file=str(path)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise InputError(Problem(f"cannot write the {what} here: {exc.strerror or exc}", file=str(path))) from None


@contextlib.contextmanager
def atomic_file(path: Path, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` when the block completes."""
    path = Path(path)
    check_writable(path, what)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(Problem(f"cannot write the {what}: {exc.strerror or exc}", file=str(path))) from None
    finally:
        tmp.unlink(missing_ok=True)
