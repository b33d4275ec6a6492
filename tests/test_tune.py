"""``routesim tune``: the cheapest candidate that passes the gates, decided as
``routesim gate`` decides, and checked again on a fresh seed."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from conftest import scenario, write_scenario


def test_values_from_ranges_and_lists():
    from sim.experiments.tune import parse_values

    assert parse_values("0:0.3:0.1") == [0.0, 0.1, 0.2, 0.3]
    assert parse_values("0.5, 1, 2") == [0.5, 1, 2]
    for bad in ("1:0:0.1", "0:1:0", "0:1000:0.1", "1,,2"):
        with pytest.raises(ValueError):
            parse_values(bad)


def tuned_scenario(tmp_path):
    data = scenario(replications=3, gates={"min_savings": 0.3, "min_success_rate": 0.95},
                    policies={"static-big": {"kind": "static", "model": "big"},
                              "w": {"kind": "weighted", "weights": {"cost": 0.1, "quality": 1.0}}},
                    baseline="static-big")
    data["trace"]["synthetic"]["duration_s"] = 300
    return write_scenario(tmp_path, data, "tune.yaml")


def test_the_choice_is_the_cheapest_passing_candidate_and_each_verdict_is_the_gates(tmp_path, cli):
    path = tuned_scenario(tmp_path)
    out = tmp_path / "out"
    result = cli("tune", path, "--policy", "w", "--param", "weights.cost=0,0.5,2,8", "--out", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "tune.parquet")
    assert len(table) == 4
    passing = table[table.passed]
    # Worked out here from the table: the cheapest of the passing candidates.
    cheapest = passing.sort_values("cost_per_1k_requests_usd_mean").iloc[0]
    chosen = yaml.safe_load((out / "chosen.yaml").read_text())["policies"]["w"]
    assert chosen["weights"]["cost"] == cheapest["policies.w.weights.cost"]
    assert chosen["kind"] == "weighted" and chosen["weights"]["quality"] == 1.0  # the rest of the policy as it was
    # Each candidate's verdict is what `routesim gate` says of a plain run of it.
    for _, row in table.iterrows():
        data = yaml.safe_load(path.read_text())
        data["policies"]["w"]["weights"]["cost"] = row["policies.w.weights.cost"]
        run = tmp_path / f"run-{row.cell}"
        assert cli("run", write_scenario(tmp_path, data, f"c{row.cell}.yaml"), "--out", run, "--no-report").exit_code == 0
        gate = cli("gate", run, "--candidate", "w")
        assert gate.exit_code == (0 if row.passed else 1), (row.to_dict(), gate.output)
    text = (out / "tune.md").read_text()
    assert "on a fresh seed (1000004)" in text  # the scenario's seed 1 + the offset
    value = cheapest["policies.w.weights.cost"]  # at an end of 0, 0.5, 2, 8: the best may lie beyond
    end = "lowest" if value == 0 else "highest" if value == 8 else None
    note = f"weights.cost = {value:g} is the {end} value searched: the cheapest passing setting may lie beyond it"
    assert (note in result.output and note in text) if end else "value searched" not in result.output
    # Rerunning reuses every candidate.
    again = cli("tune", path, "--policy", "w", "--param", "weights.cost=0,0.5,2,8", "--out", out, "--workers", "1")
    assert "0 run now, 4 reused" in again.output


def test_tuning_needs_gates_and_a_tunable_policy(tmp_path, cli):
    path = tuned_scenario(tmp_path)
    data = yaml.safe_load(path.read_text())
    data.pop("gates")
    bare = write_scenario(tmp_path, data, "bare.yaml")
    result = cli("tune", bare, "--policy", "w", "--param", "weights.cost=0,1")
    assert result.exit_code == 2 and "gates:" in result.output
    result = cli("tune", path, "--policy", "static-big", "--param", "model=small")
    assert result.exit_code == 2 and "baseline" in result.output
    result = cli("tune", path, "--policy", "w", "--param", "weights.cost=-1")
    assert result.exit_code == 2 and "candidate policies.w.weights.cost = -1" in result.output


def test_an_optuna_search_is_the_same_on_any_number_of_workers_and_resumes(tmp_path, cli):
    pytest.importorskip("optuna", reason="the tune extra (optuna) is not installed")
    path = tuned_scenario(tmp_path)
    args = ["tune", path, "--policy", "w", "--param", "weights.cost=0:4", "--param", "weights.quality=0.5,1",
            "--search", "optuna", "--trials", "6"]
    one = cli(*args, "--out", tmp_path / "one", "--workers", "1")
    two = cli(*args, "--out", tmp_path / "two", "--workers", "2")
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert (tmp_path / "one" / "tune.parquet").read_bytes() == (tmp_path / "two" / "tune.parquet").read_bytes()
    table = pd.read_parquet(tmp_path / "one" / "tune.parquet")
    assert len(table) == 6
    assert table["policies.w.weights.cost"].between(0, 4).all()
    assert set(table["policies.w.weights.quality"]) <= {0.5, 1}
    chosen = yaml.safe_load((tmp_path / "one" / "chosen.yaml").read_text())["policies"]["w"]["weights"]
    best = table[table.passed].sort_values(["cost_per_1k_requests_usd_mean", "cell"]).iloc[0]
    assert chosen["cost"] == best["policies.w.weights.cost"] and chosen["quality"] == best["policies.w.weights.quality"]
    again = cli(*args, "--out", tmp_path / "one", "--workers", "1")
    assert "0 run now, 6 reused" in again.output


def test_a_grid_refuses_an_open_range(tmp_path, cli):
    result = cli("tune", tuned_scenario(tmp_path), "--policy", "w", "--param", "weights.cost=0:4")
    assert result.exit_code == 2 and "lo:hi is for --search optuna" in result.output


def test_no_setting_to_roll_out_is_exit_1(tmp_path, cli):
    """As the gate: when no candidate passes, or the cheapest passing one fails on the fresh seed,
    tune exits 1. The fresh-seed case is built from the runs themselves: a scenario seed whose
    savings' lower bound (a t-interval over the replications' costs, computed here with pandas
    and scipy) is higher on the tuning seed than on the fresh one, and a threshold between."""
    import numpy as np
    from scipy import stats

    from sim.experiments.tune import VALIDATION_SEED_OFFSET

    path = tuned_scenario(tmp_path)
    impossible = yaml.safe_load(path.read_text())
    impossible["gates"]["min_savings"] = 0.99
    result = cli("tune", write_scenario(tmp_path, impossible, "impossible.yaml"), "--policy", "w", "--param",
                 "weights.cost=0,8", "--out", tmp_path / "none", "--workers", "1")
    assert result.exit_code == 1 and "nothing chosen" in result.output, result.output

    def lower_bound(data, seed):
        run = tmp_path / f"seed-{seed}"
        assert cli("run", write_scenario(tmp_path, data, "one.yaml"), "--seed", str(seed), "--out", run,
                   "--no-report").exit_code == 0
        cost = pd.read_parquet(run / "requests.parquet").groupby(["policy", "replication"]).cost_usd.sum()
        savings = 1 - cost["w"] / cost["static-big"]
        return savings.mean() - stats.t.ppf(0.975, len(savings) - 1) * savings.std(ddof=1) / np.sqrt(len(savings))

    data = yaml.safe_load(path.read_text())
    data["policies"]["w"]["weights"]["cost"] = 0.3  # a mix of the two models: savings vary by seed
    for seed in range(1, 12):
        tuned, fresh = lower_bound(data, seed), lower_bound(data, seed + VALIDATION_SEED_OFFSET)
        if tuned > fresh + 1e-3:
            break
    else:
        pytest.fail("no seed in 1-11 whose tuning bound is above its fresh one")
    data.update(seed=seed, gates={"min_savings": float((tuned + fresh) / 2)})
    result = cli("tune", write_scenario(tmp_path, data, "edge.yaml"), "--policy", "w", "--param", "weights.cost=0.3",
                 "--out", tmp_path / "noise", "--workers", "1")
    assert "on a fresh seed: FAILS a check" in result.output, result.output
    assert result.exit_code == 1


def test_a_policy_other_than_the_gates_candidate_can_be_tuned(tmp_path, cli):
    """gates.candidate names w; tuning another policy (w2) checks w2 against the gates, not fails
    for the candidate it left out."""
    path = tuned_scenario(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["gates"]["candidate"] = "w"
    data["policies"]["w2"] = {"kind": "weighted", "weights": {"cost": 0.1, "quality": 1.0}}
    result = cli("tune", write_scenario(tmp_path, data, "two.yaml"), "--policy", "w2", "--param", "weights.cost=8",
                 "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code in (0, 1) and "1 candidate(s)" in result.output, result.output
    assert pd.read_parquet(tmp_path / "out" / "tune.parquet").policy.tolist() == ["w2"]
