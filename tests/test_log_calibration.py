"""Per-deployment calibration from a LiteLLM proxy's logs, on logs made here with known prices,
error rates and latency distributions: the tallies recover them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

PRICES = {"dep-a": (1.25, 10.0), "dep-b": (3.0, 15.0)}  # USD per million input, output tokens


def synthetic_log(n: int = 20_000, seed: int = 3, price_change_at: int | None = None) -> pd.DataFrame:
    """Calls alternating between two deployments, in the shape ``spend_logs.normalize`` gives:
    every 50th call of dep-a fails, every 40th call is a cache hit (free), latencies drawn from
    lognormals with known medians, spend at the deployment's price (doubled from call
    ``price_change_at`` on, when given)."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    deployment = np.where(k % 2 == 0, "dep-a", "dep-b")
    start = pd.Timestamp("2026-11-02 09:00", tz="UTC") + pd.to_timedelta(k * 0.5, unit="s")
    ttft = rng.lognormal(np.log(np.where(deployment == "dep-a", 0.8, 1.6)), 0.4)
    speed = rng.lognormal(np.log(np.where(deployment == "dep-a", 80.0, 50.0)), 0.3)
    inputs = rng.integers(50, 4000, n)
    outputs = rng.integers(100, 800, n)
    failed = (deployment == "dep-a") & (k % 100 == 0)  # every 50th call of dep-a
    cache = (k % 40 == 1) & ~failed
    price_in = np.array([PRICES[d][0] for d in deployment])
    price_out = np.array([PRICES[d][1] for d in deployment])
    if price_change_at is not None:
        later = (k >= price_change_at) & (deployment == "dep-a")
        price_in, price_out = np.where(later, price_in * 2, price_in), np.where(later, price_out * 2, price_out)
    spend = np.where(failed | cache, 0.0, (inputs * price_in + outputs * price_out) / 1e6)
    end = start + pd.to_timedelta(np.where(failed, 0.3, ttft + outputs / speed), unit="s")
    first_token = pd.Series(start + pd.to_timedelta(ttft, unit="s")).where(~failed & (k % 7 != 3))  # some not streamed
    return pd.DataFrame({"request_id": [f"r{i}" for i in k], "start": start, "end": end, "first_token": first_token,
                         "model_group": "g", "deployment": deployment, "provider": "openai", "input_tokens": inputs,
                         "cached_tokens": 0,
                         "output_tokens": np.where(failed, 0, outputs), "spend_usd": spend, "cache_hit": cache,
                         "ok": ~failed, "error": np.where(failed, "503", ""), "team_id": "", "end_user": "",
                         "_ttft": ttft, "_speed": speed})


def _chunks(frame: pd.DataFrame, size: int = 3000):
    return [frame.iloc[i:i + size] for i in range(0, len(frame), size)]


def test_prices_error_rates_and_latency_are_recovered():
    from sim.ingest.log_calibration import tally

    log = synthetic_log()
    tallies = tally(_chunks(log))
    assert set(tallies) == {"dep-a", "dep-b"}
    for name, (price_in, price_out) in PRICES.items():
        fitted_in, fitted_out, residual = tallies[name].prices()
        assert fitted_in == pytest.approx(price_in, rel=1e-9) and fitted_out == pytest.approx(price_out, rel=1e-9)
        assert residual < 1e-6  # float rounding: the residual comes from sums of squares
    a = log[log.deployment == "dep-a"]
    calls = (~a.cache_hit).sum()
    assert tallies["dep-a"].error_rate() == (~a.ok & ~a.cache_hit).sum() / calls == pytest.approx(1 / 50, rel=0.05)
    assert tallies["dep-b"].error_rate() == 0.0 and tallies["dep-a"].cache_hits == a.cache_hit.sum()
    # Latency: the fitted table's median against the drawn values' (answered, streamed calls).
    for name, ttft_median, speed_median in (("dep-a", 0.8, 80.0), ("dep-b", 1.6, 50.0)):
        rows = log[(log.deployment == name) & log.ok & ~log.cache_hit & log.first_token.notna()]
        block = tallies[name].latency_block()
        table = dict((p, v) for p, v in block["ttft_s"]["quantiles"])
        assert table[0.5] == pytest.approx(np.median(rows._ttft), rel=1e-3)
        assert table[0.5] == pytest.approx(ttft_median, rel=0.05)  # and the distribution it was drawn from
        speeds = dict((p, v) for p, v in block["tokens_per_s"]["quantiles"])
        assert speeds[0.5] == pytest.approx(speed_median, rel=0.05)


def test_a_price_change_shows_in_the_fit_quality():
    from sim.ingest.log_calibration import tally

    tallies = tally(_chunks(synthetic_log(price_change_at=10_000)))
    assert tallies["dep-a"].prices()[2] > 0.2  # no single price explains dep-a's spend
    assert tallies["dep-b"].prices()[2] < 1e-6
    # Cut where the prices changed: call 10,000 started 5,000 s in (a call every 0.5 s).
    change_s = pd.Timestamp("2026-11-02 09:00", tz="UTC").value / 1e9 + 5_000
    before, after = tallies["dep-a"].price_stretches()
    assert abs(after.from_s - change_s) <= 30
    for stretch, factor in ((before, 1), (after, 2)):
        assert stretch.input_per_mtok == pytest.approx(PRICES["dep-a"][0] * factor, rel=1e-6)
        assert stretch.output_per_mtok == pytest.approx(PRICES["dep-a"][1] * factor, rel=1e-6)
        assert stretch.residual < 1e-6
    assert before.calls + after.calls < tallies["dep-a"].calls  # the minute of the change is in neither
    assert len(tallies["dep-b"].price_stretches()) == 1


