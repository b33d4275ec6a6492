"""Routing research metrics for two-model comparisons (docs/metrics.md):
RouteLLM's performance gap recovered (PGR, APGR) and call-performance
thresholds (CPT), RouterBench's AIQ, and the non-decreasing convex hull of cost
vs quality they rest on (also the frontier of the cost-quality figure).

A two-model comparison is a pair of ``static`` policies on different models:
the one with the higher mean quality is *strong*, the other *weak*. Every other
policy whose answers all came from those two models is a router between them.
With common random numbers, the static runs are each request's counterfactual
outcome on either model, which is what RouteLLM and RouterBench evaluate
routers against. A router that reports a numeric ``score`` in its decision
reason (higher: more deserving of the strong model; the ``threshold`` policy
does) also gets its whole routing curve, by sweeping a threshold over its scores
offline; any other router is one operating point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .registry import names
from .stats import mean_ci

#: Per router and comparison, in the order of summary.json.
#: Per router (declared in metric_registry.py); ``random_mix_aiq`` is per comparison.
RESEARCH_METRICS = tuple(n for n in names("research") if n != "random_mix_aiq")
_HULL_POINTS = 1001  # operating points of a swept curve kept for the hull


# --------------------------------------------------------------------------- geometry
def nondecreasing_hull(costs, qualities) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (by cost) of the non-decreasing upper convex hull of the points:
    the best quality reachable for each cost by mixing operating points at random,
    flat from the best point on (spending more can always buy the best one)."""
    points = sorted(set(zip(map(float, costs), map(float, qualities))))
    hull: list[tuple[float, float]] = []
    for p in points:  # Andrew's monotone chain, upper half: keep only right turns
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    best = max(range(len(hull)), key=lambda k: hull[k][1])
    xs = [x for x, _ in hull[:best + 1]]
    ys = [y for _, y in hull[:best + 1]]
    if points[-1][0] > xs[-1]:
        xs.append(points[-1][0])
        ys.append(ys[-1])
    return np.array(xs), np.array(ys)


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def aiq(costs, qualities) -> float:
    """RouterBench's average improvement in quality: the mean height of the
    non-decreasing convex hull over the points' cost range."""
    xs, ys = nondecreasing_hull(costs, qualities)
    if xs[-1] == xs[0]:
        return float(ys.max())
    return float(np.trapezoid(ys, xs) / (xs[-1] - xs[0]))


# --------------------------------------------------------------------------- one replication
def routing_curve(score, strong_quality, weak_quality, strong_cost, weak_cost):
    """Every operating point of a score-threshold router: the k highest scores to
    the strong model, k = 0..N. Returns (strong share, mean quality, cost per 1k requests)."""
    score = np.where(np.isnan(score), np.inf, score)  # no score: sent strong, like the threshold policy
    order = np.argsort(-score, kind="stable")
    n = len(order)

    def mix(strong, weak):
        head = np.concatenate([[0.0], np.cumsum(strong[order])])
        tail = weak.sum() - np.concatenate([[0.0], np.cumsum(weak[order])])
        return (head + tail) / n

    return np.arange(n + 1) / n, mix(strong_quality, weak_quality), mix(strong_cost, weak_cost) * 1000.0


def curve_metrics(share, quality) -> dict[str, float]:
    """APGR (area under PGR vs share of strong calls) and CPT(50%), CPT(80%)."""
    gap = quality[-1] - quality[0]
    if gap <= 0:
        return {"apgr": np.nan, "cpt_50": np.nan, "cpt_80": np.nan}
    pgr = (quality - quality[0]) / gap
    out = {"apgr": float(np.trapezoid(pgr, share))}
    for level in (50, 80):
        reached = np.flatnonzero(pgr >= level / 100 - 1e-12)
        out[f"cpt_{level}"] = float(share[reached[0]])
    return out


