"""The headline: the question routesim exists to answer — static vs manual vs
dynamic routing — in this run's numbers, with a one-sentence verdict per policy
(verdict.py).

Shared by report.md and report.html so both say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.metrics.registry import BY_NAME
from .format import fmt_named, usd_decimals_of
from .verdict import verdict

#: (metric, column title) of the headline table, in order; formats follow the registry's units.
#: Cost and quality each come per request and per answered request: they disagree when two
#: policies answer different shares of the traffic (verdict.py says which decides).
HEADLINE = (
    ("cost_per_1k_requests_usd", "Cost / 1k req"),
    ("cost_per_1k_successes_usd", "Cost / 1k answered"),
    ("savings_vs_baseline", "Savings per request"),
    ("savings_per_answer_vs_baseline", "Savings per answer"),
    ("success_rate", "Availability"),
    ("answered_quality", "Quality of answers"),
    ("mean_quality", "Quality (all requests)"),
    ("quality_delta_vs_baseline", "Quality Δ"),
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


def failover_text(s: dict) -> str:
    """Time to failover of a policy's summary in words (``failover_words``)."""
    return failover_words(fmt_named(s, "time_to_failover_s"), s["never_recovered_share"]["mean"])


def failover_words(seconds: str, never: float | None) -> str:
    """Time to failover as shown: "never" when the traffic recovered in no fault window (the
    number is then the windows' length, kept in the data attributes), else ``seconds`` with the
    share of windows that never recovered (the mean includes their length); "no faults" when
    there was no fault to recover from."""
    if never is None:
        return "no faults"
    if never == 1.0:
        return "never"
    return seconds if never == 0.0 else f"{seconds} ({never:.0%} of faults never)"


def rows(run, max_quality_drop: float | None = None) -> list[Row]:
    """The headline table; ``max_quality_drop``: the quality gate the verdicts' workload flags use."""
    out = []
    decimals = {metric: usd_decimals_of([run.summary[n] for n in run.policies], metric) for metric, _ in HEADLINE}
    for name in run.policies:
        s = run.summary[name]
        cells = []
        for metric, _ in HEADLINE:
            m = s[metric]
            paired = BY_NAME[metric].section == "paired"
            if paired and name == run.baseline:
                text = "—"
            elif metric == "time_to_failover_s":
                text = failover_text(s)
            else:
                text = fmt_named(s, metric, usd_decimals=decimals[metric])
            cells.append(Cell(metric, text, m["mean"], *m["ci95"]))
        out.append(Row(name, category(run, name), name == run.baseline, name in run.upper_bounds, cells,
                       verdict(run, name, max_quality_drop)))
    return out
