"""`routesim gate`: a go/no-go decided on confidence intervals, with exit codes CI can act on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import read, run_scenario_data, scenario

POLICIES = {"static-big": {"kind": "static", "model": "big"},
            "cheap": {"kind": "static", "model": "small", "fallbacks": ["big"]},
            "mix": {"kind": "simple-shuffle", "weights": {"big": 1, "small": 1}},  # savings vary by replication
            "oracle": {"kind": "oracle"}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    # 'cheap' costs a tenth of 'static-big' (prices 0.2/0.8 vs 2/8) but answers worse (ability 1 vs 3).
    data = scenario(replications=4, policies=POLICIES, baseline="static-big",
                    gates={"candidate": "cheap", "min_savings": 0.5})
    return run_scenario_data(tmp_path_factory.mktemp("gate"), data)


def test_a_clear_pass_exits_0(run, cli):
    result = cli("gate", run, "--candidate", "cheap", "--min-savings", "0.8", "--min-success-rate", "0.99",
                 "--max-p95-latency-ratio", "1.5", "--max-decision-p99-us", "100000")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "FAIL" not in result.output
    assert "lower bound of the 95% confidence interval" in result.output  # it says how it decides


def test_a_clear_fail_exits_1_and_names_the_check(run, cli):
    result = cli("gate", run, "--candidate", "cheap", "--min-savings", "0.5", "--max-quality-drop", "0.02")
    assert result.exit_code == 1
    assert "FAIL (max_quality_drop)" in result.output


def test_the_scenario_gates_section_is_used(run, cli):
    result = cli("gate", run)  # candidate and threshold from gates:
    assert result.exit_code == 0 and "min_savings" in result.output


def test_the_decision_uses_the_interval_not_the_mean(run, cli):
    requests = read(run)
    cost = requests.groupby(["policy", "replication"]).cost_usd.sum()
    savings = 1 - cost["mix"] / cost["static-big"]  # per replication, paired
    mean, sd, n = savings.mean(), savings.std(ddof=1), len(savings)
    lower = mean - stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    between = (mean + lower) / 2  # the mean clears it, the lower bound does not
    assert lower < between < mean
    result = cli("gate", run, "--candidate", "mix", "--min-savings", f"{between:.10f}")
    assert result.exit_code == 1, result.output
    assert f"{lower * 100:.2f}% (lower 95% bound)" in result.output
    result = cli("gate", run, "--candidate", "mix", "--min-savings", f"{lower - 1e-6:.10f}")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, message", [
    (["--candidate", "nope", "--min-savings", "0.1"], "unknown candidate policy 'nope'"),
    (["--candidate", "cheap", "--baseline", "nope", "--min-savings", "0.1"], "unknown baseline policy 'nope'"),
    (["--candidate", "oracle", "--min-savings", "0.1"], "upper bound"),
])
def test_bad_input_exits_2(run, cli, args, message):
    result = cli("gate", run, *args)
    assert result.exit_code == 2 and message in result.output


def test_a_folder_that_is_no_run_exits_2(cli, tmp_path):
    result = cli("gate", tmp_path, "--candidate", "x", "--min-savings", "0.1")
    assert result.exit_code == 2 and "no summary.json" in result.output


@pytest.fixture(scope="module")
def broken_baseline(tmp_path_factory):
    """The baseline's model is down for half the run, so it fails about half its requests; the
    candidate answers every request from a worse model. Over all requests (failures count 0)
    the candidate looks better; its answers are worse by far more than a 0.02 allowance."""
    data = scenario(replications=4, baseline="static-big",
                    policies={"static-big": {"kind": "static", "model": "big"},
                              "cheap": {"kind": "static", "model": "small"}},
                    events=[{"kind": "outage", "provider": "pa", "start_s": 0, "end_s": 300}])
    data["router"] = {"timeout_s": 60, "max_attempts": 1}
    data["models"]["small"]["quality"] = {"default": 2.0}
    return run_scenario_data(tmp_path_factory.mktemp("broken"), data)


def _paired_interval(requests: pd.DataFrame, answered_only: bool) -> tuple[float, float, float]:
    """The quality drop (baseline minus cheap) per replication, its mean and 95% t-interval."""
    ok = requests.status == "ok"
    if answered_only:
        quality = requests[ok].groupby(["policy", "replication"]).quality.mean()
    else:  # a failed request counts 0, over every request
        quality = requests.quality.where(ok, 0).groupby([requests.policy, requests.replication]).mean()
    drop = quality["static-big"] - quality["cheap"]
    mean, half = drop.mean(), stats.t.ppf(0.975, len(drop) - 1) * drop.std(ddof=1) / np.sqrt(len(drop))
    return mean, mean - half, mean + half


def test_a_quality_gate_cannot_pass_because_the_baseline_is_down(broken_baseline, cli):
    requests = read(broken_baseline)
    all_mean, _, all_hi = _paired_interval(requests, answered_only=False)
    answered_mean, _, answered_hi = _paired_interval(requests, answered_only=True)
    assert all_hi < 0 < 0.02 < answered_mean  # the case: better over all requests, worse answers
    result = cli("gate", broken_baseline, "--candidate", "cheap", "--max-quality-drop", "0.02")
    assert result.exit_code == 1, result.output
    assert "FAIL (max_quality_drop)" in result.output
    lines = {line.split(" (")[0] + (" answered" if "answered requests only" in line else ""): line
             for line in result.output.splitlines() if line.startswith("max_quality_drop")}
    assert f"{all_hi:.4f} (upper 95% bound)" in lines["max_quality_drop"] and "PASS" in lines["max_quality_drop"]
    assert f"{answered_hi:.4f} (upper 95% bound)" in lines["max_quality_drop answered"]
    assert lines["max_quality_drop answered"].rstrip().endswith("FAIL")
