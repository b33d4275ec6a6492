"""Paths no test exercised before (issue 11): an observe() that raises, trace merge,
a provider-wide rate limit, more than one hedge, and the block cache evicting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import read, run_scenario_data, scenario, write_scenario


def test_an_observe_that_raises_is_a_policy_error_and_changes_nothing_else(tmp_path, monkeypatch):
    (tmp_path / "noisy_feedback.py").write_text(
        "from sim.policies import Decision\n"
        "class StaticButNoisy:\n"
        "    def route(self, request, view):\n"
        "        return Decision(('big',), 'big')\n"
        "    def observe(self, request, outcome):\n"
        "        raise ValueError('feedback store down')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = scenario(replications=1, policies={"static-big": {"kind": "static", "model": "big"},
                                              "noisy": {"kind": "noisy_feedback:StaticButNoisy"}})
    out = run_scenario_data(tmp_path, data, report=False)
    decisions = read(out, "decisions")
    assert (decisions[decisions.policy == "noisy"].policy_error == "observe: ValueError: feedback store down").all()
    assert decisions[decisions.policy == "static-big"].policy_error.isna().all()
    # Same model, same draws: every request ends exactly as under the static policy.
    requests = read(out).set_index(["policy", "request_id"])
    columns = ["status", "model", "attempts", "latency_s", "cost_usd", "quality"]
    pd.testing.assert_frame_equal(requests.loc["noisy", columns], requests.loc["static-big", columns])


def test_trace_merge_puts_traces_on_one_clock(cli, tmp_path):
    a = pd.DataFrame({"arrival_s": [0.0, 2.0, 4.0], "input_tokens": [1, 2, 3], "output_tokens": [4, 5, 6]})
    b = pd.DataFrame({"arrival_s": [1.0, 2.0, 9.0], "input_tokens": [7, 8, 9], "output_tokens": [1, 1, 1],
                      "workload": ["x", "y", "z"]})
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    out = tmp_path / "merged.csv"
    result = cli("trace", "merge", out, tmp_path / "a.csv", f"{tmp_path / 'b.csv'}=chat")
    assert result.exit_code == 0, result.output
    merged = pd.read_csv(out)
    expected = pd.concat([a.assign(workload="a"), b.assign(workload="chat")]).sort_values("arrival_s", kind="stable")
    assert merged.arrival_s.tolist() == expected.arrival_s.tolist()
    assert merged.input_tokens.tolist() == expected.input_tokens.tolist()
    assert merged.workload.tolist() == expected.workload.tolist()
    assert merged.request_id.is_unique and len(merged) == 6


def test_a_provider_wide_rate_limit_is_one_bucket_for_all_its_models(tmp_path):
    """Two models of one provider share an rpm=60 bucket; the test replays a token bucket
    over every attempt's start (in order) and must admit exactly the attempts that were not 429s."""
    data = scenario(replications=1, router={"timeout_s": 60, "max_attempts": 2},
                    policies={"shuffle": {"kind": "simple-shuffle", "models": ["big", "big2"]}}, baseline="shuffle")
    data["trace"]["synthetic"].update(duration_s=240, rate_per_s=2)
    data["models"]["big2"] = dict(data["models"]["big"])
    data["models"]["big2"]["provider"] = "pa"
    data["providers"] = {"pa": {"rate_limit": {"rpm": 60}}}
    out = run_scenario_data(tmp_path, data, report=False)
    attempts = read(out, "attempts").sort_values(["start_s", "request_id", "attempt"], kind="stable")
    assert set(attempts.model) == {"big", "big2"}
    level, updated, admitted = 60.0, 0.0, []
    for start in attempts.start_s:
        level = min(60.0, level + (start - updated) / 1.0)  # refills one request per second
        updated = start
        admitted.append(level >= 1.0)
        if admitted[-1]:
            level -= 1.0
    limited = (attempts.outcome == "rate_limited").to_numpy()
    assert limited.sum() > 50  # 2 req/s against 1 req/s: the limit bites
    assert np.array_equal(~limited, np.array(admitted))


