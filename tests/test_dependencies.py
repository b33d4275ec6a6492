"""Running routesim with a Python that lacks its dependencies (sim/dependencies.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

from conftest import ROOT


def test_the_required_packages_are_pyprojects():
    from sim.dependencies import REQUIRED

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in declared}
    assert set(REQUIRED.values()) == names


def run_without_typer(checkout, *args, moved=False):
    """``ensure`` in a Python where typer cannot be imported, for a checkout at ``checkout``."""
    code = ("import sys\nsys.modules['typer'] = None\nfrom pathlib import Path\nfrom sim.dependencies import ensure\n"
            f"sys.argv = ['routesim', *{list(args)!r}]\nensure(Path({str(checkout)!r}))\nprint('stayed')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ROUTESIM_MOVED_TO_VENV", None)
    if moved:
        env["ROUTESIM_MOVED_TO_VENV"] = "1"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


def test_a_checkouts_venv_takes_the_command_over(tmp_path):
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "ran in the checkout\'s .venv with: $*"\n')
    python.chmod(0o755)
    proc = run_without_typer(tmp_path, "validate", "scenarios/brownout.yaml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ran in the checkout's .venv with: -m sim validate scenarios/brownout.yaml"


def test_without_a_venv_or_once_moved_it_says_what_is_missing(tmp_path):
    for checkout, moved in ((tmp_path, False), (ROOT, True)):
        proc = run_without_typer(checkout, "validate", "x.yaml", moved=moved)
        assert proc.returncode == 3 and "stayed" not in proc.stdout
        assert proc.stderr.startswith("routesim cannot start: the package 'typer' is not installed")
