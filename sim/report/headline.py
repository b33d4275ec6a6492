"""The headline: the question routesim exists to answer — static vs manual vs
dynamic routing — in this run's numbers, with a one-sentence verdict per policy.

Shared by report.md and report.html so both say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .format import fmt_metric

#: (metric, column title, format) of the headline table, in order.
HEADLINE = (
    ("cost_usd", "Cost (USD)", "usd"),
    ("cost_per_1k_requests_usd", "Cost / 1k req", "usd"),
    ("savings_vs_baseline", "Savings vs baseline", "pct"),
    ("mean_quality", "Quality", "ratio"),
    ("quality_delta_vs_baseline", "Quality Δ", "delta"),
    ("success_rate", "Availability", "pct"),
    ("fault_success_rate", "Availability in faults", "pct"),
    ("latency_p95_s", "p95 latency (s)", "seconds"),
    ("latency_p99_s", "p99 latency (s)", "seconds"),
    ("time_to_failover_s", "Time to failover (s)", "seconds"),
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
        for metric, _, kind in HEADLINE:
            m = s[metric]
            paired = metric in ("savings_vs_baseline", "quality_delta_vs_baseline")
            text = "—" if paired and name == run.baseline else fmt_metric(m, kind)
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
    availability = fmt_metric(s["success_rate"], "pct", with_ci=False)
    if name == run.baseline:
        return (f"The baseline: {fmt_metric(s['cost_per_1k_requests_usd'], 'usd', with_ci=False)} per 1k requests, "
                f"quality {fmt_metric(s['mean_quality'], 'ratio', with_ci=False)}, availability {availability}.")
    savings, delta = s["savings_vs_baseline"], s["quality_delta_vs_baseline"]
    sentence = (f"{'Not deployable (it sees the ground truth); for scale: ' if name in run.upper_bounds else ''}"
                f"{_COST[_sign(savings)]} than {run.baseline} (savings {fmt_metric(savings, 'pct')}), "
                f"{_QUALITY[_sign(delta)]} quality (Δ {fmt_metric(delta, 'delta')}), "
                f"availability {availability} vs {fmt_metric(b['success_rate'], 'pct', with_ci=False)}")
    if s["fault_success_rate"]["mean"] is not None and b["fault_success_rate"]["mean"] is not None:
        sentence += (f" ({fmt_metric(s['fault_success_rate'], 'pct', with_ci=False)} vs "
                     f"{fmt_metric(b['fault_success_rate'], 'pct', with_ci=False)} during faults)")
    return sentence + "."