def test_more_than_one_hedge(tmp_path):
    """max_hedges 2 after 0.5 s: the second candidate starts 0.5 s after the first if the first is still
    running, the third 0.5 s after that if both are; the first answer cancels the rest."""
    slow = {"ttft_s": {"median": 0.6, "p95": 2.0}, "tokens_per_s": {"median": 60, "p5": 20}}
    data = scenario(replications=1, router={"timeout_s": 60, "max_attempts": 3, "hedge": {"after_s": 0.5,
                                                                                         "max_hedges": 2}},
                    policies={"hedged": {"kind": "static", "model": "big", "fallbacks": ["small", "big3"]}},
                    baseline="hedged")
    data["models"]["big"]["latency"] = slow
    data["models"]["small"]["latency"] = slow
    data["models"]["big3"] = dict(data["models"]["big"])
    out = run_scenario_data(tmp_path, data, report=False)
    attempts = read(out, "attempts").merge(read(out)[["request_id", "arrival_s"]], on="request_id")
    counts = attempts.groupby("request_id").size()
    assert counts.max() == 3 and (counts == 3).sum() > 20 and (counts == 2).sum() > 20
    for _, group in attempts.groupby("request_id"):
        group = group.sort_values("attempt")
        starts = (group.start_s - group.arrival_s).to_numpy()
        assert starts == pytest.approx(0.5 * np.arange(len(group)), abs=1e-9)
        for k in range(1, len(group)):  # a hedge starts only while every earlier attempt is still running
            assert (group.end_s.to_numpy()[:k] >= group.start_s.to_numpy()[k] - 1e-12).all()
        if len(group) < 3:  # no further hedge: some attempt had ended by then
            assert group.end_s.min() < group.arrival_s.iloc[0] + 0.5 * len(group) + 1e-9
        answered = group[group.outcome == "ok"]
        assert len(answered) <= 1
        if len(answered):
            assert (group[group.outcome == "cancelled"].end_s == answered.end_s.iloc[0]).all()


def test_the_block_cache_recomputes_evicted_blocks_identically(tmp_path):
    from sim.world import world as world_module
    from sim.world.models import build_model_table
    from sim.traces.synthetic import generate
    from sim.rng import BLOCK_SIZE, Stream, generator
    from sim.scenario.load import load_scenario
    from sim.world.world import World, draw_difficulty

    data = scenario()
    data["trace"]["synthetic"].update(duration_s=1000, rate_per_s=(world_module._CACHED_BLOCKS + 3) * BLOCK_SIZE / 1000)
    loaded = load_scenario(write_scenario(tmp_path, data))
    trace = generate(loaded.scenario.trace.synthetic, generator(1, 0, Stream.TRACE))
    catalog = build_model_table(loaded, trace.workloads, 1000.0)
    world = World(loaded.scenario, catalog, trace, draw_difficulty(loaded.scenario, trace, 1, 0), 1, 0, 3)
    n_blocks = (len(trace) + BLOCK_SIZE - 1) // BLOCK_SIZE
    assert n_blocks > world_module._CACHED_BLOCKS + 1
    first = {name: np.array(values, copy=True) for name, values in world.block(0)._asdict().items()}
    for b in range(1, n_blocks):
        world.block(b)
    assert 0 not in world._blocks  # evicted
    again = world.block(0)._asdict()
    for name, values in first.items():
        assert np.array_equal(values, again[name]), name


def _attempts_inside_cooldowns(attempts: pd.DataFrame, model: str, cooldown_s: float) -> int:
    """Attempts on ``model`` that start within ``cooldown_s`` after one of its 429s ended."""
    mine = attempts[attempts.model == model]
    ends = np.sort(mine.end_s[mine.outcome == "rate_limited"].to_numpy())
    starts = mine.start_s.to_numpy()
    # For each start, the latest 429 that ended at or before it.
    previous = np.searchsorted(ends, starts, side="right") - 1
    return int(((previous >= 0) & (starts < ends[np.maximum(previous, 0)] + cooldown_s)
                & (starts > ends[np.maximum(previous, 0)])).sum())


