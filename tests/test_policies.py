"""Policies: defining behaviour on hand-built views, errors, and plug-ins."""

from __future__ import annotations

import json
import re
import textwrap
from types import MappingProxyType

import pandas as pd
import pytest

from sim.policies import ModelStatus, Outcome, Request, RouterView, build
from sim.policies.registry import PolicyConfigError, validate_params

from conftest import install_plugin, read, run_scenario_data, scenario


def status(name, price_in, price_out, ability=0.0, ttft=1.0, tps=50.0, healthy=True, context=100_000, **observed):
    fields = dict(name=name, provider="p", input_per_mtok=price_in, output_per_mtok=price_out, context_window=context,
                  quality_prior=MappingProxyType({"default": ability}), ttft_prior_s=ttft, tokens_per_s_prior=tps,
                  carbon_g_per_mtok=None, calls=0, failures=0, in_flight=0, latency_ewma_s=None, ttft_ewma_s=None,
                  tokens_per_s_ewma=None, error_rate_ewma=0.0, consecutive_failures=0, last_failure_s=None,
                  healthy=healthy)
    fields.update(observed)
    return ModelStatus(**fields)


def view(*models):
    return RouterView(0.0, models, MappingProxyType({m.name: i for i, m in enumerate(models)}))


def request(workload="chat", input_tokens=1000, estimate=None):
    return Request("r1", 0.0, workload, input_tokens, estimate)


MODELS = (status("pricey", 10.0, 30.0, ability=3.0, ttft=2.0), status("cheap", 0.1, 0.4, ability=0.5, ttft=0.2),
          status("middle", 1.0, 4.0, ability=2.0, ttft=1.0))


def test_weighted_cost_only_orders_by_estimated_cost():
    policy = build("weighted", {"weights": {"cost": 1}})
    assert policy.route(request(), view(*MODELS)).candidates == ("cheap", "middle", "pricey")


def test_weighted_quality_only_orders_by_ability():
    policy = build("weighted", {"weights": {"quality": 1}})
    assert policy.route(request(), view(*MODELS)).candidates == ("pricey", "middle", "cheap")


def test_weighted_latency_only_orders_by_expected_latency():
    policy = build("weighted", {"weights": {"latency": 1}})
    assert policy.route(request(), view(*MODELS)).candidates == ("cheap", "middle", "pricey")


def test_weighted_score_is_the_documented_formula():
    """Score = w_c * cheapest/cost + w_q * quality/best + w_l * fastest/latency; check the order by hand."""
    import math
    policy = build("weighted", {"weights": {"cost": 0.5, "quality": 0.5}, "output_tokens_prior": 100})
    n_in, n_out = 1000, 100
    cost = {m.name: n_in * m.input_per_mtok + n_out * m.output_per_mtok for m in MODELS}
    quality = {m.name: 1 / (1 + math.exp(-m.quality_prior["default"])) for m in MODELS}
    score = {n: 0.5 * min(cost.values()) / cost[n] + 0.5 * quality[n] / max(quality.values()) for n in cost}
    expected = tuple(sorted(score, key=score.get, reverse=True))
    decision = policy.route(request(input_tokens=n_in), view(*MODELS))
    assert decision.candidates == expected
    best, second = sorted(score.values(), reverse=True)[:2]
    assert decision.reason == f"weighted: score {best:.3f}, next {expected[1]} {second:.3f}"


def test_weighted_puts_unhealthy_models_last_and_drops_certain_overflows():
    models = (status("pricey", 10.0, 30.0), status("cheap", 0.1, 0.4, healthy=False), status("tiny", 0.2, 0.5, context=500))
    policy = build("weighted", {"weights": {"cost": 1}})
    assert policy.route(request(input_tokens=1000), view(*models)).candidates == ("pricey", "cheap")


def test_weighted_workload_overrides_and_candidate_subset():
    policy = build("weighted", {"weights": {"cost": 1}, "workload_weights": {"code": {"quality": 1}},
                                "models": ["cheap", "pricey"]})
    assert policy.route(request("chat"), view(*MODELS)).candidates == ("cheap", "pricey")
    assert policy.route(request("code"), view(*MODELS)).candidates == ("pricey", "cheap")


