"""Combining replications: means with t-based 95% confidence intervals, and
paired differences to the baseline (the same replication faced both policies
with common random numbers, so the difference per replication is the unit)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
# Student's t quantile from scipy.special: scipy.stats gives the same numbers but takes a
# third of a second to import, on every run.
from scipy.special import stdtrit

from .registry import BY_NAME, names

CONFIDENCE = 0.95
PER_RUN = names("run", "resilience")  # computed per run; the paired ones from two runs


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
    half = float(stdtrit(len(x) - 1, 0.5 + confidence / 2) * x.std(ddof=1) / math.sqrt(len(x)))
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"mean": mean, "ci95": [lo, hi]}


def paired(runs: list[dict], baseline_runs: list[dict]) -> dict[str, list[float]]:
    """Per replication, each paired metric of a policy's run against the baseline's."""
    return {name: [BY_NAME[name].paired(run, base) for run, base in zip(runs, baseline_runs)]
            for name in names("paired")}


def summarize(per_policy: dict[str, list[dict]], baseline: str) -> dict[str, dict]:
    """Per policy, every metric over replications as mean and 95% CI."""
    out = {}
    for policy, runs in per_policy.items():
        entry = {name: mean_ci((r[name] for r in runs), bounds=BY_NAME[name].bounds) for name in PER_RUN}
        for name, values in paired(runs, per_policy[baseline]).items():
            entry[name] = mean_ci(values, bounds=BY_NAME[name].bounds)
        out[policy] = entry
    return out

