"""``routesim sweep``: cells from overrides, run anywhere with the same bytes out,
resumable, checked against what the overrides must do."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from conftest import ROOT, scenario, write_scenario


def base_scenario(tmp_path, duration_s=300):
    data = scenario(replications=2)
    data["trace"]["synthetic"]["duration_s"] = duration_s
    return write_scenario(tmp_path, data, "base.yaml")


def write_sweep(tmp_path, **spec):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "base": "base.yaml", **spec}, sort_keys=False))
    return path


# --------------------------------------------------------------------------- overrides
def test_override_paths_reach_dotted_names_and_list_items():
    from sim.scenario.overrides import OverrideError, apply_overrides

    data = {"models": {"claude-sonnet-4.5": {"price": {"input_per_mtok": 3.0}}, "claude": {}},
            "events": [{"end_s": 1.0}], "policies": {"w": {"weights": {"cost": 0.1}}}}
    changed = apply_overrides(data, {"models.claude-sonnet-4.5.price.input_per_mtok": 9.0, "events[0].end_s": 60,
                                     "policies.w.weights.latency": 0.3})
    assert changed["models"]["claude-sonnet-4.5"]["price"]["input_per_mtok"] == 9.0
    assert changed["events"][0]["end_s"] == 60 and changed["policies"]["w"]["weights"] == {"cost": 0.1, "latency": 0.3}
    assert data["events"][0]["end_s"] == 1.0  # the base is not touched
    for bad, message in [("events[2].end_s", "no [2]"), ("models.gpt.price", "no key"), ("events.end_s", "index it"),
                         ("policies.w.weights.cost.x", "single value")]:
        with pytest.raises(OverrideError, match=re.escape(message)):
            apply_overrides(data, {bad: 1})


# --------------------------------------------------------------------------- running
def test_a_price_override_scales_the_cost_exactly_and_cells_match_direct_runs(tmp_path, cli):
    """With common random numbers, doubling a model's prices doubles what the policy that uses
    only it pays, to the cent; and each cell's row is the summary of a plain run of its scenario."""
    base = base_scenario(tmp_path)
    path = write_sweep(tmp_path, grid={"models.big.price.input_per_mtok": [2.0, 4.0],
                                       "models.big.price.output_per_mtok": [8.0, 16.0]})
    result = cli("sweep", path, "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert len(table) == 4 * 2  # 4 cells x 2 policies
    big = table[table.policy == "static-big"].set_index(["models.big.price.input_per_mtok",
                                                           "models.big.price.output_per_mtok"]).cost_usd_mean
    assert big[(4.0, 16.0)] == pytest.approx(2 * big[(2.0, 8.0)], rel=1e-12)
    small = table[table.policy == "static-small"].cost_usd_mean
    assert small.nunique() == 1  # untouched by the override
    # Cell 3 run directly: the same numbers as its row.
    data = yaml.safe_load(base.read_text())
    data["models"]["big"]["price"] = {"input_per_mtok": 4.0, "output_per_mtok": 16.0}
    direct = write_scenario(tmp_path, data, "direct.yaml")
    assert cli("run", direct, "--out", tmp_path / "direct", "--no-report").exit_code == 0
    summary = json.loads((tmp_path / "direct" / "summary.json").read_text())["policies"]
    for policy in ("static-big", "static-small"):
        row = table[(table.cell == 3) & (table.policy == policy)].iloc[0]
        for metric in ("cost_usd", "mean_quality", "success_rate", "latency_p95_s"):
            assert row[f"{metric}_mean"] == summary[policy][metric]["mean"]
            assert row[f"{metric}_ci95_lo"] == summary[policy][metric]["ci95"][0]
    text = (tmp_path / "out" / "sweep.md").read_text()
    assert "## The cost-quality frontier" in text and (tmp_path / "out" / "sweep_frontier.png").stat().st_size > 0
    # Two numeric parameters: a heatmap of each headline metric beside its lines, all in the report.
    for metric in ("savings_vs_baseline", "quality_delta_vs_baseline", "success_rate", "cost_per_1k_requests_usd"):
        assert f"![sweep_{metric}_heatmap.png](sweep_{metric}_heatmap.png)" in text
        assert (tmp_path / "out" / f"sweep_{metric}_heatmap.png").stat().st_size > 0


def test_the_same_bytes_from_one_process_two_processes_and_dask(tmp_path, cli):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    base_scenario(tmp_path, duration_s=120)
    path = write_sweep(tmp_path, grid={"models.small.quality.default": [0.5, 1.0, 2.0]}, seeds=[1, 2])
    outputs = []
    for name, options in [("one", ["--workers", "1"]), ("two", ["--workers", "2"]),
                          ("dask", ["--dask", "local", "--workers", "2"])]:
        result = cli("sweep", path, "--out", tmp_path / name, *options)
        assert result.exit_code == 0, result.output
        outputs.append((tmp_path / name / "sweep.parquet").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    table = pd.read_parquet(tmp_path / "one" / "sweep.parquet")
    assert list(table.seed.unique()) == [1, 2] and len(table) == 3 * 2 * 2
    # A better small model: its quality goes up with the override, seed by seed.
    small = table[table.policy == "static-small"].sort_values("cell")
    for seed in (1, 2):
        quality = small[small.seed == seed].mean_quality_mean.tolist()
        assert quality == sorted(quality) and quality[0] < quality[-1]


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path, cli):
    base_scenario(tmp_path, duration_s=600)
    path = write_sweep(tmp_path, grid={"models.small.price.input_per_mtok": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out), "--workers", "1"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "cells").glob("*.json"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert 2 <= len(kept) < 6 and not (out / "sweep.parquet").exists()
    result = cli("sweep", path, "--out", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert f"{6 - len(kept)} now, {len(kept)} reused" in result.output
    assert all((out / "cells" / name).stat().st_mtime_ns == mtime for name, mtime in kept.items())
    # The same table as a sweep that was never interrupted.
    assert cli("sweep", path, "--out", tmp_path / "whole", "--workers", "1").exit_code == 0
    assert (out / "sweep.parquet").read_bytes() == (tmp_path / "whole" / "sweep.parquet").read_bytes()


# --------------------------------------------------------------------------- bad input
def test_a_bad_override_names_the_sweep_file_and_the_path(tmp_path, cli):
    base_scenario(tmp_path)
    path = write_sweep(tmp_path, grid={"models.nope.price.input_per_mtok": [1.0]})
    result = cli("sweep", path, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "sweep.yaml" in result.output and "models.nope.price" in result.output
    path = write_sweep(tmp_path, grid={"models.big.price.input_per_mtok": [-1.0]})
    result = cli("sweep", path, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "cell 0 (models.big.price.input_per_mtok = -1.0)" in result.output
    assert not (tmp_path / "out").exists()


def test_an_unreachable_dask_scheduler_fails_before_anything_is_written(tmp_path, cli):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    import socket

    base_scenario(tmp_path)
    path = write_sweep(tmp_path, grid={"models.big.price.input_per_mtok": [1.0]})
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli("sweep", path, "--out", tmp_path / "out", "--dask", f"tcp://127.0.0.1:{port}")
    assert result.exit_code == 2 and "cannot reach the Dask scheduler" in result.output
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_a_sweeps_is_left_alone(tmp_path, cli):
    base_scenario(tmp_path)
    path = write_sweep(tmp_path, grid={"models.big.price.input_per_mtok": [1.0]})
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = cli("sweep", path, "--out", out)
    assert result.exit_code == 2 and "not a routesim sweep folder" in result.output
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


# --------------------------------------------------------------------------- the report
def test_the_sweep_report_is_a_page_of_its_own_formatted_as_a_runs_and_indexed(tmp_path, cli, monkeypatch):
    """big's price doubles across two cells; static-small does not use big, so its point is the
    same in both: on the frontier (recomputed here with pandas) it is one row, cell "every". The
    page is self-contained, its costs are dollars equal to sweep.parquet's, and reports/index.html
    lists the sweep."""
    import html as html_module

    monkeypatch.chdir(tmp_path)
    base_scenario(tmp_path)
    path = write_sweep(tmp_path, grid={"models.big.price.output_per_mtok": [8.0, 16.0]})
    result = cli("sweep", path, "--workers", "1")  # the default folder: reports/sweeps/t
    assert result.exit_code == 0, result.output
    out = tmp_path / "reports" / "sweeps" / "t"
    table = pd.read_parquet(out / "sweep.parquet")
    # The frontier by hand: static-small counted once; no other point both cheaper and better.
    points = table.drop_duplicates(["policy", "seed", "cost_per_1k_requests_usd_mean", "mean_quality_mean"])
    frontier = [r for r in points.itertuples() if not any(
        (o.cost_per_1k_requests_usd_mean <= r.cost_per_1k_requests_usd_mean and o.mean_quality_mean
         >= r.mean_quality_mean and (o.cost_per_1k_requests_usd_mean, o.mean_quality_mean)
         != (r.cost_per_1k_requests_usd_mean, r.mean_quality_mean)) for o in points.itertuples())]
    page = (out / "sweep.html").read_text()
    assert all(t.startswith(("#", "data:")) for t in re.findall(r'(?:href|src)="([^"]*)"', page))
    shown = re.findall(r'<tr data-policy="([^"]+)" data-cell="([^"]+)">', page.split('id="frontier"', 1)[1])
    assert sorted(p for p, _ in shown) == sorted(r.policy for r in frontier)
    assert ("static-small", "every") in shown
    cells = page.split('id="cells"', 1)[1].split("</table>", 1)[0]
    costs = [float(c.replace(",", "")) for c in re.findall(r"<td>\$([\d,.]+) \[", cells)]
    assert costs == pytest.approx(table.cost_per_1k_requests_usd_mean.tolist(), abs=5e-5)
    assert "%" in html_module.unescape(cells) and "Glossary" in page
    md = (out / "sweep.md").read_text()
    assert "| every |" in md and "$" in md.split("## Every cell", 1)[1]
    index = (tmp_path / "reports" / "index.html").read_text()
    assert 'data-sweep="sweeps/t"' in index and 'href="sweeps/t/sweep.html"' in index
