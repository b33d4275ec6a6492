"""Issue 10: scenario files that would exhaust memory, slip wrong types through, or
hide problems behind others are refused at once, with every problem in one pass."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --------------------------------------------------------------------------- sweep files and tune ranges (issue 25)
def _sweep(tmp_path, **spec):
    write_scenario(tmp_path, scenario(replications=1), "base.yaml")
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": "base.yaml", **spec}))
    return path


def _allocated_mib(call) -> float:
    """The most memory Python allocated while ``call`` ran (tracemalloc's peak), in MiB."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
    except Exception:  # noqa: BLE001 - the caller checks what it raised
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def test_a_sweep_grid_past_the_cap_is_refused_without_building_its_cells(cli, tmp_path):
    """3 axes of 1,000 values are a billion cells: refused from the axes' lengths, in a few MiB."""
    from sim.experiments.sweep import load_sweep

    values = [round(0.001 * k, 3) for k in range(1000)]
    path = _sweep(tmp_path, grid={"models.big.error_rate": values, "models.small.error_rate": values,
                                  "models.big.price.input_per_mtok": values})
    result = cli("sweep", path, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "1,000,000,000 runs (cells x seeds): at most 10,000" in result.output
    assert not (tmp_path / "out").exists()
    assert _allocated_mib(lambda: load_sweep(path)) < 50


def test_a_tune_grid_past_the_cap_is_refused_without_building_its_candidates(cli, tmp_path):
    from sim.experiments.tune import setup

    data = scenario(replications=1, gates={"min_success_rate": 0.5},
                    policies={"static-big": {"kind": "static", "model": "big"},
                              "w": {"kind": "weighted", "weights": {"cost": 0.1, "quality": 1.0}}})
    path = write_scenario(tmp_path, data, "tune.yaml")
    fine = ["--param", "weights.cost=0:0.999:0.001", "--param", "weights.quality=0:0.999:0.001"]
    result = cli("tune", path, "--policy", "w", *fine, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "1,000,000 candidates: at most 10,000" in result.output
    assert not (tmp_path / "out").exists()
    assert _allocated_mib(lambda: setup(path, "w", fine[1::2])) < 50


RANGE_TOKENS = ["0", "1", "0.1", "-2", "1e400", "-1e400", "inf", "-inf", "nan", ".inf", "1e-400", "9" * 400, "[", "]",
                "{", "}", "[1, 2", "{a: 1", ":", ",", " ", "'", '"', "&x", "*x", "!!python/object:os.system", "|", ""]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(RANGE_TOKENS), min_size=1, max_size=6).map("".join))
def test_tune_ranges_are_values_or_a_clear_refusal(text):
    """Whatever follows PARAM=, the grid's and Optuna's parsers give finite values, or a
    ValueError (exit 2) that quotes what was given; never another exception (exit 3)."""
    import math

    from sim.experiments.tune import parse_space, parse_values

    for parse in (parse_values, parse_space):
        try:
            parsed = parse(text)
        except ValueError as exc:
            assert "'" in str(exc)  # it quotes the text or its part
            continue
        flat = parsed if parse is parse_values else (parsed[1] if parsed[0] == "choice" else list(parsed[1:]))
        assert all(math.isfinite(v) for v in flat if isinstance(v, float)), (text, parsed)
        assert len(flat) <= 1000


@pytest.mark.parametrize("text", ["0:inf:0.1", "0:1e400:1", "[1,2", "{a: 1", ".nan,1", "0:1:1e-400", "nan,1"])
def test_a_bad_tune_range_is_exit_2(cli, tmp_path, text):
    data = scenario(replications=1, gates={"min_success_rate": 0.5},
                    policies={"static-big": {"kind": "static", "model": "big"},
                              "w": {"kind": "weighted", "weights": {"cost": 0.1, "quality": 1.0}}})
    path = write_scenario(tmp_path, data, "tune.yaml")
    result = cli("tune", path, "--policy", "w", "--param", f"weights.cost={text}", "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "--param weights.cost:" in result.output or "candidate policies.w.weights.cost = 'nan': must be a number" \
        in result.output  # 'nan' is text in YAML: the candidate's scenario refuses it
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["tcp://", "foo bar", "tcp://host:notaport", "tcp://[::1", "::::", "tls://:"])
def test_a_dask_address_that_does_not_parse_is_exit_2(cli, tmp_path, address):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    path = _sweep(tmp_path, grid={"models.big.error_rate": [0.0]})
    result = cli("sweep", path, "--out", tmp_path / "out", "--dask", address)
    assert result.exit_code == 2, result.output
    assert "not a scheduler address" in result.output or "cannot reach the Dask scheduler" in result.output
    assert not (tmp_path / "out").exists()


def test_a_seed_beyond_64_bits_is_exit_2_and_leaves_nothing(cli, tmp_path):
    huge = 2**70
    path = _sweep(tmp_path, seeds=[huge], grid={"models.big.error_rate": [0.0]})
    result = cli("sweep", path, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "seeds[0]: must be <= 4611686018427387903" in result.output, result.output
    assert not (tmp_path / "out").exists()
    base = write_scenario(tmp_path, scenario(replications=1, seed=huge), "big-seed.yaml")
    result = cli("run", base, "--out", tmp_path / "run")
    assert result.exit_code == 2 and "seed: must be <= 4611686018427387903" in result.output, result.output
    result = cli("run", tmp_path / "base.yaml", "--seed", str(huge), "--out", tmp_path / "run")
    assert result.exit_code == 2 and "not in the range" in result.output
    assert not (tmp_path / "run").exists()
