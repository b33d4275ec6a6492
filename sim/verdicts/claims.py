"""A sweep's claim, checked run by run: does the policy save what the claim says
without the quality loss it rules out, and does a simpler rival do as well?

Savings and quality are decided on the 95% intervals as the gate decides them
(the lower bound must reach a minimum; the quality drop holds over all requests
and on the answered ones, so a baseline's failures cannot hide worse answers); the upper savings bound of a "20-45%"
claim is checked on the mean (saving more than claimed is no failure of the
policy, only of the claim's wording, so it is reported apart). A rival beats
the policy in a run when its mean cost is no higher and its mean quality no
lower.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from .gate import CHECKS
from sim.scenario.schema.sweep import Claim

#: The measures a quality drop is held to, as the gate holds it: over all requests, then of the answers.
QUALITY_DROP_MEASURES = (CHECKS["max_quality_drop"], *CHECKS["max_quality_drop"].also)


@dataclass
class Verdict:
    cell: int
    seed: int
    parameters: dict
    savings: tuple  # (mean, lo, hi)
    quality_delta: tuple  # over all requests, failures count 0
    answered_quality_delta: tuple  # of the answered requests
    failed: list[str] = field(default_factory=list)  # the claim's parts that do not hold
    beaten_by: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # true but not as claimed (it saves more)

    @property
    def holds(self) -> bool:
        return not self.failed and not self.beaten_by


def metric_triple(row: dict, metric: str) -> tuple:
    return tuple(row.get(f"{metric}_{part}") for part in ("mean", "ci95_lo", "ci95_hi"))


def verdicts(claim: Claim, rows: list[dict], parameters: list[str]) -> list[Verdict]:
    """One verdict per (cell, seed), in the sweep's order."""
    runs: dict[tuple[int, int], dict[str, dict]] = defaultdict(dict)
    for row in rows:
        runs[(row["cell"], row["seed"])][row["policy"]] = row
    found = []
    for (cell, seed), by_policy in runs.items():
        mine = by_policy[claim.policy]
        overall, answers = (metric_triple(mine, c.metric) for c in QUALITY_DROP_MEASURES)
        v = Verdict(cell, seed, {p: mine.get(p) for p in parameters}, metric_triple(mine, "savings_vs_baseline"),
                    overall, answers)
        mean, lo, _ = v.savings
        decided = lo if lo is not None else mean
        if claim.min_savings is not None and (decided is None or decided < claim.min_savings):
            v.failed.append(f"saves less than {claim.min_savings:.0%}")
        if claim.max_savings is not None and mean is not None and mean > claim.max_savings:
            v.notes.append(f"saves more than {claim.max_savings:.0%}")
        for delta, which in ((v.quality_delta, ""), (v.answered_quality_delta, " in its answers")):
            q_mean, q_lo, _ = delta
            q_decided = q_lo if q_lo is not None else q_mean
            if claim.max_quality_drop is not None and (q_decided is None or -q_decided > claim.max_quality_drop):
                v.failed.append(f"may lose more than {claim.max_quality_drop:g} quality{which}")
        for rival in claim.rivals:
            other = by_policy.get(rival)
            if other is None:
                continue
            cost, quality = other["cost_per_1k_requests_usd_mean"], other["mean_quality_mean"]
            if (cost is not None and quality is not None and cost <= mine["cost_per_1k_requests_usd_mean"]
                    and quality >= mine["mean_quality_mean"]):
                v.beaten_by.append(rival)
        found.append(v)
    return found
