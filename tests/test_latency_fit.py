"""Latency that matches measurements (issue 12): the fit, its parts on synthetic
data with known answers, and the replay of llmperf's measurements through it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import SHARED_DATA

from sim.ingest.latency_check import check_fit
from sim.ingest.latency_fit import fit_latency, read_measurements
from sim.scenario.schema.latency import LatencySpec

LLMPERF = SHARED_DATA / "llmperf"
# Llama-2-70B providers with at least 100 successful requests; replicate's KS bound is its own (docs/latency.md).
PROVIDERS = {"anyscale": 0.08, "bedrock": 0.08, "fireworks": 0.08, "together": 0.08, "groq": 0.08,
             "perplexity": 0.08, "replicate": 0.09}


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_the_fitted_table_reproduces_llmperf_latencies(provider):
    path = LLMPERF / f"{provider}_70b.json"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared llmperf data)")
    measured = read_measurements(path)
    records = json.loads(path.read_text())
    ok = [r for r in records if r["error_code"] is None]
    assert len(measured.e2e_s) == len(ok)  # nothing usable lost
    check = check_fit(measured, fit_latency(measured))
    # Independently of the check's own arithmetic: percentiles and KS from the raw records.
    real = np.array([r["end_to_end_latency_s"] for r in ok])
    for p in (5, 50, 90, 99):
        error = np.percentile(check.simulated, p) / np.percentile(real, p) - 1
        assert abs(error) <= 0.05, f"{provider} p{p}: {error:+.1%}"
        assert error == pytest.approx(check.relative_errors[p])
    d = stats.ks_2samp(check.simulated, real).statistic
    assert d <= PROVIDERS[provider], f"{provider}: KS D {d:.3f}"


def test_llmperf_throughput_is_not_decode_speed():
    """Decode speed is output / (e2e - ttft); llmperf's throughput divides by the whole latency."""
    path = LLMPERF / "together_70b.json"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared llmperf data)")
    records = [r for r in json.loads(path.read_text()) if r["error_code"] is None]
    measured = read_measurements(path)
    by_hand = np.array([r["number_output_tokens"] / (r["end_to_end_latency_s"] - r["ttft_s"]) for r in records])
    assert np.allclose(measured.decode_tokens_per_s, by_hand)
    throughput = np.array([r["request_output_throughput_token_per_s"] for r in records])
    assert np.median(by_hand / throughput) > 1.2  # the TTFT in the denominator makes it look slower


def synthetic(tmp_path, n=4000, seed=3, rate=5000.0, rho=0.0):
    """Measurements from a known model: lognormal base TTFT, prefill at ``rate`` tokens/s,
    lognormal speed whose normal score correlates ``rho`` with the TTFT's."""
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal(n)
    z2 = rho * z1 + np.sqrt(1 - rho * rho) * rng.standard_normal(n)
    inputs = rng.integers(100, 20000, n)
    outputs = rng.integers(100, 400, n)
    ttft = 0.3 * np.exp(0.3 * z1) + inputs / rate
    speed = 60 * np.exp(0.2 * z2)
    frame = pd.DataFrame({"ttft_s": ttft, "end_to_end_latency_s": ttft + outputs / speed,
                          "input_tokens": inputs, "output_tokens": outputs})
    frame.to_csv(tmp_path / "m.csv", index=False)
    return tmp_path / "m.csv"


def test_a_prefill_rate_and_a_correlation_are_recovered(tmp_path):
    block = fit_latency(read_measurements(synthetic(tmp_path, rate=5000.0, rho=-0.6)))
    assert block["prefill_tokens_per_s"] == pytest.approx(5000.0, rel=0.03)
    assert block["ttft_speed_correlation"] == pytest.approx(-0.6, abs=0.05)
    spec = LatencySpec.model_validate(block)
    # The table without the prefill: the base TTFT's median 0.3 s; the speed's median 60 tokens/s.
    assert spec.ttft_s.median == pytest.approx(0.3, rel=0.03)
    assert spec.tokens_per_s.median == pytest.approx(60.0, rel=0.02)


def test_no_prefill_rate_where_the_prompt_does_not_matter(tmp_path):
    path = synthetic(tmp_path, rate=1e12)  # the prompt adds nothing measurable
    assert "prefill_tokens_per_s" not in fit_latency(read_measurements(path))


def test_the_simulator_honours_a_prefill_rate_and_a_correlation(tmp_path):
    """Replaying a fitted block through the simulator gives back the measured relation of
    TTFT to input tokens (the slope) and the rank correlation of TTFT and speed."""
    from sim.ingest.latency_check import replay

    measured = read_measurements(synthetic(tmp_path, n=1500, rate=4000.0, rho=0.5))
    block = fit_latency(measured)
    simulated = replay(measured, block, copies=4)
    assert len(simulated) == 4 * 1500
    slope = stats.linregress(simulated.input_tokens, simulated.ttft_s).slope
    assert 1 / slope == pytest.approx(4000.0, rel=0.05)
    base = simulated.ttft_s - simulated.input_tokens / block["prefill_tokens_per_s"]
    speed = simulated.output_tokens / (simulated.latency_s - simulated.ttft_s)
    # Spearman's rho of a Gaussian copula with correlation r is (6 / pi) asin(r / 2).
    assert stats.spearmanr(base, speed).statistic == pytest.approx(6 / np.pi * np.arcsin(0.25), abs=0.05)
    assert stats.ks_2samp(simulated.latency_s, measured.e2e_s).statistic < 0.05


def test_fit_latency_from_the_command_line(cli, tmp_path):
    path = synthetic(tmp_path)
    result = cli("catalog", "fit-latency", str(path), "--out", str(tmp_path / "latency.yaml"))
    assert result.exit_code == 0, result.output
    block = yaml.safe_load((tmp_path / "latency.yaml").read_text())["latency"]
    assert block == fit_latency(read_measurements(path))
    lognormal = cli("catalog", "fit-latency", str(path), "--fit", "lognormal")
    spec = yaml.safe_load(lognormal.output)["latency"]
    assert set(spec["ttft_s"]) == {"median", "p95"} and set(spec["tokens_per_s"]) == {"median", "p5"}


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"ttft_s": [0.1], "input_tokens": [1], "output_tokens": [1]}), "missing column 'end_to_end_latency_s'"),
    (pd.DataFrame({"ttft_s": [0.5] * 30, "end_to_end_latency_s": [0.4] * 30, "input_tokens": 1, "output_tokens": 5}),
     "only 0 successful requests"),
])
def test_bad_measurements_are_exit_2_naming_the_file(cli, tmp_path, frame, message):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    result = cli("catalog", "fit-latency", str(path))
    assert result.exit_code == 2 and message in result.output and "bad.csv" in result.output
    assert "Traceback" not in result.output