def test_weighted_learns_output_length_from_feedback():
    # in_heavy is cheap for short answers, out_heavy for long ones: the choice flips once
    # the policy has seen that answers are long. Crossover: 1000*2 + n*1 = 1000*0.1 + n*10 -> n ~ 211.
    models = (status("in_heavy", 2.0, 1.0), status("out_heavy", 0.1, 10.0))
    policy = build("weighted", {"weights": {"cost": 1}, "output_tokens_prior": 100})
    req = request(input_tokens=1000)
    assert policy.route(req, view(*models)).candidates[0] == "out_heavy"
    for _ in range(5):
        policy.observe(req, Outcome("r", "ok", "out_heavy", 1, 1.0, 0.1, 0.0, 1000, 500))
    assert policy.expected_output_tokens("chat") == 500
    assert policy.route(req, view(*models)).candidates[0] == "in_heavy"


def test_weighted_uses_the_difficulty_estimate():
    models = (status("strong", 1.0, 1.0, ability=3.0), status("weak", 0.5, 0.5, ability=0.0))
    policy = build("weighted", {"weights": {"cost": 0.5, "quality": 0.5}})
    # Easy request: both answer well, the cheaper wins. Hard request: quality ratio decides.
    assert policy.route(request(estimate=-6.0), view(*models)).candidates[0] == "weak"
    assert policy.route(request(estimate=2.0), view(*models)).candidates[0] == "strong"


def test_manual_routes_by_workload_with_default_and_fallbacks():
    policy = build("manual", {"routes": {"chat": "a", "code": ["b", "c"]}, "default": "d", "fallbacks": ["c", "e"]})
    v = view()
    assert policy.route(request("chat"), v).candidates == ("a", "c", "e")
    assert policy.route(request("code"), v).candidates == ("b", "c", "e")
    assert policy.route(request("other"), v).candidates == ("d", "c", "e")
    with pytest.raises(LookupError):
        build("manual", {"routes": {"chat": "a"}}).route(request("other"), v)


def test_params_are_validated_with_paths():
    with pytest.raises(PolicyConfigError) as info:
        validate_params("weighted", {"weights": {"cost": -1}})
    assert info.value.problems[0][0] == ("weights", "cost")
    with pytest.raises(PolicyConfigError, match="unknown policy kind"):
        validate_params("nope", {})
    assert validate_params("static", {"model": "x", "fallbacks": ["y"]}) == [("x", ("model",)), ("y", ("fallbacks", 0))]