def test_a_429_with_another_candidate_cools_the_model_down(tmp_path):
    """LiteLLM without allowed_fails: a 429 takes the deployment out of rotation for cooldown_s;
    with allowed_fails a 429 is one more failure to count; without a cooldown the router keeps trying it."""
    def run(folder, cooldown):
        router = {"timeout_s": 60, "max_attempts": 2, **({"cooldown": cooldown} if cooldown else {})}
        data = scenario(replications=1, router=router, baseline="p",
                        policies={"p": {"kind": "static", "model": "big", "fallbacks": ["small"]}})
        data["trace"]["synthetic"].update(duration_s=300, rate_per_s=2)
        data["models"]["big"]["rate_limit"] = {"rpm": 30}
        folder.mkdir()
        return read(run_scenario_data(folder, data, report=False), "attempts")

    cooled = run(tmp_path / "cooled", {"cooldown_s": 5.0})
    counted = run(tmp_path / "counted", {"allowed_fails": 1000, "cooldown_s": 5.0})
    plain = run(tmp_path / "plain", None)
    assert (cooled.outcome == "rate_limited").sum() > 5
    assert _attempts_inside_cooldowns(cooled, "big", 5.0) == 0
    assert _attempts_inside_cooldowns(counted, "big", 5.0) > 20
    assert _attempts_inside_cooldowns(plain, "big", 5.0) > 20


def test_a_modelled_decision_latency_delays_every_request_by_its_draw(tmp_path):
    """The same static policy with and without a 100 ms classifier in front: with common random
    numbers every request's latency and TTFT differ by exactly its drawn decision latency."""
    from scipy import stats

    data = scenario(replications=1, router={"timeout_s": 60, "max_attempts": 3},
                    policies={"plain": {"kind": "static", "model": "big"},
                              "classified": {"kind": "static", "model": "big",
                                             "decision_latency_s": {"median": 0.1, "p95": 0.3}}}, baseline="plain")
    out = run_scenario_data(tmp_path, data, report=False)
    requests = read(out).set_index(["policy", "request_id"])
    decisions = read(out, "decisions").set_index(["policy", "request_id"])
    delay = decisions.loc["classified"].decision_latency_s
    assert (decisions.loc["plain"].decision_latency_s == 0).all()
    plain, classified = requests.loc["plain"], requests.loc["classified"]
    assert (plain.status == classified.status).all()
    ok = plain.status == "ok"
    assert np.allclose(classified.latency_s[ok] - plain.latency_s[ok], delay[ok], atol=1e-9)
    assert np.allclose(classified.ttft_s[ok] - plain.ttft_s[ok], delay[ok], atol=1e-9)
    # The draws are the lognormal the scenario names.
    sigma = np.log(3.0) / 1.6448536269514722
    assert stats.kstest(delay, stats.lognorm(s=sigma, scale=0.1).cdf).pvalue > 1e-3
    resolved = (out / "scenario.resolved.yaml").read_text()
    assert "decision_latency_s:" in resolved


def test_a_randomised_policy_keeps_its_draws_when_a_policy_is_inserted_before_it(tmp_path):
    """Policy seeds are keyed by the policy's name, not its place in the scenario (issue 12)."""
    shuffle = {"kind": "simple-shuffle", "models": ["big", "small"]}
    alone = scenario(replications=2, policies={"shuffle": shuffle}, baseline="shuffle")
    crowded = scenario(replications=2, policies={"first": {"kind": "static", "model": "small"},
                                                 "another": {"kind": "simple-shuffle", "models": ["big", "small"]},
                                                 "shuffle": shuffle}, baseline="first")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    columns = ["replication", "request_id", "model", "status", "latency_s", "cost_usd"]
    a = read(run_scenario_data(tmp_path / "a", alone, report=False))
    b = read(run_scenario_data(tmp_path / "b", crowded, report=False))
    mine_a = a[a.policy == "shuffle"][columns].reset_index(drop=True)
    mine_b = b[b.policy == "shuffle"][columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine_a, mine_b)
    # Two policies of one kind and parameters but different names draw differently.
    other = b[b.policy == "another"][columns].reset_index(drop=True)
    assert (other.model != mine_b.model).mean() > 0.2
