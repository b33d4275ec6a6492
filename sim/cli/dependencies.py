"""Before the command line loads: can this Python import what routesim needs?

The usual way to miss them is to run routesim from a checkout with another
Python than the one it was installed into (``python -m sim ...`` with the
system's Python, before or after the README's ``pip install -e .`` into
``.venv``). Then the command runs again, unchanged, in the checkout's
``.venv``: the one already there, or one routesim makes once with the README's
install (``python -m venv .venv`` and ``pip install -e .``) when the checkout
has none. That install takes a minute or two; one that was cut off (a shell's
timeout kills it) is finished by the next run, which the marker it leaves in
``.venv`` tells apart from a .venv of the user's. Run from the checkout's
``.venv`` itself without the dependencies (routesim installed there with
``--no-deps``, or an install that failed halfway), it completes the README's
``pip install -e .`` there. Only when that cannot be done (not a checkout, no network to the
package index) does it stop, with exit 2 (an installation problem the user
fixes, not a bug of ours), naming a missing package and the command that
installs them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Import name -> the distribution pyproject.toml requires (a test keeps the two in step).
REQUIRED = {"typer": "typer", "simpy": "simpy", "numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow",
            "matplotlib": "matplotlib", "adjustText": "adjusttext", "yaml": "pyyaml", "pydantic": "pydantic",
            "jinja2": "jinja2", "scipy": "scipy"}
MISSING_DEPENDENCY = ("routesim cannot start: the package '{}' is not installed. Install routesim with its "
                      "dependencies, e.g. python -m venv .venv && . .venv/bin/activate && pip install -e .")
#: The exit code when the dependencies are missing and cannot be installed: bad input, like a bad file.
MISSING_EXIT = 2
#: Set when routesim has moved itself into the checkout's .venv, so it never tries twice.
_MOVED = "ROUTESIM_MOVED_TO_VENV"
#: How long the one-time install may take before routesim gives up on it.
INSTALL_TIMEOUT_S = 900
#: In the checkout's .venv while routesim's own install of it is unfinished.
INSTALLING = ".routesim-installing"


def missing() -> list[str]:
    """The required distributions whose modules this Python cannot import."""
    return [dist for module, dist in REQUIRED.items() if importlib.util.find_spec(module) is None]


def checkout_python(root: Path | None = None) -> Path | None:
    """The Python of the checkout's ``.venv`` (the README's install), if there is one."""
    root = Path(__file__).resolve().parents[2] if root is None else root
    python = root / ".venv" / "bin" / "python"
    return python if python.is_file() and os.access(python, os.X_OK) else None


def ensure(root: Path | None = None) -> None:
    """Return when everything imports; else run the same command in the checkout's .venv
    (made first when the checkout has none, finished when routesim's own install of it was
    interrupted), or exit 2 saying what is missing."""
    gone = missing()
    if not gone:
        return
    root = Path(__file__).resolve().parents[2] if root is None else root
    python = checkout_python(root)
    if python is not None and Path(sys.prefix).resolve() == python.parent.parent.resolve():
        # This is the checkout's .venv, routesim in it without its dependencies (pip install
        # --no-deps, an install cut off): finish the README's install there and run again.
        if complete_checkout_venv(root, gone):
            os.environ[_MOVED] = "1"
            os.execv(sys.executable, [sys.executable, "-m", "sim", *sys.argv[1:]])
    elif not os.environ.get(_MOVED):
        if python is None or (root / ".venv" / INSTALLING).exists():
            python = install_into_checkout(root, gone)
        if python is not None and Path(sys.prefix).resolve() != python.parent.parent.resolve():
            os.environ[_MOVED] = "1"
            os.execv(str(python), [str(python), "-m", "sim", *sys.argv[1:]])
    sys.stderr.write(MISSING_DEPENDENCY.format(gone[0]) + "\n")
    raise SystemExit(MISSING_EXIT)


def complete_checkout_venv(root: Path, gone: list[str]) -> bool:
    """``pip install -e root`` into the running Python (the checkout's .venv), once: whether it
    now has everything. Never twice in a row (a failed install is reported, not retried)."""
    if os.environ.get(_MOVED):
        return False
    sys.stderr.write(f"routesim: the checkout's .venv ({sys.prefix}) lacks {', '.join(gone)}; completing the "
                     "README's install there (pip install -e .; a minute or two) ...\n")
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e",
                        str(root)], check=True, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        output = (getattr(exc, "stderr", None) or str(exc)).strip().splitlines()
        sys.stderr.write(f"routesim: the install failed: {output[-1] if output else exc}\n")
        return False
    return True


def install_into_checkout(root: Path, gone: list[str]) -> Path | None:
    """The README's install into ``root/.venv`` when ``root`` is a routesim checkout without one,
    or with one routesim began and did not finish (killed by a timeout, say: the marker
    ``INSTALLING`` stays until pip is done). Its Python, or None when it is not a checkout, the
    .venv is someone else's, or the install fails (then nothing of the attempt is left behind).
    Two first runs at once take turns: the second finds the install done."""
    import fcntl

    if not (root / "pyproject.toml").is_file() or not (root / "sim" / "cli" / "app.py").is_file():
        return None  # not a checkout: nothing to install into
    venv, python = root / ".venv", root / ".venv" / "bin" / "python"
    lock = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the descriptor closes
        resuming = (venv / INSTALLING).exists()
        if venv.exists() and not resuming:
            return checkout_python(root)  # someone else's .venv, or one another run just finished
        what = "finishing the interrupted install of" if resuming else "installing"
        sys.stderr.write(f"routesim: this Python ({sys.executable}) lacks {', '.join(gone)}; {what} routesim and "
                         f"its dependencies once into {venv} (python -m venv, pip install -e .; a minute or two; "
                         "if interrupted, the next run finishes it) ...\n")
        try:
            venv.mkdir(exist_ok=True)
            (venv / INSTALLING).write_text("routesim's install of this .venv has not finished\n")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True,
                           timeout=INSTALL_TIMEOUT_S)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e",
                            str(root)], check=True, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            (venv / INSTALLING).unlink()
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(venv, ignore_errors=True)  # ours: a half install would mislead the next run
            output = (getattr(exc, "stderr", None) or str(exc)).strip().splitlines()
            sys.stderr.write(f"routesim: the install failed: {output[-1] if output else exc}\n")
            return None
        return python
    finally:
        os.close(lock)