def test_the_latency_sample_is_bounded_and_evenly_spread(monkeypatch):
    import sim.ingest.log_calibration as calibration

    monkeypatch.setattr(calibration, "LATENCY_SAMPLE", 500)
    log = synthetic_log(n=12_000)
    t = calibration.tally(_chunks(log, 700))["dep-b"]
    rows = log[(log.deployment == "dep-b") & log.ok & ~log.cache_hit & log.first_token.notna()]
    assert t.kept <= 500 and t.stride > 1
    kept = np.concatenate(t.latency)[:, 0]
    expected = (rows.first_token - rows.start).dt.total_seconds().to_numpy()[::t.stride]
    np.testing.assert_allclose(kept, expected)  # every stride-th answer, from the first to the last


def test_bursts_of_failures_become_outage_and_storm_windows():
    """dep-a fails every call from 600 s to 1200 s (an outage); dep-b answers half its calls with a
    429 from 1800 s to 2400 s (a storm); both otherwise fail as usual (dep-a 1 in 50)."""
    from sim.ingest.log_calibration import tally

    log = synthetic_log()
    t = (log.start - log.start.iloc[0]).dt.total_seconds()
    outage = (log.deployment == "dep-a") & (t >= 600) & (t < 1200)
    storm = (log.deployment == "dep-b") & (t >= 1800) & (t < 2400) & (np.arange(len(log)) % 4 == 1)
    log.loc[outage | storm, "ok"] = False
    log.loc[storm, "error"] = "429"
    log.loc[outage, "error"] = "503"
    log.loc[outage | storm, "cache_hit"] = False
    tallies = tally(_chunks(log))
    origin = log.start.iloc[0]  # 09:00:00, on a minute boundary
    assert tallies["dep-a"].fault_windows(origin) == [{"kind": "outage", "model": "dep-a", "start_s": 600.0,
                                                       "end_s": 1200.0}]
    (window,) = tallies["dep-b"].fault_windows(origin)
    assert {k: window[k] for k in ("kind", "model", "start_s", "end_s", "status")} == {
        "kind": "partial_outage", "model": "dep-b", "start_s": 1800.0, "end_s": 2400.0, "status": 429}
    reached = (log.deployment == "dep-b") & (t >= 1800) & (t < 2400) & ~log.cache_hit
    assert window["error_rate"] == pytest.approx((~log.ok[reached]).mean(), abs=1e-4)  # dep-b's usual share is 0


def test_a_cached_input_price_is_fitted_where_the_log_has_cached_tokens():
    """dep-b's calls read a third of their prompt from the provider's cache at a tenth of the
    input price (as metadata.usage_object logs it): the three prices are recovered; dep-a, with
    no cached tokens logged, has no cached price."""
    from sim.ingest.log_calibration import tally

    log = synthetic_log()
    b = log.deployment == "dep-b"
    log.loc[b, "cached_tokens"] = log.input_tokens[b] // 3
    price_in, price_out = PRICES["dep-b"]
    paid = b & log.ok & ~log.cache_hit
    log.loc[paid, "spend_usd"] = ((log.input_tokens - log.cached_tokens) * price_in + log.cached_tokens * price_in / 10
                                  + log.output_tokens * price_out)[paid] / 1e6
    tallies = tally(_chunks(log))
    (stretch,) = tallies["dep-b"].price_stretches()
    assert stretch.input_per_mtok == pytest.approx(price_in, rel=1e-6)
    assert stretch.cached_input_per_mtok == pytest.approx(price_in / 10, rel=1e-6)
    assert stretch.output_per_mtok == pytest.approx(price_out, rel=1e-6) and stretch.residual < 1e-6
    (plain,) = tallies["dep-a"].price_stretches()
    assert plain.cached_input_per_mtok is None and plain.input_per_mtok == pytest.approx(PRICES["dep-a"][0], rel=1e-6)


def test_a_price_fit_never_goes_below_zero_and_is_the_constrained_least_squares():
    """Spend that falls with the answer's length (a discount, noise, a damaged log) would fit a
    negative output price: the fit keeps every price >= 0 and is then scipy's non-negative least
    squares on the same calls."""
    from scipy.optimize import nnls

    from sim.ingest.log_calibration import _SUMS, _fit

    rng = np.random.default_rng(4)
    u = rng.integers(100, 5000, 200).astype(float)
    o = rng.integers(10, 800, 200).astype(float)
    y = 2e-6 * u - 5e-7 * o + rng.normal(0, 1e-5, 200)
    c = np.zeros_like(u)
    products = {"n": np.ones_like(u), "uu": u * u, "uc": u * c, "uo": u * o, "cc": c * c, "co": c * o,
                "oo": o * o, "uy": u * y, "cy": c * y, "oy": o * y, "yy": y * y, "y": y}
    sums = np.array([products[k].sum() for k in _SUMS])
    unconstrained = np.linalg.lstsq(np.column_stack([u, o]), y, rcond=None)[0]
    assert unconstrained[1] < 0  # the case: plain least squares pays us for output tokens
    prices, sse = _fit(sums)
    expected, residual = nnls(np.column_stack([u, o]), y)
    assert prices[0] == pytest.approx(expected[0], rel=1e-6) and prices[2] == pytest.approx(expected[1], abs=1e-15)
    assert prices[2] >= 0 and np.isnan(prices[1])
    assert sse == pytest.approx(residual ** 2, rel=1e-6)
