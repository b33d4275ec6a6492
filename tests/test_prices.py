"""Prices: cached input, tiers, and the genai-prices catalog, checked against the package's own calculation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sim.pricing.points import PricePoint, Tier, charge_usd

from conftest import FAST, read, run_scenario_data, scenario, write_scenario

genai_prices = pytest.importorskip("genai_prices", reason="the prices extra is not installed")


def test_charge_by_hand():
    flat = PricePoint(2.0, 8.0)
    assert charge_usd(flat, 1000, 400, 100) == pytest.approx((1000 * 2 + 100 * 8) / 1e6)  # no cached price: full
    cached = PricePoint(2.0, 8.0, 0.5, (Tier(5000, 4.0, 12.0, 1.0),))
    assert charge_usd(cached, 1000, 400, 100) == pytest.approx((600 * 2 + 400 * 0.5 + 100 * 8) / 1e6)
    assert charge_usd(cached, 5000, 0, 100) == pytest.approx((5000 * 2 + 100 * 8) / 1e6)  # at the threshold: base
    assert charge_usd(cached, 5001, 1001, 100) == pytest.approx((4000 * 4 + 1001 * 1.0 + 100 * 12) / 1e6)


START = datetime(2025, 6, 1, 16, 0, tzinfo=timezone.utc)


def test_catalog_prices_match_genai_prices_own_calculation(tmp_path):
    n = 400
    rng = np.random.default_rng(1)
    inputs = rng.integers(1000, 400_000, n)  # some above Sonnet's 200k tier
    pd.DataFrame({"arrival_s": np.sort(rng.uniform(0, 3600, n)), "input_tokens": inputs,
                  "output_tokens": rng.integers(1, 2000, n), "workload": "chat",
                  "cached_input_tokens": (inputs * rng.uniform(0, 0.8, n)).astype(int)}
                 ).to_csv(tmp_path / "t.csv", index=False)
    catalog = {"gpt-5": ("openai", "gpt-5"), "sonnet": ("anthropic", "claude-sonnet-4-5"),
               "deepseek": ("deepseek", "deepseek-chat")}  # DeepSeek's off-peak price starts at 16:30 UTC
    models = {name: {"provider": provider, "latency": FAST, "quality": {"default": 1}, "context_window": 1_000_000,
                     "price": {"catalog": "genai-prices", "model": ref}} for name, (provider, ref) in catalog.items()}
    policies = {name: {"kind": "static", "model": name} for name in catalog}
    # No errors and no timeouts: every request is answered at its first attempt, so its cost is one charge.
    for spec in models.values():
        spec["error_rate"] = 0.0
    out = run_scenario_data(tmp_path, scenario(trace={"path": "t.csv"}, models=models, policies=policies,
                                               router={"timeout_s": 3600, "max_attempts": 3},
                                               replications=1, start=START.isoformat(), baseline=None))
    requests = read(out)
    trace = pd.read_csv(tmp_path / "t.csv").set_index(pd.Index([f"r{i:06d}" for i in range(n)]))
    for name, (provider, ref) in catalog.items():
        ran = requests[requests.policy == name].set_index("request_id")
        assert (ran.status == "ok").all() and (ran.attempts == 1).all()
        expected = [float(genai_prices.calc_price(
            genai_prices.Usage(input_tokens=int(row.input_tokens), cache_read_tokens=int(row.cached_input_tokens),
                               output_tokens=int(row.output_tokens)),
            ref, provider_id=provider, genai_request_timestamp=START + timedelta(seconds=row.arrival_s)).total_price)
            for row in trace.itertuples()]
        assert np.allclose(ran.cost_usd.loc[trace.index], expected, rtol=1e-9, atol=1e-12), name
    # The off-peak switch really happened within the hour, and the tier was crossed.
    deepseek = requests[requests.policy == "deepseek"].set_index("request_id").cost_usd.loc[trace.index].to_numpy()
    flat_rate = (trace.input_tokens * 0.27 + trace.output_tokens * 1.1).to_numpy() / 1e6
    assert (deepseek[trace.arrival_s.to_numpy() > 1800] < flat_rate[trace.arrival_s.to_numpy() > 1800]).all()


def test_gpt5_list_prices_equal_the_package_calc_for_a_usage():
    from sim.pricing.catalog import catalog_schedule

    [(t, point)] = catalog_schedule("openai", "gpt-5", START, 3600)
    usage = genai_prices.Usage(input_tokens=12_345, cache_read_tokens=2_345, output_tokens=678)
    expected = genai_prices.calc_price(usage, "gpt-5", provider_id="openai", genai_request_timestamp=START).total_price
    assert Decimal(repr(charge_usd(point, 12_345, 2_345, 678))).quantize(Decimal("1e-12")) == \
        expected.quantize(Decimal("1e-12"))


def test_workload_cache_hit_share_lowers_cost(tmp_path):
    models = {"m": {"provider": "p", "latency": FAST, "quality": {"default": 1},
                    "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0, "cached_input_per_mtok": 0.2}}}
    data = scenario(models=models, policies={"s": {"kind": "static", "model": "m"}}, baseline="s", replications=1,
                    workloads={"chat": {"cache_hit_share": 0.5}, "code": {}})
    requests = read(run_scenario_data(tmp_path, data))
    cached = np.where(requests.workload == "chat", np.rint(requests.input_tokens * 0.5), 0)
    expected = ((requests.input_tokens - cached) * 2.0 + cached * 0.2 + requests.output_tokens * 8.0) / 1e6
    assert np.allclose(requests.cost_usd, expected)


def test_catalog_problems_are_reported(tmp_path, cli):
    models = {"m": {"provider": "openai", "latency": FAST, "quality": {"default": 1},
                    "price": {"catalog": "genai-prices", "model": "no-such-model"}}}
    data = scenario(models=models, policies={"s": {"kind": "static", "model": "m"}}, baseline="s")
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2
    assert "models.m.price.catalog: catalog prices need the scenario's 'start'" in result.output
    assert "models.m.price: genai-prices has no model 'no-such-model'" in result.output
    data["models"]["m"]["price"]["input_per_mtok"] = 1.0
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2 and "not both" in result.output


def test_catalog_show(cli):
    result = cli("catalog", "show", "gpt-5", "--provider", "openai", "--at", "2025-06-01T14:00:00Z")
    assert result.exit_code == 0
    assert "input $1.25, output $10, cached input $0.125" in result.output
    result = cli("catalog", "show", "deepseek-chat")
    assert "daily 00:30-16:30 UTC" in result.output
    assert cli("catalog", "show", "gpt-5", "--at", "noon").exit_code == 2


def test_price_events_keep_the_cached_price_in_force_whatever_their_order(tmp_path):
    models = {"m": {"provider": "p", "latency": FAST, "quality": {"default": 1},
                    "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0, "cached_input_per_mtok": 0.2}}}
    events = [{"kind": "price", "model": "m", "at_s": 400, "input_per_mtok": 1.0, "output_per_mtok": 4.0},
              {"kind": "price", "model": "m", "at_s": 200, "input_per_mtok": 3.0, "output_per_mtok": 9.0,
               "cached_input_per_mtok": 0.5}]
    data = scenario(models=models, events=events, policies={"s": {"kind": "static", "model": "m"}}, baseline="s",
                    replications=1, workloads={"chat": {"cache_hit_share": 0.5}, "code": {"cache_hit_share": 0.5}})
    requests = read(run_scenario_data(tmp_path, data))
    t = requests.arrival_s  # one attempt each, started at arrival
    price_in = np.select([t < 200, t < 400], [2.0, 3.0], 1.0)
    price_out = np.select([t < 200, t < 400], [8.0, 9.0], 4.0)
    cached_price = np.where(t < 200, 0.2, 0.5)  # the event at 400 keeps the 0.5 set at 200
    cached = np.rint(requests.input_tokens * 0.5)
    expected = ((requests.input_tokens - cached) * price_in + cached * cached_price + requests.output_tokens * price_out) / 1e6
    assert (requests.attempts == 1).all()
    assert np.allclose(requests.cost_usd, expected)