def router_metrics(router: pd.DataFrame, strong: pd.DataFrame, weak: pd.DataFrame, strong_model: str,
                   score: np.ndarray | None) -> dict[str, float]:
    """One router against one comparison in one replication (rows in request order)."""
    q_strong, q_weak = strong.quality.mean(), weak.quality.mean()
    c_strong, c_weak = strong.cost_usd.mean() * 1000.0, weak.cost_usd.mean() * 1000.0
    q, c = router.quality.mean(), router.cost_usd.mean() * 1000.0
    gap = q_strong - q_weak
    out = {"strong_call_share": float((router.model == strong_model).mean()),
           "pgr": float((q - q_weak) / gap) if gap > 0 else np.nan,
           "apgr": np.nan, "cpt_50": np.nan, "cpt_80": np.nan}
    costs, qualities = [c_weak, c_strong, c], [q_weak, q_strong, q]
    if score is not None:
        share, quality, cost = routing_curve(score, strong.quality.to_numpy(), weak.quality.to_numpy(),
                                             strong.cost_usd.to_numpy(), weak.cost_usd.to_numpy())
        out.update(curve_metrics(share, quality))
        keep = np.unique(np.linspace(0, len(share) - 1, _HULL_POINTS).round().astype(int))
        costs += cost[keep].tolist()
        qualities += quality[keep].tolist()
    out["aiq"] = aiq(costs, qualities)
    return out


# --------------------------------------------------------------------------- a whole run
def comparisons(folder: Path, static_models: dict[str, str], upper_bounds: list[str]) -> list[dict]:
    """Every two-model comparison of a finished run, from its Parquet tables.

    ``static_models``: static policy -> its model. Each comparison lists its
    routers' metrics as ``{"mean": x, "ci95": [lo, hi]}`` over replications."""
    by_model = {}
    for policy, model in static_models.items():
        by_model.setdefault(model, policy)  # the first static policy on a model stands for it
    if len(by_model) < 2:
        return []
    requests = pq.read_table(folder / "requests.parquet",
                             columns=["policy", "replication", "status", "model", "quality", "cost_usd"]).to_pandas()
    runs = {key: frame.reset_index(drop=True) for key, frame in requests.groupby(["policy", "replication"], sort=False)}
    replications = sorted(requests.replication.unique())
    mean_quality = requests.groupby("policy").quality.mean()
    served = requests[requests.status == "ok"].groupby("policy").model.unique()
    scores = _scores(folder)
    out = []
    models = list(by_model)
    for a in range(len(models)):
        for b in range(a + 1, len(models)):
            pair = sorted((models[a], models[b]), key=lambda m: -mean_quality[by_model[m]])
            strong, weak = by_model[pair[0]], by_model[pair[1]]
            routers = [p for p in requests.policy.unique() if p not in static_models
                       and p in served and set(served[p]) <= set(pair)]
            mixing = [aiq([runs[(p, r)].cost_usd.mean() * 1000.0 for p in (weak, strong)],
                          [runs[(p, r)].quality.mean() for p in (weak, strong)]) for r in replications]
            entry = {"strong_model": pair[0], "weak_model": pair[1], "strong_policy": strong, "weak_policy": weak,
                     "random_mix_aiq": mean_ci(mixing), "routers": {}}
            for policy in routers:
                per_rep = [router_metrics(runs[(policy, r)], runs[(strong, r)], runs[(weak, r)], pair[0],
                                          scores.get((policy, r))) for r in replications]
                entry["routers"][policy] = {m: mean_ci([x[m] for x in per_rep]) for m in RESEARCH_METRICS}
                entry["routers"][policy]["upper_bound"] = policy in upper_bounds
            out.append(entry)
    return out


def _scores(folder: Path) -> dict[tuple[str, int], np.ndarray]:
    """Per (policy, replication), the ``score`` of each decision, where the policy gives one."""
    decisions = pq.read_table(folder / "decisions.parquet", columns=["policy", "replication", "score"]).to_pandas()
    found = decisions.score.astype(float)
    out = {}
    for key, index in decisions.groupby(["policy", "replication"], sort=False).groups.items():
        values = found[index].to_numpy()
        if not np.isnan(values).all():
            out[key] = values
    return out
