"""What a policy may know (issue 12): beliefs apart from the truth, feedback only
through the configured channel, exact truth marked as an upper bound, and nothing
of the world reachable from what the router holds."""

from __future__ import annotations

import gc
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from conftest import install_plugin, read, run_scenario_data, scenario
from test_world import model


def acceptance(ability: float, mean: float = 0.0, sd: float = 1.0) -> float:
    """P(acceptable) = E[sigmoid(ability - d)], d ~ N(mean, sd), by quadrature."""
    value, _ = integrate.quad(lambda d: stats.norm.pdf(d, mean, sd) / (1 + math.exp(-(ability - d))), -12, 12)
    return value


# Two models at the same price and speed: 'good' is truly far better, but the router's
# published figures say the opposite.
REVERSED = {"good": model(price=(1.0, 1.0), quality=2.0, quality_prior={"default": 0.0}),
            "poor": model(price=(1.0, 1.0), quality=0.0, quality_prior={"default": 2.0})}
ONE_WORKLOAD = {"synthetic": {"duration_s": 2000, "rate_per_s": 1, "workloads": {"chat": 1.0},
                              "input_tokens": {"median": 500, "p95": 2000},
                              "output_tokens": {"median": 100, "p95": 400}}}
JUDGE = {"share": 0.5, "accuracy": 0.85, "delay_s": 30}
LEARNED_BY = 500  # requests after which the bandit with a judge sends most traffic to the good model


@pytest.fixture(scope="module")
def reversed_run(tmp_path_factory):
    data = scenario(replications=2, models=REVERSED, trace=ONE_WORKLOAD,
                    workloads={"chat": {"difficulty": {"mean": 0.0, "sd": 1.0}}},
                    policies={"weighted": {"kind": "weighted", "weights": {"cost": 0.1, "quality": 0.9}},
                              "bandit-judged": {"kind": "bandit", "cost_weight": 0, "knowledge": {"feedback": {"judge": JUDGE}}},
                              "bandit-blind": {"kind": "bandit", "cost_weight": 0}},
                    baseline="bandit-blind")
    out = run_scenario_data(tmp_path_factory.mktemp("reversed"), data, report=False)
    return read(out), out


def test_the_truth_is_what_the_models_do(reversed_run):
    requests, _ = reversed_run
    ok = requests[requests.status == "ok"]
    for name, ability in (("good", 2.0), ("poor", 0.0)):
        served = ok[ok.model == name].quality
        p = acceptance(ability)
        assert abs(served.mean() - p) < 4 * math.sqrt(p * (1 - p) / len(served)), name


def test_without_feedback_the_weighted_policy_follows_its_belief(reversed_run):
    """Same price, same speed: every request's believed chance is higher on 'poor'
    (sigmoid is increasing and poor's prior is 2 above good's), so all of it goes there."""
    requests, _ = reversed_run
    weighted = requests[requests.policy == "weighted"]
    assert (weighted.model == "poor").mean() > 0.99
    p = acceptance(0.0)
    assert abs(weighted.quality.mean() - p) < 4 * math.sqrt(p * (1 - p) / len(weighted))


def test_with_a_judge_the_bandit_moves_to_the_truly_better_model(reversed_run):
    requests, _ = reversed_run
    for r, run in requests[requests.policy == "bandit-judged"].groupby("replication"):
        run = run.sort_values("arrival_s")
        late = run.iloc[LEARNED_BY:]
        assert (late.model == "good").mean() > 0.85, r
    # Without a channel it never learns: Thompson draws from two identical Beta(1, 1) priors.
    blind = requests[requests.policy == "bandit-blind"]
    assert abs((blind.model == "good").mean() - 0.5) < 4 * math.sqrt(0.25 / len(blind))


FEEDBACK_PLUGIN = '''
from sim.policies import Decision, Feedback, Outcome


class Listener:
    """Sends everything to 'good' and keeps what reaches observe(), and when."""
    log = []

    def __init__(self):
        self.feedback = []
        self.outcomes = 0
        Listener.log.append(self)
        self.seen_at = []  # (now_s, feedback received so far)

    def route(self, request, view):
        self.seen_at.append((view.now_s, len(self.feedback)))
        return Decision(("good",), "listen")

    def observe(self, request, news):
        if isinstance(news, Feedback):
            self.feedback.append(news)
        else:
            assert isinstance(news, Outcome) and not hasattr(news, "quality")
            self.outcomes += 1


class Deaf(Listener):
    reads = frozenset()
'''


@pytest.fixture
def listener(tmp_path, monkeypatch):
    return install_plugin(tmp_path, monkeypatch, "listeners", FEEDBACK_PLUGIN)


def test_feedback_arrives_for_its_share_with_its_accuracy_after_its_delay(tmp_path, listener):
    channel = {"share": 0.3, "accuracy": 0.8, "delay_s": 120}
    data = scenario(replications=1, models=REVERSED, trace=ONE_WORKLOAD,
                    policies={"listener": {"kind": "listeners:Listener"}, "deaf": {"kind": "listeners:Deaf"}},
                    baseline="listener", router_knowledge={"feedback": {"judge": channel}})
    out = run_scenario_data(tmp_path, data, report=False)
    listening, deaf = listener.Listener.log[-2:]
    assert not deaf.feedback and deaf.outcomes == len(read(out)) / 2  # a policy that does not read it gets none
    requests = read(out)
    mine = requests[requests.policy == "listener"].set_index("request_id")
    answered = mine[mine.status == "ok"]
    got = pd.DataFrame([f._asdict() for f in listening.feedback]).set_index("request_id")
    assert got.index.is_unique and got.index.isin(answered.index).all()
    # Its share of the answers, binomially.
    n = len(answered)
    assert abs(len(got) / n - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)
    # Its accuracy: the verdict equals the true acceptability 80% of the time.
    truth = answered.quality.loc[got.index]
    right = (got.quality == truth).mean()
    assert abs(right - 0.8) < 4 * math.sqrt(0.8 * 0.2 / len(got))
    assert (got.channel == "judge").all() and (got.model == answered.model.loc[got.index]).all()
    end = answered.arrival_s + answered.latency_s
    assert np.allclose(got.answered_s, end.loc[got.index])
    # Its delay: at each decision, exactly the verdicts on answers returned 120 s earlier have arrived.
    delivered_at = np.sort((got.answered_s + 120).to_numpy())
    for now, received in listening.seen_at[::50]:
        assert received == np.searchsorted(delivered_at, now, side="left") or \
            received == np.searchsorted(delivered_at, now, side="right")


