"""Every shipped scenario runs end to end (shortened to keep the suite fast)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from sim.runner import load_trace, run_to_folder
from sim.scenario import load_scenario

from conftest import ROOT

SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_runs(tmp_path, path):
    data = yaml.safe_load(path.read_text())
    synthetic = data["trace"].get("synthetic")
    if synthetic:  # 20 minutes, keeping every fault and spike that starts in them
        synthetic["duration_s"] = 1500
    else:
        data["trace"]["path"] = str((path.parent / data["trace"]["path"]).resolve())
    data["replications"] = 1
    shortened = tmp_path / path.name
    shortened.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    run_to_folder(load_scenario(shortened), out)
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["policies"]) == list(data["policies"])
    requests = pd.read_parquet(out / "requests.parquet")
    loaded = load_scenario(shortened)
    trace = load_trace(loaded, loaded.scenario.seed, 0)
    assert requests.groupby("policy").size().to_dict() == {name: len(trace) for name in data["policies"]}
    for name, metrics in summary["policies"].items():  # the summary is the request table's, policy by policy
        mine = requests[requests.policy == name]
        assert metrics["success_rate"]["mean"] == pytest.approx((mine.status == "ok").mean(), abs=1e-12), name
        assert metrics["cost_usd"]["mean"] == pytest.approx(mine.cost_usd.sum(), rel=1e-9), name
        assert 0.5 < metrics["success_rate"]["mean"] <= 1.0, name
        assert metrics["cost_usd"]["mean"] > 0, name
    report = (out / "report.md").read_text()
    for name in data["policies"]:
        assert f"| {name}" in report, name


SWEEPS = sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_runs(tmp_path, path, cli):
    """Each shipped sweep's cells validate; shortened (5 minutes of traffic, one replication,
    the first two cells) it runs and gives a row per cell and policy."""
    from sim.sweep import load_sweep

    full = load_sweep(path)
    assert len(full.cells) >= 5
    spec = yaml.safe_load(path.read_text())
    base = yaml.safe_load((path.parent / spec["base"]).read_text())
    base["trace"]["synthetic"]["duration_s"] = 300
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    if "grid" in spec:
        first = next(iter(spec["grid"]))
        spec.update(grid={first: spec["grid"][first][:2]})
    else:
        spec.update(cells=spec["cells"][:2])
    spec.update(base="base.yaml", replications=1)
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = cli("sweep", tmp_path / "sweep.yaml", "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert len(table) == 2 * len(base["policies"])
    if "claim" in spec:
        assert "## The claim" in (tmp_path / "out" / "sweep.md").read_text()
