"""routesim's LiteLLM emulation against the real library (issue 13): litellm's
Router with mock deployments and routesim's ``litellm-router`` (written by
``routesim import litellm`` from the same config) on the same request times and
failure schedules, compared on what a team would look at: each deployment's
share, attempts on a failing deployment, failover and fallback-group use, and
how soon a deployment is back after its failures end.

Tolerances: simple-shuffle's shares within 0.05 over 2,000 requests a side
(3.2 to 3.6 standard errors of a difference); other shares, measured over a few
hundred requests, within four standard errors of the difference of two
proportions (so a correct emulation fails about once in 15,000 comparisons:
both sides are seeded, but with generators of their own); counts of attempts
on a failing deployment within one cooldown cycle (allowed_fails mode:
allowed_fails + 1 attempts; the two sides' draws put the window's edges at
different points of a cycle) or within 25% (failure-rate mode, where the count
depends on the minute's tally); time back within 0.15 s with ``allowed_fails``
(a cooldown ends between two requests), within one ``cooldown_time`` in
failure-rate mode, where a failing deployment is cooled again at each try and
the window's end falls anywhere in a cooldown; there the rule itself is checked
instead: the first cooldown comes at the failure that makes failures outnumber
the minute's successes.

The LiteLLM side runs in a process of its own whose clocks (the real-time and
the monotonic one, in Python and in LiteLLM's native code) stand still but for
the schedule, its mock calls (1 ms each) and its own backoff sleeps
(tests/litellm_harness.py): the same seed gives the same calls whatever the
machine's load, and a case takes the CPU time of its requests, not their
schedule. Pinned: litellm 1.110.2 (the ``conformance`` extra).
"""

from __future__ import annotations

import importlib.util
import math

import pytest

pytest.importorskip("litellm", reason="the conformance extra (litellm) is not installed")
if importlib.util.find_spec("libfaketime") is None:  # LiteLLM's clock in the harness (not imported here)
    pytest.skip("the conformance extra (libfaketime) is not installed", allow_module_level=True)

from litellm_harness import Case, run_litellm, run_routesim  # noqa: E402

pytestmark = pytest.mark.conformance

LITELLM_VERSION = "1.110.2"


def test_the_pinned_litellm_is_installed():
    from importlib.metadata import version

    assert version("litellm") == LITELLM_VERSION


def test_the_litellm_side_is_the_same_whatever_the_load():
    """The same case with each mock call burning 15 ms of real CPU (longer than the 10 ms between
    requests, as a loaded machine stretches LiteLLM's calls) reaches the same deployments in the
    same order: LiteLLM's cooldowns run on the schedule's clock, not the machine's."""
    settings = {"num_retries": 2, "cooldown_time": 0.3, "allowed_fails": 1, "fallbacks": [{"g": ["h"]}]}
    quick = Case(GROUPS, settings, 150, 0.01, [("A", 40, 100, 500)])
    loaded = Case(GROUPS, settings, 150, 0.01, [("A", 40, 100, 500)], busy_s=0.015)
    a, b = run_litellm(quick), run_litellm(loaded)
    assert a.attempts == b.attempts and a.start_s == b.start_s and a.latency_s == b.latency_s
    tried_a = [i for i in range(40, 100) if "A" in a.attempts[i]]
    assert 1 < len(tried_a) < 60  # the window saw both cooldowns and retries of A: the case tests something


def deployment(group: str, name: str, **params) -> dict:
    return {"model_name": group, "litellm_params": {"model": f"mock/{name}", **params}}


def share(served, name: str, requests: range) -> float:
    return sum(served.served_by(i) == name for i in requests) / len(requests)


def within_sampling_error(p1: float, p2: float, n: int) -> bool:
    """Two shares of n requests each agree within four standard errors of their difference."""
    p = (p1 + p2) / 2
    return abs(p1 - p2) <= 4 * math.sqrt(2 * p * (1 - p) / n) + 1e-12


def both(case: Case, tmp_path):
    real = run_litellm(case)
    return real, run_routesim(case, real.start_s, tmp_path, minute_s=real.minute_s)