@pytest.mark.parametrize("knowledge, bound", [
    ({}, False),
    ({"quality_noise_sd": 0}, True),
    ({"difficulty_noise_sd": 0}, True),
    ({"difficulty_noise_sd": None}, False),
    ({"feedback": {"judge": {"accuracy": 1.0}}}, False),  # weighted does not read feedback
])
def test_exact_truth_a_policy_reads_makes_it_an_upper_bound(tmp_path, knowledge, bound):
    data = scenario(replications=1, trace={"synthetic": {"duration_s": 60, "rate_per_s": 2}},
                    policies={"static-big": {"kind": "static", "model": "big"},
                              "weighted": {"kind": "weighted", "weights": {"cost": 0.5, "quality": 0.5},
                                           "knowledge": knowledge}},
                    baseline="static-big")
    out = run_scenario_data(tmp_path, data)
    summary = json.loads((out / "summary.json").read_text())
    assert ("weighted" in summary["upper_bounds"]) == bound
    assert "static-big" not in summary["upper_bounds"]
    report = (out / "report.md").read_text()
    assert ("**weighted: an unreachable upper bound" in report) == bound
    # The method section says what it knew.
    known = summary["knowledge"]["weighted"]
    noise = knowledge.get("quality_noise_sd", 0.5)
    assert known["quality"] == ("exact truth" if noise == 0 else f"truth + N(0, {noise:g}) per model and workload")
    assert f"| weighted{' (upper bound, unreachable)' if bound else ''} | {known['quality']} | {known['difficulty']} |" in report


def test_a_bandit_with_a_perfect_judge_is_an_upper_bound_and_cannot_be_the_baseline(tmp_path, cli):
    from conftest import write_scenario

    data = scenario(replications=1, policies={"b": {"kind": "bandit", "knowledge": {"feedback": {"judge": {
        "share": 1.0, "accuracy": 1.0, "delay_s": 0}}}}}, baseline="b")
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2 and "upper bound" in result.output


def test_the_router_holds_nothing_of_the_world(tmp_path):
    """Everything reachable from the router's observations (what policies' views are built
    from) is its own records, the published prices and its beliefs: no World, trace,
    catalog or per-attempt draws."""
    from sim.world.beliefs import SharedDraws
    from sim.world.models import build_model_table
    from sim.core.engine import Engine
    from sim.core.recorder import RunRecorder
    from sim.world.providers import Providers
    from sim.core.router import Router
    from sim.run.runner import construct, load_trace
    from sim.scenario.load import load_scenario
    from sim.traces.table import Trace
    from sim.world.world import World, draw_difficulty
    from conftest import write_scenario

    loaded = load_scenario(write_scenario(tmp_path, scenario(replications=1)))
    sc = loaded.scenario
    trace = load_trace(loaded, 1, 0)
    catalog = build_model_table(loaded, trace.workloads)
    difficulty = draw_difficulty(sc, trace, 1, 0)
    world = World(sc, catalog, trace, difficulty, 1, 0, sc.max_attempts())
    engine = Engine()
    router = Router(construct(loaded, "static-big", 1), world, catalog, sc.router, engine.schedule, RunRecorder(len(trace)),
                    Providers(sc, catalog), SharedDraws(sc, catalog, difficulty, 1, 0).beliefs_of("static-big"))
    engine.run(trace.arrival_s.tolist(), router.on_arrival)
    forbidden = (World, Trace, type(catalog), np.ndarray)
    seen, frontier = set(), [router.known, router.known.view(1e9)]
    while frontier:
        obj = frontier.pop()
        if id(obj) in seen or isinstance(obj, type) or callable(obj) and not hasattr(obj, "__dict__"):
            continue
        seen.add(id(obj))
        assert not isinstance(obj, forbidden), f"the router's observations reach a {type(obj).__name__}"
        frontier.extend(gc.get_referents(obj))
    assert len(seen) > 50  # it did walk the observations


@pytest.mark.parametrize("judge, bound", [({}, False), ({"accuracy": 1.0}, True),
                                          ({"accept_good": 1.0, "reject_bad": 0.95}, False)])
def test_a_cascade_with_a_judge_that_never_errs_is_an_upper_bound(tmp_path, judge, bound):
    data = scenario(replications=1, trace={"synthetic": {"duration_s": 60, "rate_per_s": 2}},
                    policies={"static-big": {"kind": "static", "model": "big"},
                              "cascade": {"kind": "cascade", "judge": judge}}, baseline="static-big")
    summary = json.loads((run_scenario_data(tmp_path, data, report=False) / "summary.json").read_text())
    assert ("cascade" in summary["upper_bounds"]) == bound
    assert ("judge with accept_good and reject_bad 1" in summary["knowledge"]["cascade"]["exact_truth"]) == bound
