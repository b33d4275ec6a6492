"""Every shipped scenario runs end to end (shortened to keep the suite fast)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from sim.run.runner import load_trace, run_to_folder
from sim.scenario.load import load_scenario

from conftest import ROOT

SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted((ROOT / "docs" / "examples").glob("*.yaml"))


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
    from sim.experiments.sweep import load_sweep

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


def test_the_main_job_opens_with_a_verdict(tmp_path, cli):
    """`routesim run scenarios/compare.yaml`, the README's first command, ends with the rollout
    decision of its gates: every check's PASS or FAIL is what the 95% t-intervals computed here
    from requests.parquet (pandas, scipy) give, and the report opens with the same verdict."""
    import re

    import numpy as np
    from scipy import stats

    result = cli("run", ROOT / "scenarios" / "compare.yaml", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    gates = yaml.safe_load((ROOT / "scenarios" / "compare.yaml").read_text())["gates"]
    requests = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    ok = requests.status == "ok"
    by = [requests.policy, requests.replication]
    cost = requests.cost_usd.groupby(by).sum()
    quality = requests.quality.where(ok, 0).groupby(by).mean()
    answered = requests.quality[ok].groupby([requests.policy[ok], requests.replication[ok]]).mean()
    success = ok.groupby(by).mean()

    def interval(values):
        half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
        return values.mean() - half, values.mean() + half

    candidate, baseline = gates["candidate"], "static-gpt5"
    expected = {
        "min_savings": interval(1 - cost[candidate] / cost[baseline])[0] >= gates["min_savings"],
        "max_quality_drop": (interval(quality[baseline] - quality[candidate])[1] <= gates["max_quality_drop"]
                             and interval(answered[baseline] - answered[candidate])[1] <= gates["max_quality_drop"]),
        "min_success_rate": interval(success[candidate])[0] >= gates["min_success_rate"],
    }
    printed = result.output.split("Rollout gate", 1)[1]
    verdict = re.search(rf"{candidate} vs {baseline}: (PASS|FAIL)(?: \(([^)]*)\))?", printed)
    assert verdict, printed
    failed = set(verdict.group(2).split(", ")) if verdict.group(2) else set()
    assert failed == {name for name, passed in expected.items() if not passed}
    assert verdict.group(1) == ("PASS" if all(expected.values()) else "FAIL")
    page = (tmp_path / "out" / "report.html").read_text()
    decision = page.split("Decision</h2>", 1)[1].split("<h2", 1)[0]
    assert "No rollout gate" not in decision
    assert f'data-candidate="{candidate}" data-passed="{str(all(expected.values())).lower()}"' in decision
