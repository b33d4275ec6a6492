"""Before the command line loads: can this Python import what routesim needs?

The usual way to miss them is to run routesim from a checkout with another
Python than the one it was installed into (``python -m sim ...`` with the
system's Python after the README's ``pip install -e .`` into ``.venv``). Then,
when the checkout has that ``.venv``, the command runs again there, unchanged;
otherwise it stops (exit 3) naming a missing package and the command that
installs them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

#: Import name -> the distribution pyproject.toml requires (a test keeps the two in step).
REQUIRED = {"typer": "typer", "simpy": "simpy", "numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow",
            "matplotlib": "matplotlib", "yaml": "pyyaml", "pydantic": "pydantic", "jinja2": "jinja2", "scipy": "scipy"}
MISSING_DEPENDENCY = ("routesim cannot start: the package '{}' is not installed. Install routesim with its "
                      "dependencies, e.g. python -m venv .venv && . .venv/bin/activate && pip install -e .")
#: Set when routesim has moved itself into the checkout's .venv, so it never tries twice.
_MOVED = "ROUTESIM_MOVED_TO_VENV"


def missing() -> list[str]:
    """The required distributions whose modules this Python cannot import."""
    return [dist for module, dist in REQUIRED.items() if importlib.util.find_spec(module) is None]


def checkout_python(root: Path | None = None) -> Path | None:
    """The Python of the checkout's ``.venv`` (the README's install), if there is one."""
    root = Path(__file__).resolve().parent.parent if root is None else root
    python = root / ".venv" / "bin" / "python"
    return python if python.is_file() and os.access(python, os.X_OK) else None


def ensure(root: Path | None = None) -> None:
    """Return when everything imports; else run the same command in the checkout's .venv, or
    exit 3 saying what is missing."""
    gone = missing()
    if not gone:
        return
    python = checkout_python(root)
    here = Path(sys.prefix).resolve() == python.parent.parent.resolve() if python is not None else True
    if python is not None and not here and not os.environ.get(_MOVED):
        os.environ[_MOVED] = "1"
        os.execv(str(python), [str(python), "-m", "sim", *sys.argv[1:]])
    sys.stderr.write(MISSING_DEPENDENCY.format(gone[0]) + "\n")
    raise SystemExit(3)
