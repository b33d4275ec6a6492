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