@pytest.mark.parametrize("a, b, expected_a", [
    ({"weight": 3}, {"weight": 1}, 0.75),
    ({"weight": 3}, {}, 1.0),  # the group's metric is weight: B has none, so 0
    ({"rpm": 600}, {"tpm": 400_000}, 1.0),  # rpm comes before tpm
    ({}, {}, 0.5),  # no metric at all: a uniform pick
])
def test_simple_shuffle_weighs_deployments_as_litellm_does(tmp_path, a, b, expected_a):
    case = Case([deployment("g", "A", **a), deployment("g", "B", **b)], {"num_retries": 2}, 2000, 0.0)
    real, sim = both(case, tmp_path)
    everything = range(case.requests)
    assert abs(share(real, "A", everything) - share(sim, "A", everything)) <= 0.05
    # The stated expectation holds for LiteLLM too (four standard errors of one share).
    assert abs(share(real, "A", everything) - expected_a) <= 4 * math.sqrt(expected_a * (1 - expected_a) / 2000)


WINDOW = range(300, 600)  # requests during which deployment A answers HTTP 500
GROUPS = [deployment("g", "A", weight=3), deployment("g", "B", weight=1), deployment("h", "C")]


def measured(served, n: int) -> dict:
    lo, hi = WINDOW.start, WINDOW.stop
    failed_over = [i for i in range(n) if len(served.attempts[i]) > 1]
    back = next((served.start_s[i] - served.start_s[hi] for i in range(hi, n) if "A" in served.attempts[i]), None)
    tries = [(served.start_s[i], served.attempts[i].count("A")) for i in WINDOW if "A" in served.attempts[i]]
    pause = next((k for k in range(1, len(tries)) if tries[k][0] - tries[k - 1][0] > 0.5), len(tries))
    # After the window, once any cooldown has run out (1 s at 10 ms a request): where in a cooldown the
    # window ends is arbitrary in failure-rate mode, so the share right after it is not comparable.
    settled = range(hi + 110, n)
    return {"share_before": share(served, "A", range(lo)), "share_after": share(served, "A", settled),
            "attempts_on_a": sum(a == "A" for i in WINDOW for a in served.attempts[i]),
            "failover": len(failed_over) / n, "to_fallback": sum(served.served_by(i) == "C" for i in failed_over),
            "back_s": back, "failed": served.ok.count(False), "fails_before_cooling": sum(c for _, c in tries[:pause])}


@pytest.mark.parametrize("mode", ["allowed_fails", "failure_rate"])
def test_a_failing_deployment_cools_and_fails_over_as_in_litellm(tmp_path, mode):
    settings = {"num_retries": 2, "cooldown_time": 1, "fallbacks": [{"g": ["h"]}]}
    if mode == "allowed_fails":
        settings["allowed_fails"] = 3
    case = Case(GROUPS, settings, 900, 0.01, [("A", WINDOW.start, WINDOW.stop, 500)])
    real, sim = (measured(s, case.requests) for s in both(case, tmp_path))
    assert within_sampling_error(real["share_before"], sim["share_before"], WINDOW.start), (real, sim)
    assert within_sampling_error(real["share_after"], sim["share_after"], case.requests - WINDOW.stop - 110), (real, sim)
    if mode == "allowed_fails":
        assert abs(real["attempts_on_a"] - sim["attempts_on_a"]) <= 4, (real, sim)
        assert abs(real["to_fallback"] - sim["to_fallback"]) <= 3, (real, sim)
    else:
        assert sim["attempts_on_a"] == pytest.approx(real["attempts_on_a"], rel=0.25), (real, sim)
        assert sim["to_fallback"] == pytest.approx(real["to_fallback"], rel=0.3, abs=3), (real, sim)
    assert within_sampling_error(real["failover"], sim["failover"], case.requests), (real, sim)
    assert real["back_s"] is not None and sim["back_s"] is not None
    assert abs(real["back_s"] - sim["back_s"]) <= (0.15 if mode == "allowed_fails" else 1.0), (real, sim)
    if mode == "failure_rate":
        for side in (real, sim):  # failures before the first pause = A's successes this minute + 1
            assert side["fails_before_cooling"] == round(side["share_before"] * WINDOW.start) + 1, side
    assert real["failed"] == sim["failed"] == 0


