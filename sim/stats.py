"""Combining replications: means with t-based 95% confidence intervals, and
paired differences to the baseline (the same replication faced both policies
with common random numbers, so the difference per replication is the unit)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from scipy import stats as scipy_stats

from .metrics import PAIRED_METRICS, RUN_METRICS
from .resilience import RESILIENCE_METRICS

CONFIDENCE = 0.95
#: Order of metrics in summary.json and summary.csv.
SUMMARY_METRICS = (
    "requests", "success_rate", "cost_usd", "cost_per_1k_requests_usd", "cost_per_1k_successes_usd",
    "savings_vs_baseline", "mean_quality",
    "quality_delta_vs_baseline", "latency_p50_s", "latency_p95_s", "latency_p99_s", "fallback_rate",
    "escalation_rate", "attempts_per_request", "slo_attainment", "decision_us_p50", "decision_us_p99", "carbon_g", "policy_error_rate",
) + RESILIENCE_METRICS
PER_RUN = RUN_METRICS + RESILIENCE_METRICS
assert set(SUMMARY_METRICS) == set(PER_RUN) | set(PAIRED_METRICS)


#: Shares bounded by [0, 1]: their t-interval is clipped to that range.
BOUNDED = frozenset({"success_rate", "mean_quality", "fallback_rate", "escalation_rate", "slo_attainment", "policy_error_rate",
                     "fault_success_rate", "rate_limited_share", "hedge_cost_share"})


#: Counts and durations: their interval is clipped at 0.
NON_NEGATIVE = frozenset({"failed_in_faults", "breaker_open_s", "time_to_failover_s", "error_budget_burn", "cost_usd",
                          "cost_per_1k_requests_usd", "cost_per_1k_successes_usd", "carbon_g", "attempts_per_request"})


def _bounds(name: str) -> tuple[float, float] | None:
    if name in BOUNDED:
        return (0.0, 1.0)
    if name in NON_NEGATIVE:
        return (0.0, float("inf"))
    return None


def mean_ci(values: Iterable[float], confidence: float = CONFIDENCE, bounds: tuple[float, float] | None = None) -> dict:
    """``{"mean": x, "ci95": [lo, hi]}``; the interval is None with one replication
    (no spread to estimate) and collapses to the mean when every value is equal.
    ``bounds`` clips the interval to a metric's possible range."""
    # A replication without the measurement (NaN; an infinite ratio) has nothing to average.
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return {"mean": None, "ci95": [None, None]}
    mean = float(x.mean())
    if len(x) < 2:
        return {"mean": mean, "ci95": [None, None]}
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"mean": mean, "ci95": [lo, hi]}


def paired(runs: list[dict], baseline_runs: list[dict]) -> dict[str, list[float]]:
    """Per-replication savings and quality delta against the baseline."""
    savings, delta = [], []
    for run, base in zip(runs, baseline_runs):
        base_cost = base["cost_usd"]
        savings.append(1.0 - run["cost_usd"] / base_cost if base_cost > 0 else float("nan"))
        delta.append(run["mean_quality"] - base["mean_quality"])
    return {"savings_vs_baseline": savings, "quality_delta_vs_baseline": delta}


def summarize(per_policy: dict[str, list[dict]], baseline: str) -> dict[str, dict]:
    """Per policy, every metric over replications as mean and 95% CI."""
    out = {}
    for policy, runs in per_policy.items():
        entry = {name: mean_ci((r[name] for r in runs), bounds=_bounds(name)) for name in PER_RUN}
        for name, values in paired(runs, per_policy[baseline]).items():
            entry[name] = mean_ci(values)
        out[policy] = entry
    return out

