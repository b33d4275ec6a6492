"""Ground truth: each model's latency, errors, quality, timeouts and charges
against formulas evaluated here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import read, run_scenario_data, scenario

Z95 = 1.6448536269514722


def trace_file(folder, n, output_tokens, input_tokens=100, workload="chat", difficulty=None, labels=None, gap=1.0):
    frame = pd.DataFrame({"arrival_s": np.arange(n) * gap, "input_tokens": input_tokens,
                          "output_tokens": output_tokens, "workload": workload})
    if difficulty is not None:
        frame["difficulty"] = difficulty
    for model, values in (labels or {}).items():
        frame[f"quality.{model}"] = values
    frame.to_csv(folder / "trace.csv", index=False)
    return frame


def model(ttft=(0.5, 1.0), tps=(100, 50), price=(1.0, 2.0), error_rate=0.0, quality=0.0, **extra):
    spec = {"provider": "p", "price": {"input_per_mtok": price[0], "output_per_mtok": price[1]},
            "latency": {"ttft_s": {"median": ttft[0], "p95": ttft[1]}, "tokens_per_s": {"median": tps[0], "p5": tps[1]}},
            "quality": {"default": quality}, "error_rate": error_rate}
    spec.update(extra)
    return spec


def one_model_run(tmp_path, m, router=None, replications=1, policies=None, models=None, **kw):
    data = scenario(trace={"path": "trace.csv"}, models=models or {"m": m}, replications=replications,
                    router=router or {"timeout_s": 1e6, "max_attempts": 3},
                    policies=policies or {"only": {"kind": "static", "model": "m"}}, baseline=None, **kw)
    return run_scenario_data(tmp_path, data)


def test_ttft_is_lognormal_with_the_given_median_and_p95(tmp_path):
    trace_file(tmp_path, 6000, output_tokens=0)  # no output: latency is the TTFT alone
    out = one_model_run(tmp_path, model(ttft=(0.8, 2.4)))
    latency = read(out).latency_s.to_numpy()
    np.testing.assert_allclose(latency, read(out).ttft_s.to_numpy(), rtol=0, atol=1e-9)
    log = np.log(latency)
    sigma = math.log(2.4 / 0.8) / Z95
    # Sample mean and sd of log latency: 4 standard errors.
    assert abs(log.mean() - math.log(0.8)) < 4 * sigma / math.sqrt(len(log))
    assert log.std() == pytest.approx(sigma, rel=0.05)
    assert np.median(latency) == pytest.approx(0.8, rel=0.05)
    assert np.percentile(latency, 95) == pytest.approx(2.4, rel=0.08)


def test_latency_is_ttft_plus_tokens_over_speed(tmp_path):
    trace_file(tmp_path, 6000, output_tokens=300)
    out = one_model_run(tmp_path, model(ttft=(0.2, 0.2), tps=(60, 20)))  # fixed TTFT
    speed = 300 / (read(out).latency_s.to_numpy() - 0.2)
    assert np.median(speed) == pytest.approx(60, rel=0.05)
    assert np.percentile(speed, 5) == pytest.approx(20, rel=0.08)


def test_base_error_rate_and_fallback(tmp_path):
    trace_file(tmp_path, 5000, output_tokens=10)
    models = {"m": model(error_rate=0.2), "backup": model()}
    out = one_model_run(tmp_path, None, models=models,
                        policies={"alone": {"kind": "static", "model": "m"},
                                  "fallback": {"kind": "static", "model": "m", "fallbacks": ["backup"]}})
    requests = read(out)
    alone = requests[requests.policy == "alone"]
    failed = (alone.status == "failed").mean()
    assert abs(failed - 0.2) < 4 * math.sqrt(0.2 * 0.8 / len(alone))
    fallback = requests[requests.policy == "fallback"]
    assert (fallback.status == "ok").all()
    # The very same requests fail on m in both policies (common random numbers) and move to backup.
    failed_ids = set(alone.request_id[alone.status == "failed"])
    assert set(fallback.request_id[fallback.model == "backup"]) == failed_ids
    attempts = read(out, "attempts")
    errors = attempts[(attempts.policy == "fallback") & (attempts.outcome == "error")]
    assert (errors.model == "m").all() and (errors.cost_usd == 0).all()
    assert np.allclose(errors.end_s - errors.start_s, 0.1)  # fail_fast_s default


def test_quality_follows_the_item_response_model(tmp_path):
    rng = np.random.default_rng(3)
    difficulty = rng.normal(0.5, 1.5, 8000)
    trace_file(tmp_path, 8000, output_tokens=10, difficulty=difficulty)
    out = one_model_run(tmp_path, model(quality=1.2))
    quality = read(out).quality.to_numpy()
    assert set(np.unique(quality)) <= {0.0, 1.0}
    expected = 1 / (1 + np.exp(-(1.2 - difficulty)))
    assert abs(quality.mean() - expected.mean()) < 4 * math.sqrt((expected * (1 - expected)).sum()) / len(expected)
    # Harder requests fail more often: compare the hardest and easiest thirds.
    order = np.argsort(difficulty)
    assert quality[order[:2000]].mean() > quality[order[-2000:]].mean() + 0.2


def test_quality_labels_in_the_trace_are_replayed(tmp_path):
    labels = np.tile([1.0, 0.0, 0.0, 1.0], 100)
    trace_file(tmp_path, 400, output_tokens=10, labels={"m": labels})
    out = one_model_run(tmp_path, model(quality=-10.0))  # the ability is ignored where labels exist
    np.testing.assert_array_equal(read(out).quality.to_numpy(), labels)


@pytest.mark.parametrize("charge, generated", [("generated", 50.0), ("full", 100.0), ("none", None)])
def test_timeout_abandons_and_charges_as_configured(tmp_path, charge, generated):
    # TTFT exactly 5 s, 10 tokens/s, 100 tokens: the answer would take 15 s; the router waits 10.
    trace_file(tmp_path, 20, output_tokens=100, input_tokens=1000, gap=20.0)
    slow = model(ttft=(5.0, 5.0), tps=(10, 10), price=(2.0, 30.0))
    fast = model(ttft=(0.5, 0.5), tps=(100, 100), price=(1.0, 1.0))
    out = one_model_run(tmp_path, None, models={"slow": slow, "fast": fast},
                        router={"timeout_s": 10.0, "max_attempts": 3, "abandoned_charge": charge},
                        policies={"p": {"kind": "static", "model": "slow", "fallbacks": ["fast"]}})
    attempts = read(out, "attempts")
    first = attempts[attempts.attempt == 0]
    assert (first.outcome == "timeout").all() and np.allclose(first.end_s - first.start_s, 10.0)
    expected_first = 0.0 if generated is None else (1000 * 2.0 + generated * 30.0) / 1e6
    np.testing.assert_allclose(first.cost_usd, expected_first, rtol=1e-12)
    requests = read(out)
    assert (requests.status == "ok").all() and (requests.model == "fast").all()
    np.testing.assert_allclose(requests.latency_s, 10.0 + 0.5 + 100 / 100, rtol=1e-12)
    np.testing.assert_allclose(requests.cost_usd, expected_first + (1000 * 1.0 + 100 * 1.0) / 1e6, rtol=1e-12)
    np.testing.assert_allclose(requests.ttft_s, 10.0 + 0.5, rtol=1e-12)  # from arrival, across the failed attempt


def test_context_overflow_moves_on_without_charge(tmp_path):
    trace_file(tmp_path, 10, output_tokens=500, input_tokens=np.r_[np.full(5, 1000), np.full(5, 5000)])
    out = one_model_run(tmp_path, None, models={"narrow": model(context_window=4000), "wide": model()},
                        policies={"p": {"kind": "static", "model": "narrow", "fallbacks": ["wide"]}})
    attempts = read(out, "attempts")
    overflow = attempts[attempts.outcome == "context_overflow"]
    assert len(overflow) == 5 and (overflow.model == "narrow").all() and (overflow.cost_usd == 0).all()
    requests = read(out)
    assert (requests.status == "ok").all()
    assert list(requests.model) == ["narrow"] * 5 + ["wide"] * 5


def test_a_fallback_is_charged_the_price_in_force_when_it_starts(tmp_path):
    # The primary takes 10 s to time out; the backup's price changes at t = 5.
    trace_file(tmp_path, 1, output_tokens=0, input_tokens=1_000_000)
    models = {"stuck": model(ttft=(50.0, 50.0), context_window=2_000_000),
              "backup": model(ttft=(0.1, 0.1), price=(1.0, 1.0), context_window=2_000_000)}
    out = one_model_run(tmp_path, None, models=models,
                        router={"timeout_s": 10.0, "max_attempts": 2, "abandoned_charge": "none"},
                        events=[{"kind": "price", "model": "backup", "at_s": 5.0, "input_per_mtok": 7.0, "output_per_mtok": 7.0}],
                        policies={"p": {"kind": "static", "model": "stuck", "fallbacks": ["backup"]}})
    assert read(out).cost_usd.iloc[0] == pytest.approx(7.0)