@pytest.mark.parametrize("mode", ["allowed_fails", "failure_rate"])
def test_a_single_deployment_group_retries_then_falls_back_as_in_litellm(tmp_path, mode):
    settings = {"num_retries": 2, "cooldown_time": 1, "fallbacks": [{"g": ["h"]}]}
    if mode == "allowed_fails":
        settings["allowed_fails"] = 3
    # With no other deployment to go to, LiteLLM sleeps after each failed attempt (0.5 s x 2^n + up
    # to 0.75 s) and the cooldown has ended by the next request: a short window keeps the case short.
    window = range(100, 105)
    case = Case([deployment("g", "A"), deployment("h", "C")], settings, window.stop + 50, 0.01,
                [("A", window.start, window.stop, 500)])
    real, sim = both(case, tmp_path)
    for side in (real, sim):
        assert all(side.ok)
    on_a = [sum(a == "A" for i in window for a in side.attempts[i]) for side in (real, sim)]
    to_c = [sum(side.served_by(i) == "C" for i in window) for side in (real, sim)]
    # Each request tries A three times, then C, after LiteLLM's backoff after each failure: the
    # group's only deployment is never cooled in failure-rate mode, and with allowed_fails its
    # cooldown has run out during the backoffs by the next request.
    assert on_a[0] == on_a[1] == 3 * len(window)
    assert to_c[0] == to_c[1] == len(window)
    took = [sum(side.latency_s[i] for i in window) / len(window) for side in (real, sim)]
    assert took[1] == pytest.approx(took[0], rel=0.25), took  # ~4.6 s: 0.5 + 1 + 2 s and three jitters


@pytest.mark.parametrize("mode", ["allowed_fails", "failure_rate"])
def test_a_429_storm_is_handled_as_in_litellm(tmp_path, mode):
    """B answers 429 for a while: without allowed_fails LiteLLM cools it at the first 429; with
    allowed_fails a 429 is one more failure to count."""
    settings = {"num_retries": 2, "cooldown_time": 0.5, "fallbacks": [{"g": ["h"]}]}
    if mode == "allowed_fails":
        settings["allowed_fails"] = 3
    window = range(100, 300)
    case = Case([deployment("g", "A"), deployment("g", "B"), deployment("h", "C")], settings, 400, 0.01,
                [("B", window.start, window.stop, 429)])
    real, sim = both(case, tmp_path)
    on_b = [sum(a == "B" for i in window for a in side.attempts[i]) for side in (real, sim)]
    # Cooldown cycles of 0.5 s in a ~2 s window: failure-rate mode cools at each 429 (one attempt per
    # cycle); allowed_fails needs four (the count lives 0.5 s, so a cycle can end before the fourth).
    assert abs(on_b[0] - on_b[1]) <= (4 if mode == "failure_rate" else 8), on_b
    assert within_sampling_error(share(real, "A", window), share(sim, "A", window), len(window))
    assert real.ok.count(False) == sim.ok.count(False) == 0


def test_context_window_fallbacks_as_in_litellm(tmp_path):
    """Requests too long for A go to the context-window fallback group, without retrying A."""
    settings = {"num_retries": 2, "cooldown_time": 1, "context_window_fallbacks": [{"g": ["big"]}],
                "fallbacks": [{"g": ["h"]}]}
    long_ones = range(50, 80)
    case = Case([deployment("g", "A"), deployment("big", "L"), deployment("h", "C")], settings, 120, 0.01,
                [("A", long_ones.start, long_ones.stop, 400)])
    real, sim = both(case, tmp_path)
    for side in (real, sim):
        assert all(side.ok)
    for i in range(case.requests):
        assert real.attempts[i] == sim.attempts[i], (i, real.attempts[i], sim.attempts[i])
    # What both did: one try on A, then the long-context group; never a retry of A or group h.
    assert {tuple(real.attempts[i]) for i in long_ones} == {("A", "L")}
    assert {tuple(real.attempts[i]) for i in range(case.requests) if i not in long_ones} == {("A",)}


