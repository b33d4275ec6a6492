"""Issue 10: scenario files that would exhaust memory, slip wrong types through, or
hide problems behind others are refused at once, with every problem in one pass."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, scenario, write_scenario


def _validate(cli, path):
    result = cli("validate", path)
    return result.exit_code, result.output


@pytest.mark.parametrize("rate, duration, expected", [(1e12, 600, "6e+14"), (2, 1e300, "2e+300"),
                                                      (1e300, 1e300, "inf")])
def test_a_trace_too_large_to_simulate_is_refused_with_its_estimate(cli, tmp_path, rate, duration, expected):
    data = scenario()
    data["trace"]["synthetic"].update(rate_per_s=rate, duration_s=duration)
    code, output = _validate(cli, write_scenario(tmp_path, data))
    assert code == 2
    assert f"trace.synthetic: expects about {expected} requests per replication" in output
    assert "at most 50,000,000" in output


def test_the_estimate_counts_spikes(cli, tmp_path):
    data = scenario()
    # 2 req/s x 600 s = 1,200; a spike of 1e5 req/s over 500 s adds 5e7: just over the limit.
    data["trace"]["synthetic"]["spikes"] = [{"start_s": 100, "end_s": 600, "rate_per_s": 1e5}]
    code, output = _validate(cli, write_scenario(tmp_path, data))
    assert code == 2 and "expects about 5e+07 requests" in output


@pytest.mark.parametrize("field, value, message", [
    (("trace", "synthetic", "rate_per_s"), True, "must be a number (got true)"),
    (("models", "big", "price", "input_per_mtok"), "1.0", "must be a number (got '1.0')"),
    (("replications",), "3", "must be a whole number (got '3')"),
    (("seed",), 1.5, "must be a whole number (got 1.5)"),
    # A price or carbon figure so large that a run's sums would overflow to infinity.
    (("models", "big", "price", "input_per_mtok"), 1e300, "must be <= 1e+06 (got 1e+300)"),
    (("models", "big", "carbon_g_per_mtok"), 1e300, "must be <= 1e+09 (got 1e+300)"),
])
def test_booleans_and_quoted_numbers_are_not_numbers(cli, tmp_path, field, value, message):
    data = scenario()
    node = data
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    code, output = _validate(cli, write_scenario(tmp_path, data))
    assert code == 2 and f"{'.'.join(field)}: {message}" in output


def test_a_list_as_a_key_is_refused_with_its_line(cli, tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario(), sort_keys=False) + "? [x, y]\n: 1\n")
    code, output = _validate(cli, path)
    lines = path.read_text().splitlines()
    assert code == 2
    assert f"scenario.yaml:{len(lines) - 1}: a key must be a single value such as a name" in output


def _bomb(levels: int, width: int = 9) -> str:
    text = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        text.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(text) + "\n"


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(9) + yaml.safe_dump(scenario(), sort_keys=False))  # 9^9 = 387 million values
    proc = subprocess.run([sys.executable, "-m", "sim", "validate", str(path)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert "expands to more than 200,000 values through its aliases" in proc.stderr


def test_aliases_that_stay_small_are_fine(cli, tmp_path):
    path = write_scenario(tmp_path, scenario())
    # A common, legitimate use: the two models share one latency block through an anchor.
    assert "latency: &id001" in path.read_text() and "latency: *id001" in path.read_text()
    code, output = _validate(cli, path)
    assert code == 0, output


def test_a_recursive_alias_is_refused(cli, tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("name: &loop [1, *loop]\n")
    code, output = _validate(cli, path)
    assert code == 2 and "an alias refers to the value that contains it" in output


def test_an_oversized_scenario_file_is_refused(cli, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (5 * 1024 * 1024) + "\n")
    code, output = _validate(cli, path)
    assert code == 2 and "more than a scenario may have (5,242,880)" in output


def test_every_problem_is_reported_in_one_pass(cli, tmp_path):
    data = scenario(replications=0)
    data["policies"]["typo"] = {"kind": "static", "model": "nosuch"}
    data["models"]["small"]["price"]["input_per_mtok"] = -1  # an error inside a model that is still declared
    data["policies"]["uses-small"] = {"kind": "static", "model": "small"}
    data["baseline"] = "missing-policy"
    code, output = _validate(cli, write_scenario(tmp_path, data))
    assert code == 2
    assert "replications: must be >= 1 (got 0)" in output
    assert "models.small.price.input_per_mtok: must be >= 0 (got -1)" in output
    assert "policies.typo.model: unknown model 'nosuch'" in output
    assert "baseline: unknown policy 'missing-policy'" in output
    assert "unknown model 'small'" not in output  # declared, though its entry has an error
    assert len(output.strip().splitlines()) == 4


def test_an_event_after_the_trace_ends_is_warned_about(cli, tmp_path):
    data = scenario(replications=1)
    data["events"] = [{"kind": "outage", "provider": "pa", "start_s": 5000, "end_s": 6000},
                      {"kind": "outage", "provider": "pa", "start_s": 100, "end_s": 200},
                      {"kind": "price", "model": "big", "at_s": 601, "input_per_mtok": 1, "output_per_mtok": 1}]
    path = write_scenario(tmp_path, data)
    lines = path.read_text().splitlines()
    event_lines = [i + 1 for i, line in enumerate(lines) if line.startswith("- kind:")]
    result = cli("validate", path)
    assert result.exit_code == 0
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {path}:{event_lines[0]}: events[0]: outage at 5000 s begins after the trace ends (600 s): "
        "it never applies",
        f"warning: {path}:{event_lines[2]}: events[2]: price at 601 s begins after the trace ends (600 s): "
        "it never applies"]
    result = cli("run", path, "--out", tmp_path / "out", "--no-report")
    assert result.exit_code == 0 and result.output.count("warning:") == 2
