"""Routing research metrics: RouteLLM's PGR/APGR/CPT and RouterBench's AIQ,
checked against hand computations and an independent threshold sweep."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from sim.metrics.research import aiq, curve_metrics, nondecreasing_hull, routing_curve

from conftest import SHARED_DATA, read, run_scenario_data, scenario


def test_the_hull_is_convex_non_decreasing_and_flat_after_the_best_point():
    xs, ys = nondecreasing_hull([0, 1, 2, 3, 1.5], [0, 0.6, 0.7, 0.65, 0.3])
    assert xs.tolist() == [0, 1, 2, 3] and ys.tolist() == [0, 0.6, 0.7, 0.7]  # (1.5, 0.3) is under the hull
    # Area by trapezoids: 0.3 + 0.65 + 0.7 over a cost range of 3.
    assert aiq([0, 1, 2, 3, 1.5], [0, 0.6, 0.7, 0.65, 0.3]) == pytest.approx(1.65 / 3)
    # Two models only: random mixing is the straight line between them, AIQ their mean quality.
    assert aiq([1, 5], [0.4, 0.8]) == pytest.approx(0.6)
    assert aiq([1, 5], [0.8, 0.4]) == pytest.approx(0.8)  # the cheaper one is better: flat at its quality


def test_the_routing_curve_and_apgr_by_hand():
    # Scores rank requests 0, 2, 1, 3 for the strong model.
    share, quality, cost = routing_curve(np.array([3.0, 1.0, 2.0, 0.0]), np.array([1.0, 1.0, 0.0, 1.0]),
                                         np.array([0.0, 1.0, 0.0, 0.0]), np.full(4, 0.01), np.full(4, 0.001))
    assert quality.tolist() == [0.25, 0.5, 0.5, 0.5, 0.75]
    assert cost == pytest.approx([1.0, 3.25, 5.5, 7.75, 10.0])  # per 1k requests
    metrics = curve_metrics(share, quality)
    # PGR 0, .5, .5, .5, 1 at shares 0, .25, .5, .75, 1: trapezoids .0625 + .125 + .125 + .1875.
    assert metrics == pytest.approx({"apgr": 0.5, "cpt_50": 0.25, "cpt_80": 1.0})


PLUGIN = textwrap.dedent('''
    import random
    from sim.policies import Decision

    class RandomScore:
        """Scores requests at random: RouteLLM's random router, whose APGR is 0.5 in expectation."""
        def __init__(self, seed=0):
            self.random = random.Random(seed)
        def route(self, request, view):
            score = self.random.random()
            order = ("big", "small") if score > 0.5 else ("small", "big")
            return Decision(order, "random order", score=score)
