"""Helpers shared by the tests: small scenarios built in code and run in-process."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from sim.cli.app import app
from sim.run.runner import run_to_folder
from sim.scenario.load import load_scenario

from hypothesis import settings

# No property test depends on the wall clock (hypothesis' default 200 ms deadline per example
# fails on a busy machine). In CI they replay a fixed sequence of examples, so a run is
# reproducible; locally they explore new ones every time.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def patience(seconds: float) -> float:
    """How long a test waits for a process that should take ``seconds`` on a quiet machine: that
    many times more as there are runnable processes per core (the load average; at most 10x), so
    a bound holds on a loaded machine without hiding a hang on a quiet one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return seconds * min(10.0, max(1.0, os.getloadavg()[0] / cores))

# Any test that imports litellm (the conformance extra) uses its bundled price map: no network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

FAST = {"ttft_s": {"median": 0.5, "p95": 1.0}, "tokens_per_s": {"median": 100, "p5": 50}}

BASE = {
    "name": "t",
    "seed": 1,
    "replications": 2,
    "trace": {"synthetic": {"duration_s": 600, "rate_per_s": 2,
                            "workloads": {"chat": 0.6, "code": 0.4},
                            "input_tokens": {"median": 500, "p95": 2000},
                            "output_tokens": {"median": 100, "p95": 400}}},
    "models": {
        "big": {"provider": "pa", "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
                "latency": FAST, "quality": {"default": 3.0}},
        "small": {"provider": "pb", "price": {"input_per_mtok": 0.2, "output_per_mtok": 0.8},
                  "latency": FAST, "quality": {"default": 1.0}},
    },
    "router": {"timeout_s": 60, "max_attempts": 3},
    "policies": {"static-big": {"kind": "static", "model": "big"},
                 "static-small": {"kind": "static", "model": "small"}},
    "baseline": "static-big",
}


def scenario(**overrides) -> dict:
    """A deep copy of BASE with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(overrides))
    return data


def write_scenario(folder: Path, data: dict, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_scenario_data(folder: Path, data: dict, **kwargs) -> Path:
    """Run a scenario given as a dict; returns the output folder."""
    path = write_scenario(folder, data)
    out = folder / "out"
    run_to_folder(load_scenario(path), out, **kwargs)
    return out


def install_plugin(tmp_path: Path, monkeypatch, module: str, source: str):
    """Write ``source`` as an importable module named ``module`` (a policy plug-in) and import it afresh."""
    import importlib
    import sys

    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop(module, None)
    return importlib.import_module(module)


def read(out: Path, table: str = "requests") -> pd.DataFrame:
    return pd.read_parquet(out / f"{table}.parquet")


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def open_in_chromium(page_file: Path, scripts: list[str], screenshot: Path | None = None) -> tuple[list[str], list]:
    """Open a page in the system's headless Chromium (skipping the test without it): the
    console errors and page errors it raised, and the value of each script evaluated there."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's package where apt-get works)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(page_file.as_uri())
        values = [page.evaluate(script) for script in scripts]
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return problems, values



@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL (tests/postgres.py) for the session: its URL, a database 'litellm'."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (the logs extra)")
    from postgres import Cluster

    try:
        cluster = Cluster()
        cluster.start()
    except RuntimeError as exc:
        pytest.skip(f"no PostgreSQL here: {exc}")
    yield cluster.url
    cluster.stop()