PLUGIN = textwrap.dedent('''
    from sim.policies import Decision

    class Raises:
        def route(self, request, view):
            raise RuntimeError("boom")

    class Unknown:
        def route(self, request, view):
            return Decision(("no-such-model",), "oops")

    class Empty:
        def route(self, request, view):
            return Decision((), "nothing")

    class Generator:
        def route(self, request, view):
            return Decision((m for m in ["big"]), "a generator is a sequence too")

    class Garbage:
        def route(self, request, view):
            return Decision([["big"]], "a list inside")

    class ListInTuple:
        def route(self, request, view):
            return Decision((["big"],), "a list inside a tuple")

    class Number:
        def route(self, request, view):
            return Decision(3, "an int")

    class RaisingProperty:
        @property
        def candidates(self):
            raise RuntimeError("candidates broke")

        @property
        def reason(self):
            raise RuntimeError("reason broke")

        def route(self, request, view):
            return self

    class RaisingGenerator:
        def route(self, request, view):
            def names():
                yield "big"
                raise RuntimeError("generator broke")
            return Decision(names(), "raises halfway")

    class Recorder:
        """Keeps what it was shown, to test what policies can see."""
        seen = []

        def route(self, request, view):
            Recorder.seen.append(request)
            return Decision(("big",), "record")

    class Slow:
        """Burns about 3 ms of CPU per decision."""

        def route(self, request, view):
            import time
            end = time.thread_time() + 0.003
            while time.thread_time() < end:
                pass
            return Decision(("big",), "slow")

    class NotADecision:
        def route(self, request, view):
            return "big"

    class SeededCoin:
        """Picks between two models at random; records the seed it was given."""
        seeds = []

        def __init__(self, first, second, seed=None):
            import random
            self.rng = random.Random(seed)
            self.models = (first, second)
            SeededCoin.seeds.append(seed)

        def route(self, request, view):
            a, b = self.models
            return Decision((a, b) if self.rng.random() < 0.5 else (b, a), "coin")
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "my_policies", PLUGIN)
    return "my_policies"


@pytest.mark.parametrize("cls, message", [("Raises", "RuntimeError: boom"), ("Unknown", "unknown model(s) no-such-model"),
                                          ("Garbage", "not a sequence of model names"),
                                          ("ListInTuple", "not a sequence of model names"),
                                          ("Number", "not a sequence of model names (TypeError"),
                                          ("RaisingProperty", "RuntimeError: candidates broke"),
                                          ("RaisingGenerator", "RuntimeError: generator broke"),
                                          ("NotADecision", "route() returned str, not a Decision")])
def test_policy_errors_fall_back_to_the_default_model(tmp_path, plugin, cls, message):
    data = scenario(router={"timeout_s": 60, "max_attempts": 3, "default_model": "small"},
                    policies={"bad": {"kind": f"{plugin}:{cls}"}, "static-big": {"kind": "static", "model": "big"}})
    out = run_scenario_data(tmp_path, data)
    requests = read(out)
    bad = requests[requests.policy == "bad"]
    assert len(bad) > 0
    assert ((bad.model == "small") | (bad.status != "ok")).all() and (bad.status == "ok").mean() > 0.9
    decisions = read(out, "decisions")
    errors = decisions[decisions.policy == "bad"].policy_error
    assert errors.notna().all() and errors.str.contains(message, regex=False).all()
    assert decisions[decisions.policy == "static-big"].policy_error.isna().all()


def test_an_empty_decision_rejects_the_request_without_an_attempt(tmp_path, plugin):
    """No candidates is a decision (LiteLLM's "no deployment available"), not a policy error."""
    data = scenario(router={"timeout_s": 60, "max_attempts": 3, "default_model": "small"}, replications=1,
                    policies={"empty": {"kind": f"{plugin}:Empty"}, "static-big": {"kind": "static", "model": "big"}})
    out = run_scenario_data(tmp_path, data, report=False)
    requests = read(out)
    empty = requests[requests.policy == "empty"]
    assert (empty.status == "rejected").all() and (empty.attempts == 0).all() and (empty.model == "").all()
    decisions = read(out, "decisions")
    assert decisions[decisions.policy == "empty"].policy_error.isna().all()
    attempts = read(out, "attempts")
    assert (attempts.policy != "empty").all()


def test_policy_error_without_default_rejects_the_request(tmp_path, plugin):
    data = scenario(policies={"bad": {"kind": f"{plugin}:Raises"}, "static-big": {"kind": "static", "model": "big"}})
    out = run_scenario_data(tmp_path, data)
    bad = read(out).query("policy == 'bad'")
    assert (bad.status == "rejected").all() and (bad.attempts == 0).all() and (bad.cost_usd == 0).all()
    assert (bad.model == "").all()


def test_a_plugin_gets_a_reproducible_seed_per_replication(tmp_path, plugin):
    import my_policies

    data = scenario(replications=2, policies={"coin": {"kind": f"{plugin}:SeededCoin", "params": {"first": "big", "second": "small"}},
                                              "static-big": {"kind": "static", "model": "big"}}, baseline="static-big")
    my_policies.SeededCoin.seeds.clear()
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    out_a = run_scenario_data(tmp_path / "a", data)
    first_seeds = list(my_policies.SeededCoin.seeds)
    run_scenario_data(tmp_path / "b", data)
    seeds = my_policies.SeededCoin.seeds
    run_seeds = [s for s in first_seeds if s != 0]  # validation builds it once with seed 0
    assert len(run_seeds) == 2 and run_seeds[0] != run_seeds[1]
    assert [s for s in seeds[len(first_seeds):] if s != 0] == run_seeds
    share = (read(out_a).query("policy == 'coin'").model == "big").mean()
    assert 0.4 < share < 0.6


def test_decision_time_is_measured(tmp_path, monkeypatch):
    """A policy that burns 2 ms of CPU per decision is measured at 2 ms or a little more,
    and the summary's percentiles are those of decisions.parquet."""
    import json

    install_plugin(tmp_path, monkeypatch, "slow_policy", (
        "import time\n"
        "from sim.policies import Decision\n"
        "class Slow:\n"
        "    def route(self, request, view):\n"
        "        start = time.thread_time_ns()\n"
        "        while time.thread_time_ns() - start < 2_000_000:\n"
        "            pass\n"
        "        return Decision(('big', 'small'), 'slow')\n"))
    data = scenario(replications=1, policies={"slow": {"kind": "slow_policy:Slow"},
                                              "w": {"kind": "weighted", "weights": {"cost": 1}}}, baseline="w")
    data["trace"]["synthetic"]["duration_s"] = 60
    out = run_scenario_data(tmp_path, data, report=False)
    decisions = read(out, "decisions")
    slow = decisions[decisions.policy == "slow"].decision_us
    assert (slow >= 2000).all() and slow.median() < 20_000  # wall clock: more only when the machine is busy
    fast = decisions[decisions.policy == "w"].decision_us
    assert (fast >= 0).all() and fast.median() < slow.min()
    summary = json.loads((out / "summary.json").read_text())["policies"]
    assert summary["slow"]["decision_us_p50"]["mean"] == pytest.approx(slow.quantile(0.5))
    assert summary["slow"]["decision_us_p99"]["mean"] == pytest.approx(slow.quantile(0.99))
    assert (decisions.candidates[decisions.policy == "slow"] == "big>small").all()
    cpu = decisions[decisions.policy == "slow"].decision_cpu_us
    # CPU spent: CPU time too, measured for every 16th request (the request number in its id).
    sampled = decisions[decisions.policy == "slow"].request_id.str[1:].astype(int) % 16 == 0
    assert sampled.sum() > 0 and (cpu[sampled] >= 2000).all() and cpu[~sampled].isna().all()


def test_decision_time_is_wall_clock_so_a_sleeping_policy_cannot_hide(cli, tmp_path, monkeypatch):
    """A policy that sleeps 5 ms (as one waiting on a classifier would) spends almost no CPU; its
    decision time, the summary's percentiles and the gate see the 5 ms."""
    import json

    install_plugin(tmp_path, monkeypatch, "sleepy_policy", (
        "import time\n"
        "from sim.policies import Decision\n"
        "class Sleepy:\n"
        "    def route(self, request, view):\n"
        "        time.sleep(0.005)\n"
        "        return Decision(('big',), 'after a nap')\n"))
    data = scenario(replications=2, policies={"sleepy": {"kind": "sleepy_policy:Sleepy"},
                                              "static-big": {"kind": "static", "model": "big"}}, baseline="static-big")
    data["trace"]["synthetic"]["duration_s"] = 30
    out = run_scenario_data(tmp_path, data, report=False)
    decisions = read(out, "decisions")
    sleepy = decisions[decisions.policy == "sleepy"]
    assert (sleepy.decision_us >= 5000).all()
    assert sleepy.decision_cpu_us.median() < 1000  # asleep, not computing
    summary = json.loads((out / "summary.json").read_text())["policies"]["sleepy"]
    assert summary["decision_us_p50"]["mean"] >= 5000
    result = cli("gate", out, "--candidate", "sleepy", "--max-decision-p99-us", "1000")
    assert result.exit_code == 1 and "max_decision_p99_us" in result.output


def test_entry_point_plugins_are_found(tmp_path, monkeypatch):
    """An installed distribution that declares a ``routesim.policies`` entry point."""
    site = tmp_path / "site"
    (site / "their_pkg").mkdir(parents=True)
    (site / "their_pkg" / "__init__.py").write_text(
        "from sim.policies import Decision\n"
        "class Cheapest:\n"
        "    '''Cheapest published input price first.'''\n"
        "    def route(self, request, view):\n"
        "        return Decision(tuple(m.name for m in sorted(view.models, key=lambda m: m.input_per_mtok)), 'cheap')\n")
    dist = site / "their_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: their-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[routesim.policies]\ncheapest-first = their_pkg:Cheapest\n")
    monkeypatch.syspath_prepend(str(site))
    from sim.policies.registry import available, resolve

    assert "cheapest-first" in available()[0]
    assert resolve("cheapest-first").__name__ == "Cheapest"
    out = run_scenario_data(tmp_path, scenario(policies={"c": {"kind": "cheapest-first"}}, baseline="c"))
    assert (read(out).model == "small").mean() > 0.95


def test_the_terminal_warns_about_policy_errors(cli, tmp_path, plugin):
    from conftest import write_scenario

    path = write_scenario(tmp_path, scenario(router={"timeout_s": 60, "max_attempts": 3, "default_model": "small"},
                                             policies={"bad": {"kind": f"{plugin}:Raises"}}, baseline="bad"))
    result = cli("run", path, "--out", tmp_path / "out")
    assert result.exit_code == 0
    assert "warning: bad: the policy failed on 100.00% of requests" in result.output


def test_a_generator_of_candidates_is_accepted(tmp_path, plugin):
    out = run_scenario_data(tmp_path, scenario(policies={"g": {"kind": f"{plugin}:Generator"}}, baseline="g"))
    decisions = read(out, "decisions")
    assert decisions.policy_error.isna().all()
    assert (read(out).model[read(out).status == "ok"] == "big").all()


@pytest.mark.parametrize("noise", ["default", None, 0.0, 0.7])
def test_policies_see_a_noisy_difficulty_estimate_only_when_configured(tmp_path, plugin, noise):
    import numpy as np
    import my_policies

    rng = np.random.default_rng(0)
    difficulty = rng.normal(0, 1, 3000)
    pd.DataFrame({"arrival_s": np.arange(3000) * 0.1, "input_tokens": 100, "output_tokens": 10,
                  "difficulty": difficulty}).to_csv(tmp_path / "trace.csv", index=False)
    my_policies.Recorder.seen.clear()
    # The exact truth (noise 0) makes the policy an upper bound, which cannot be the baseline.
    data = scenario(trace={"path": "trace.csv"}, replications=1,
                    policies={"s": {"kind": "static", "model": "big"}, "r": {"kind": f"{plugin}:Recorder"}},
                    baseline="s", router_knowledge={} if noise == "default" else {"difficulty_noise_sd": noise})
    out = run_scenario_data(tmp_path, data)
    assert ("r" in json.loads((out / "summary.json").read_text())["upper_bounds"]) == (noise == 0.0)
    noise = 1.0 if noise == "default" else noise  # the documented default: a signal with noise sd 1
    seen = my_policies.Recorder.seen[-3000:]
    estimates = [r.difficulty_estimate for r in seen]
    if noise is None:
        assert all(e is None for e in estimates)
        return
    error = np.array(estimates) - difficulty
    assert abs(error.mean()) < 4 * max(noise, 1e-9) / np.sqrt(3000) + 1e-12
    assert error.std() == pytest.approx(noise, rel=0.06, abs=1e-12)


def test_a_policy_over_the_decision_budget_is_flagged(cli, tmp_path, plugin):
    from conftest import write_scenario

    data = scenario(replications=1, trace={"synthetic": {"duration_s": 60, "rate_per_s": 2}},
                    slo={"decision_p99_ms": 1}, policies={"slow": {"kind": f"{plugin}:Slow"},
                                                          "static-big": {"kind": "static", "model": "big"}},
                    baseline="static-big")
    result = cli("run", write_scenario(tmp_path, data), "--out", tmp_path / "out")
    assert result.exit_code == 0
    took = re.search(r"warning: slow: routing takes ([0-9.]+) ms \(wall clock\)", result.output)
    assert took and float(took.group(1)) >= 3.0 and "over the 1 ms budget" in result.output
    assert "static-big: routing takes" not in result.output
    assert "over the 1 ms budget" in (tmp_path / "out" / "report.md").read_text()
