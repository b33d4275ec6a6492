"""The headline: the question routesim exists to answer — static vs manual vs
dynamic routing — in this run's numbers, with a one-sentence verdict per policy.

Shared by report.md and report.html so both say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..metric_registry import BY_NAME
from .format import fmt_named

#: (metric, column title) of the headline table, in order; formats follow the registry's units.
HEADLINE = (
    ("cost_usd", "Cost (USD)"),
    ("cost_per_1k_requests_usd", "Cost / 1k req"),
    ("savings_vs_baseline", "Savings vs baseline"),
    ("mean_quality", "Quality"),
    ("quality_delta_vs_baseline", "Quality Δ"),
    ("success_rate", "Availability"),
    ("fault_success_rate", "Availability in faults"),
    ("latency_p95_s", "p95 latency (s)"),
    ("latency_p99_s", "p99 latency (s)"),
    ("time_to_failover_s", "Time to failover (s)"),
)
_STATIC, _MANUAL = {"static"}, {"manual"}


def category(run, name: str) -> str:
    if name in run.upper_bounds:
        return "Upper bound"
    kind = run.kinds.get(name, "")
    return "Static" if kind in _STATIC else "Manual" if kind in _MANUAL else "Dynamic"


@dataclass
class Cell:
    metric: str
    text: str
    value: float | None
    lo: float | None
    hi: float | None


@dataclass
class Row:
    name: str
    category: str
    is_baseline: bool
    upper_bound: bool
    cells: list[Cell]
    verdict: str


def rows(run) -> list[Row]:
    out = []
    for name in run.policies:
        s = run.summary[name]
        cells = []
        for metric, _ in HEADLINE:
            m = s[metric]
            paired = BY_NAME[metric].section == "paired"
            text = "—" if paired and name == run.baseline else fmt_named(s, metric)
            cells.append(Cell(metric, text, m["mean"], *m["ci95"]))
        out.append(Row(name, category(run, name), name == run.baseline, name in run.upper_bounds, cells,
                       verdict(run, name)))
    return out


def _sign(metric: dict) -> int:
    """+1 or -1 when a paired difference is clearly above or below zero (its CI excludes
    zero; with one replication, the mean's sign), else 0."""
    mean, (lo, hi) = metric["mean"], metric["ci95"]
    if mean is None:
        return 0
    if lo is None:
        return (mean > 0) - (mean < 0)
    return 1 if lo > 0 else -1 if hi < 0 else 0


_COST = {1: "Cheaper", -1: "More expensive", 0: "No clear cost difference"}
_QUALITY = {1: "better", -1: "worse", 0: "no clear difference in"}


def verdict(run, name: str) -> str:
    s, b = run.summary[name], run.summary[run.baseline]
    availability = fmt_named(s, "success_rate", with_ci=False)
    if name == run.baseline:
        return (f"The baseline: {fmt_named(s, 'cost_per_1k_requests_usd', with_ci=False)} per 1k requests, "
                f"quality {fmt_named(s, 'mean_quality', with_ci=False)}, availability {availability}.")
    savings, delta = s["savings_vs_baseline"], s["quality_delta_vs_baseline"]
    sentence = (f"{'Not deployable (it sees the ground truth); for scale: ' if name in run.upper_bounds else ''}"
                f"{_COST[_sign(savings)]} than {run.baseline} (savings {fmt_named(s, 'savings_vs_baseline')}), "
                f"{_QUALITY[_sign(delta)]} quality (Δ {fmt_named(s, 'quality_delta_vs_baseline')}), "
                f"availability {availability} vs {fmt_named(b, 'success_rate', with_ci=False)}")
    if s["fault_success_rate"]["mean"] is not None and b["fault_success_rate"]["mean"] is not None:
        sentence += (f" ({fmt_named(s, 'fault_success_rate', with_ci=False)} vs "
                     f"{fmt_named(b, 'fault_success_rate', with_ci=False)} during faults)")
    return sentence + "."
