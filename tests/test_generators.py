"""Arrival processes and shape-preserving transforms, checked against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.errors import InputError
from sim.scenario.schema.traffic import SyntheticTrace
from sim.traces.synthetic import generate
from sim.traces.table import interarrival_cv, read_trace
from sim.traces import transforms

from conftest import SHARED_DATA


def synthetic(**kw) -> SyntheticTrace:
    return SyntheticTrace.model_validate({"duration_s": 100_000, "rate_per_s": 2.0, **kw})


@pytest.mark.parametrize("cv", [2.0, 4.0])
def test_a_bursty_trace_hits_its_target_cv_and_rate(cv):
    trace = generate(synthetic(arrival="bursty", bursty={"cv": cv, "busy_share": 0.25}), np.random.default_rng(3))
    assert abs(interarrival_cv(trace.arrival_s) - cv) < 0.1 * cv
    assert len(trace) / 100_000 == pytest.approx(2.0, rel=0.05)


def test_a_diurnal_trace_follows_its_sine():
    amplitude, period = 0.6, 10_000.0
    spec = synthetic(arrival="diurnal", diurnal={"period_s": period, "amplitude": amplitude, "peak_s": 2500})
    arrival = generate(spec, np.random.default_rng(4)).arrival_s
    # Share of arrivals within a quarter period of a peak: the integral of the rate, 1/2 + amplitude/pi.
    phase = ((arrival - 2500) / period) % 1.0
    near_peak = ((phase < 0.25) | (phase >= 0.75)).mean()
    expected = 0.5 + amplitude / math.pi
    assert abs(near_peak - expected) < 4 * math.sqrt(expected * (1 - expected) / len(arrival))
    assert len(arrival) / 100_000 == pytest.approx(2.0, rel=0.02)  # the mean rate is unchanged


def test_poisson_is_the_default_and_has_cv_one():
    trace = generate(synthetic(), np.random.default_rng(5))
    assert interarrival_cv(trace.arrival_s) == pytest.approx(1.0, abs=0.02)


@pytest.fixture
def trace():
    spec = synthetic(duration_s=2000, workloads={"a": 0.5, "b": 0.5}, arrival="bursty")
    return generate(spec, np.random.default_rng(6))


def test_time_compression_divides_duration_and_keeps_order_and_tokens(trace):
    for k in (2.0, 7.5):
        faster = transforms.scale_time(trace, k)
        assert faster.duration_s == pytest.approx(trace.duration_s / k)
        assert (faster.request_id == trace.request_id).all()
        assert (faster.input_tokens == trace.input_tokens).all() and (faster.output_tokens == trace.output_tokens).all()
        assert np.allclose(np.diff(faster.arrival_s) * k, np.diff(trace.arrival_s))
    target = transforms.to_rate(trace, 10.0)
    assert len(target) / target.duration_s == pytest.approx(10.0)


def test_sampling_windowing_and_merging(trace):
    kept = transforms.sample(trace, 0.3, np.random.default_rng(7))
    n = len(trace)
    assert abs(len(kept) - 0.3 * n) < 4 * math.sqrt(0.3 * 0.7 * n)
    original = trace.to_pandas().set_index("request_id")
    sampled = kept.to_pandas().set_index("request_id")
    pd.testing.assert_frame_equal(sampled, original.loc[sampled.index])  # same rows, same order, same values

    cut = transforms.window(trace, 500.0, 1200.0)
    inside = original[(original.arrival_s >= 500) & (original.arrival_s < 1200)]
    assert len(cut) == len(inside) and np.allclose(cut.arrival_s, inside.arrival_s - 500)

    merged = transforms.merge([("x", kept), ("y", cut)])
    assert len(merged) == len(kept) + len(cut)
    assert (np.diff(merged.arrival_s) >= 0).all() and len(set(merged.request_id)) == len(merged)
    assert merged.workloads == ["x", "y"]
    assert (merged.workload_names() == "y").sum() == len(cut)
    with pytest.raises(InputError, match="labels must differ"):
        transforms.merge([("x", kept), ("x", cut)])
    with pytest.raises(InputError, match="no request arrives"):
        transforms.window(trace, 1e6, 2e6)


def test_a_labels_trace_from_routellm_correctness(tmp_path, cli):
    table = SHARED_DATA / "routellm" / "gsm8k_labels.csv"
    if not table.exists():
        pytest.skip(f"RouteLLM labels not found at {table}")
    out = tmp_path / "gsm8k.parquet"
    result = cli("trace", "labels", table, out, "--model", "gpt-4=gpt_4_1106_correct",
                 "--model", "mixtral=mixtral_8x7b_correct", "--rate", "2")
    assert result.exit_code == 0, result.output
    raw = pd.read_csv(table)
    trace = read_trace(out)
    assert len(trace) == len(raw)
    assert trace.quality_labels["gpt-4"].mean() == pytest.approx(raw.gpt_4_1106_correct.mean())  # 85.7%
    assert trace.quality_labels["mixtral"].mean() == pytest.approx(raw.mixtral_8x7b_correct.mean())  # 63.8%
    assert (trace.input_tokens == np.maximum(np.rint(raw.prompt_chars / 4), 1)).all()
    assert len(trace) / trace.duration_s == pytest.approx(2.0, rel=0.1)
    result = cli("trace", "labels", table, out, "--model", "gpt-4=no_such_column")
    assert result.exit_code == 2 and "missing column(s) no_such_column" in result.output


def test_transform_cli_errors_are_clear(tmp_path, cli):
    source = tmp_path / "t.csv"
    source.write_text("arrival_s,input_tokens,output_tokens\n0,1,1\n5,2,2\n")
    result = cli("trace", "transform", source, tmp_path / "o.csv", "--window", "soon")
    assert result.exit_code == 2 and "--window 'soon'" in result.output
    result = cli("trace", "transform", source, tmp_path / "o.csv", "--speedup", "2", "--rate", "3")
    assert result.exit_code == 2 and "not both" in result.output
    result = cli("trace", "transform", source, tmp_path / "o.csv", "--speedup", "2")
    assert result.exit_code == 0 and read_trace(tmp_path / "o.csv").duration_s == pytest.approx(2.5)


def test_a_scenario_replays_a_trace_file_at_another_scale(tmp_path):
    from conftest import read, run_scenario_data, scenario

    rng = np.random.default_rng(8)
    n = 3000
    arrival = np.sort(rng.uniform(0, 3000, n))
    pd.DataFrame({"arrival_s": arrival, "input_tokens": rng.integers(1, 500, n), "output_tokens": 20}
                 ).to_csv(tmp_path / "t.csv", index=False)
    data = scenario(trace={"path": "t.csv", "replay": {"window_s": [1000, 2000], "sample": 0.5, "rate_per_s": 2.0}},
                    policies={"s": {"kind": "static", "model": "small"}}, baseline="s", replications=2)
    requests = read(run_scenario_data(tmp_path, data))
    inside = ((arrival >= 1000) & (arrival < 2000)).sum()
    for r, run in requests.groupby("replication"):
        assert abs(len(run) - inside / 2) < 4 * np.sqrt(inside / 4)
        assert len(run) / run.arrival_s.max() == pytest.approx(2.0)  # the mean rate asked for
    first, second = (set(run.input_tokens) for _, run in requests.groupby("replication"))
    assert first != second  # each replication samples afresh