''')


def test_comparisons_in_a_run(tmp_path, monkeypatch):
    (tmp_path / "random_score.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    models = {**scenario()["models"],
              "third": {"provider": "pc", "price": {"input_per_mtok": 1, "output_per_mtok": 1},
                        "latency": scenario()["models"]["big"]["latency"], "quality": {"default": 2.0}}}
    policies = {"static-big": {"kind": "static", "model": "big"},
                "static-small": {"kind": "static", "model": "small"},
                "threshold": {"kind": "threshold", "strong": "big", "weak": "small", "strong_share": 0.3},
                "random": {"kind": "random_score:RandomScore"},
                "everything": {"kind": "weighted", "weights": {"cost": 0.5, "quality": 0.5}}}
    data = scenario(replications=2, models=models, policies=policies,
                    trace={"synthetic": {"duration_s": 1500, "rate_per_s": 2}},
                    workloads={"default": {"difficulty": {"mean": 1.0, "sd": 1.5}}},
                    router_knowledge={"difficulty_noise_sd": 0.2})
    out = run_scenario_data(tmp_path, data)
    summary = json.loads((out / "summary.json").read_text())
    # Two static policies on different models: one comparison; 'everything' also used 'third', so it is no router here.
    [comparison] = summary["comparisons"]
    assert (comparison["strong_model"], comparison["weak_model"]) == ("big", "small")
    routers = comparison["routers"]
    assert set(routers) == {"threshold", "random"}
    assert routers["random"]["apgr"]["mean"] == pytest.approx(0.5, abs=0.05)

    # The threshold policy's APGR, swept independently: a grid of thresholds over its scores, masks, trapezoids.
    requests = read(out).set_index(["policy", "replication", "request_id"]).sort_index()
    decisions = read(out, "decisions")
    decisions = decisions[decisions.policy == "threshold"]
    apgr, pgr_at_share = [], []
    for r, rep in decisions.groupby("replication"):
        score = rep.score.to_numpy(dtype=float)
        assert "score" not in " ".join(rep.reason)  # the score is a column; reasons stay prose
        strong = requests.loc[("static-big", r)].quality.to_numpy()
        weak = requests.loc[("static-small", r)].quality.to_numpy()
        shares, pgr = [], []
        for t in np.concatenate([[np.inf], np.sort(score)[::-1]]):
            to_strong = score >= t
            quality = np.where(to_strong, strong, weak).mean()
            shares.append(to_strong.mean())
            pgr.append((quality - weak.mean()) / (strong.mean() - weak.mean()))
        apgr.append(np.trapezoid(pgr, shares))
        served = requests.loc[("threshold", r)]
        pgr_at_share.append((served.quality.mean() - weak.mean()) / (strong.mean() - weak.mean()))
    assert routers["threshold"]["apgr"]["mean"] == pytest.approx(np.mean(apgr), abs=1e-9)
    assert routers["threshold"]["pgr"]["mean"] == pytest.approx(np.mean(pgr_at_share), abs=1e-9)
    # An informative score beats random routing over the whole curve; the report says so.
    assert routers["threshold"]["apgr"]["mean"] > routers["random"]["apgr"]["mean"]
    assert routers["threshold"]["aiq"]["mean"] >= comparison["random_mix_aiq"]["mean"]
    report = (out / "report.md").read_text()
    assert "Two-model comparison: big (strong) vs small (weak)" in report
    assert pd.notna(routers["threshold"]["cpt_50"]["mean"])


MMLU = SHARED_DATA / "routellm" / "mmlu_labels.csv"


@pytest.mark.skipif(not MMLU.exists(), reason=f"RouteLLM labels not found at {MMLU}")
def test_routellm_mmlu_labels_replayed(tmp_path, monkeypatch):
    """RouteLLM's own per-prompt correctness labels as counterfactual quality: the static policies reproduce the
    published accuracies, a random router recovers half the gap over the curve, the oracle what either model knew."""
    # A module name of its own: the other test's random_score module stays imported.
    (tmp_path / "random_score_mmlu.py").write_text(PLUGIN.replace('"big", "small"', '"gpt-4", "mixtral"')
                                              .replace('"small", "big"', '"mixtral", "gpt-4"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    labels = pd.read_csv(MMLU)
    strong, weak = labels.gpt_4_1106_correct.to_numpy(), labels.mixtral_8x7b_correct.to_numpy()
    pd.DataFrame({"arrival_s": np.arange(len(labels)) * 0.1, "workload": "mmlu",
                  "input_tokens": np.maximum(labels.prompt_chars // 4, 1), "output_tokens": 1,
                  "quality.gpt-4": strong, "quality.mixtral": weak}).to_csv(tmp_path / "mmlu.csv", index=False)
    latency = scenario()["models"]["big"]["latency"]
    models = {"gpt-4": {"provider": "openai", "price": {"input_per_mtok": 10, "output_per_mtok": 30},
                        "latency": latency, "quality": {"default": 0}},
              "mixtral": {"provider": "together", "price": {"input_per_mtok": 0.6, "output_per_mtok": 0.6},
                          "latency": latency, "quality": {"default": 0}}}
    policies = {"gpt-4": {"kind": "static", "model": "gpt-4"}, "mixtral": {"kind": "static", "model": "mixtral"},
                "random": {"kind": "random_score_mmlu:RandomScore"}, "oracle": {"kind": "oracle"}}
    out = run_scenario_data(tmp_path, scenario(replications=1, trace={"path": "mmlu.csv"}, models=models,
                                               policies=policies, baseline="gpt-4"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policies"]["gpt-4"]["mean_quality"]["mean"] == pytest.approx(strong.mean(), abs=1e-12)  # 80.6%
    assert summary["policies"]["mixtral"]["mean_quality"]["mean"] == pytest.approx(weak.mean(), abs=1e-12)  # 68.1%
    [comparison] = summary["comparisons"]
    routers = comparison["routers"]
    assert routers["random"]["apgr"]["mean"] == pytest.approx(0.5, abs=0.03)
    either = np.maximum(strong, weak).mean()
    assert routers["oracle"]["pgr"]["mean"] == pytest.approx((either - weak.mean()) / (strong.mean() - weak.mean()))
    # It pays for GPT-4 only where Mixtral was wrong and GPT-4 right.
    assert routers["oracle"]["strong_call_share"]["mean"] == pytest.approx(((strong == 1) & (weak == 0)).mean())
    assert routers["oracle"]["upper_bound"] is True


def test_a_score_that_is_not_a_finite_number_is_a_policy_error(tmp_path, monkeypatch):
    (tmp_path / "bad_score.py").write_text(
        "from sim.policies import Decision\n"
        "class BadScore:\n"
        "    def route(self, request, view):\n"
        "        return Decision(('big',), 'x', score=float('nan') if request.workload == 'chat' else 'high')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = scenario(replications=1, router={"timeout_s": 60, "max_attempts": 3, "default_model": "small"},
                    policies={"bad": {"kind": "bad_score:BadScore"}}, baseline="bad")
    out = run_scenario_data(tmp_path, data, report=False)
    decisions = read(out, "decisions")
    requests = read(out)
    assert decisions.policy_error.str.startswith("Decision.score must be a finite number or None").all()
    assert decisions.score.isna().all()
    assert set(requests.model[requests.status == "ok"]) == {"small"}  # the default model served them
