"""Running routesim with a Python that lacks its dependencies (sim/cli/dependencies.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

from conftest import ROOT


def test_the_required_packages_are_pyprojects():
    from sim.cli.dependencies import REQUIRED

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in declared}
    assert set(REQUIRED.values()) == names


def run_without_typer(checkout, *args, moved=False):
    """``ensure`` in a Python where typer cannot be imported, for a checkout at ``checkout``."""
    code = ("import sys\nsys.modules['typer'] = None\nfrom pathlib import Path\nfrom sim.cli.dependencies import ensure\n"
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


def test_outside_a_checkout_or_once_moved_it_says_what_is_missing(tmp_path):
    """Not a checkout (nothing to install), or already moved once: exit 2 (an installation
    problem, not a bug), naming the package; nothing is created."""
    for checkout, moved in ((tmp_path, False), (ROOT, True)):
        proc = run_without_typer(checkout, "validate", "x.yaml", moved=moved)
        assert proc.returncode == 2 and "stayed" not in proc.stdout
        assert proc.stderr.startswith("routesim cannot start: the package 'typer' is not installed")
    assert list(tmp_path.iterdir()) == []


def test_a_fresh_checkout_run_with_a_bare_python_installs_itself_once_and_runs(tmp_path):
    """What a new user hits first: the system's Python, no .venv yet. routesim makes the
    README's .venv in the checkout (a real venv and pip install), then runs the command
    there. A first run cut off during the install (a shell's timeout, as a user's harness
    did) leaves the install unfinished; the next run finishes it: validate says OK (exit 0)
    and a malformed scenario is bad input (exit 2). A dependency missing from that .venv later
    is installed again by the .venv's own routesim."""
    import shutil
    import signal
    import time

    checkout = tmp_path / "routesim"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "reports", ".pytest_cache", ".hypothesis", "build"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "bare")], check=True)
    bare = str(tmp_path / "bare" / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ROUTESIM_MOVED_TO_VENV", "VIRTUAL_ENV")}
    assert subprocess.run([bare, "-c", "import typer"], capture_output=True, env=env).returncode != 0

    def routesim(*args):
        return subprocess.run([bare, "-m", "sim", *args], cwd=checkout, capture_output=True, text=True, env=env,
                              timeout=900)

    # Cut off once pip has begun (the venv's Python is there), its whole process group killed.
    cut = subprocess.Popen([bare, "-m", "sim", "validate", "scenarios/compare.yaml"], cwd=checkout, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (checkout / ".venv" / "bin" / "pip").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(cut.pid, signal.SIGKILL)
    cut.wait()
    assert (checkout / ".venv" / ".routesim-installing").exists()  # the marker of an unfinished install
    first = routesim("validate", "scenarios/compare.yaml")
    assert first.returncode == 0, first.stderr
    assert "finishing the interrupted install of routesim and its dependencies once into" in first.stderr
    assert (checkout / ".venv" / "bin" / "python").is_file() and "OK" in first.stdout
    assert not (checkout / ".venv" / ".routesim-installing").exists()
    (checkout / "bad.yaml").write_text("name: bad\nmodels: {a: {provider: x}}\npolicies: 3\n")
    second = routesim("validate", "bad.yaml")
    assert second.returncode == 2, second.stderr
    assert "installing" not in second.stderr and "bad.yaml" in second.stderr + second.stdout
    # The checkout's .venv itself, routesim in it but a dependency gone (pip install --no-deps,
    # an install that failed halfway): its own routesim command completes the install and runs.
    venv_python = checkout / ".venv" / "bin" / "python"
    subprocess.run([str(venv_python), "-m", "pip", "uninstall", "-y", "-q", "typer"], check=True, env=env)
    third = subprocess.run([str(checkout / ".venv" / "bin" / "routesim"), "validate", "scenarios/compare.yaml"],
                           cwd=checkout, capture_output=True, text=True, env=env, timeout=900)
    assert third.returncode == 0, third.stderr
    assert "completing the README's install there" in third.stderr and "OK" in third.stdout
    assert subprocess.run([str(venv_python), "-c", "import typer"], env=env).returncode == 0