def test_usage_based_routing_as_in_litellm(tmp_path):
    """usage-based-routing-v2: the deployment with the least usage this minute that the request
    would not push over its rpm; when both are at their rpm the request fails without an attempt."""
    settings = {"routing_strategy": "usage-based-routing-v2", "num_retries": 0}
    case = Case([deployment("g", "A", rpm=120), deployment("g", "B", rpm=40)], settings, 200, 0.0)
    real, sim = both(case, tmp_path)
    everything = range(case.requests)
    served = [{name: sum(side.served_by(i) == name for i in everything) for name in ("A", "B")} for side in (real, sim)]
    failed = [side.ok.count(False) for side in (real, sim)]
    assert served[0] == served[1], served
    assert failed[0] == failed[1], failed
    # Each up to rpm - 1 (LiteLLM's check is usage + 1 < rpm), then nothing left for the rest.
    assert served[0] == {"A": 120 - 1, "B": 40 - 1} and failed[0] == case.requests - (120 - 1) - (40 - 1)



def test_tag_based_routing_as_in_litellm(tmp_path):
    """enable_tag_filtering: a request goes to the deployments carrying one of its tags; an
    untagged one to any; '!tag' keeps away from a tag; a tag no deployment of the group carries
    makes LiteLLM refuse the group and take its fallback, where the 'default' deployment serves.
    While A fails, 'free' requests go on to C (the other 'free' deployment), never to B."""
    settings = {"enable_tag_filtering": True, "num_retries": 2, "cooldown_time": 0.5, "allowed_fails": 1,
                "fallbacks": [{"g": ["h"]}]}
    model_list = [deployment("g", "A", tags=["free"]), deployment("g", "B", tags=["paid"]),
                  deployment("g", "C", tags=["free", "paid"]),
                  deployment("h", "E", tags=["default"]), deployment("h", "F", tags=["paid"])]
    kinds = [("free",), ("paid",), (), ("unknown",), ("!free",)]
    n = 1000
    failing = range(600, 800)
    case = Case(model_list, settings, n, 0.005, [("A", failing.start, failing.stop, 500)],
                tags=[kinds[i % len(kinds)] for i in range(n)])
    real, sim = both(case, tmp_path)
    healthy = [i for i in range(n) if i not in failing]
    for k, kind in enumerate(kinds):
        requests = [i for i in healthy if i % len(kinds) == k]
        for name in "ABCEF":
            assert within_sampling_error(share(real, name, requests), share(sim, name, requests), len(requests)), \
                (kind, name, share(real, name, requests), share(sim, name, requests))
    # What the rules say, on LiteLLM's side: (kind, deployments that may serve it).
    for kind, allowed in [(("free",), "AC"), (("paid",), "BC"), ((), "ABC"), (("unknown",), "E"), (("!free",), "B")]:
        k = kinds.index(kind)
        assert {real.served_by(i) for i in healthy if i % len(kinds) == k} == set(allowed), kind
    free_in_window = [i for i in failing if i % len(kinds) == 0]
    for side in (real, sim):
        assert {side.served_by(i) for i in free_in_window} == {"C"}
        assert all(side.ok)


TAG_CONFIGS = [  # (deployment -> tags, router settings)
    ({"A": ["free"], "B": ["paid"], "C": ["free", "paid"], "D": ["default"]}, {}),
    ({"A": ["free"], "B": ["paid"], "C": ["free", "paid"], "D": []}, {}),
    ({"A": ["free"], "B": ["paid"], "C": ["free", "paid"], "D": ["default", "eu"]}, {"tag_filtering_match_any": False}),
]
REQUEST_TAGS = [(), ("free",), ("paid",), ("free", "paid"), ("unknown",), ("!free",), ("&paid",), ("&eu",),
                ("!paid", "!free"), ("free", "!paid"), ("eu",), ("default",)]


@pytest.mark.parametrize("tags, settings", TAG_CONFIGS)
def test_tag_rules_pick_the_deployments_litellm_picks(tags, settings):
    """For each request tag set, the deployments LiteLLM sends such requests to (40 tries, a
    uniform pick among at most four: one is missed with probability below 1e-4) are the ones
    routesim's tag rules allow."""
    from litellm_harness import litellm_tag_pools
    from sim.policies.litellm_tags import allowed_deployments

    model_list = [deployment("g", name, tags=t) for name, t in tags.items()]
    real = litellm_tag_pools(model_list, {"enable_tag_filtering": True, **settings}, REQUEST_TAGS)
    names = list(tags)
    for request_tags, reached in real.items():
        ours = allowed_deployments(request_tags, names, names, tags, settings.get("tag_filtering_match_any", True))
        assert set(ours) == reached, (request_tags, sorted(ours), sorted(reached))
