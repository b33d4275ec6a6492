"""Every metric routesim reports, declared once: name, unit, which direction is
better, how it combines over replications (a mean with its t-interval, or the
mean of per-replication differences to the baseline), the range its interval is
clipped to, and its one-paragraph definition.

Everything that shows or checks a metric reads it from here: the summary's order
and intervals (``metrics/stats.py``), the gate's checks (``verdicts/gate.py``), the terminal
table and the report (their formats come from the unit), and docs/metrics.md,
whose tables are these definitions (``python -m sim.metrics.registry`` prints
them; a test keeps the two equal). The per-run values themselves are computed
from the request and attempt columns in ``metrics.run_metrics`` and
``metrics.resilience.resilience_metrics``, two vectorised passes, whose keys a test
checks against this registry; a new metric is one entry here plus its line
there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

SHARE = (0.0, 1.0)
NON_NEGATIVE = (0.0, math.inf)


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # how it is shown: count, pct (a share shown in %), usd, ratio, delta, seconds, us, grams
    better: str  # "higher", "lower", or "" where neither is a goal (a description of the traffic)
    section: str  # run, resilience, paired or research: where it is computed and documented
    definition: str  # Markdown, as in docs/metrics.md
    bounds: tuple[float, float] | None = None  # the interval over replications is clipped to this range
    # Paired metrics: the value of one replication from (policy's run, baseline's run) metrics.
    paired: Callable[[dict, dict], float] | None = None


def _savings(run: dict, base: dict) -> float:
    return 1.0 - run["cost_usd"] / base["cost_usd"] if base["cost_usd"] > 0 else math.nan


def _quality_delta(run: dict, base: dict) -> float:
    return run["mean_quality"] - base["mean_quality"]


def _savings_per_answer(run: dict, base: dict) -> float:
    mine, theirs = run["cost_per_1k_successes_usd"], base["cost_per_1k_successes_usd"]
    return 1.0 - mine / theirs if theirs > 0 and math.isfinite(mine) else math.nan


def _difference(metric: str) -> Callable[[dict, dict], float]:
    """The paired rule ``metric(policy) − metric(baseline)``, per replication."""
    return lambda run, base: run[metric] - base[metric]


def _change(metric: str) -> Callable[[dict, dict], float]:
    """The paired rule ``metric(policy) / metric(baseline) − 1``, per replication."""
    return lambda run, base: run[metric] / base[metric] - 1.0 if base[metric] > 0 else math.nan


# Shared wording of definitions that differ only in their percentile.
_P = "percentile (linear interpolation) of Lᵢ over i ∈ OK"
_DECISION = ("percentile of the wall-clock time of each `route()` call, µs (what a request waits; the CPU time "
             "is `decision_cpu_us` in decisions.parquet, measured for one request in 16)")
_CPT = "call-performance threshold: the smallest αₖ with PGR(αₖ) ≥"
METRICS: tuple[Metric, ...] = (
    # ------------------------------------------------------------------ per run, in summary order
    Metric("requests", "count", "", "run", "N"),
    Metric("success_rate", "pct", "higher", "run", "\\|OK\\| / N", SHARE),
    Metric("cost_usd", "usd", "lower", "run", "Σ cᵢ (every attempt, including abandoned ones)", NON_NEGATIVE),
    Metric("cost_per_1k_requests_usd", "usd", "lower", "run", "1000 × Σ cᵢ / N", NON_NEGATIVE),
    Metric("cost_per_1k_successes_usd", "usd", "lower", "run",
           "1000 × Σ cᵢ / \\|OK\\|: what an answer costs; failed requests cost little or nothing, so a policy that "
           "fails during an outage looks cheap per request but not per success", NON_NEGATIVE),
    Metric("savings_vs_baseline", "pct", "higher", "paired",
           "1 − cost_usd(policy) / cost_usd(baseline), per replication", paired=_savings),
    Metric("mean_quality", "ratio", "higher", "run", "Σ qᵢ / N (failed requests count 0)", SHARE),
    Metric("answered_quality", "ratio", "higher", "run",
           "Σ qᵢ over i ∈ OK / \\|OK\\|: the quality of the answers given, without the failures that `mean_quality` "
           "counts as 0 (so `mean_quality` = `success_rate` × `answered_quality`)", SHARE),
    Metric("quality_delta_vs_baseline", "delta", "higher", "paired",
           "mean_quality(policy) − mean_quality(baseline), per replication", paired=_quality_delta),
    Metric("savings_per_answer_vs_baseline", "pct", "higher", "paired",
           "1 − cost_per_1k_successes_usd(policy) / cost_per_1k_successes_usd(baseline), per replication: savings "
           "per answered request, which decide when the two answer different shares of the traffic",
           paired=_savings_per_answer),
    Metric("availability_delta_vs_baseline", "delta", "higher", "paired",
           "success_rate(policy) − success_rate(baseline), per replication", paired=_difference("success_rate")),
    Metric("answered_quality_delta_vs_baseline", "delta", "higher", "paired",
           "answered_quality(policy) − answered_quality(baseline), per replication",
           paired=_difference("answered_quality")),
    Metric("latency_p95_change_vs_baseline", "pct", "lower", "paired",
           "latency_p95_s(policy) / latency_p95_s(baseline) − 1, per replication", paired=_change("latency_p95_s")),
    Metric("latency_p99_change_vs_baseline", "pct", "lower", "paired",
           "latency_p99_s(policy) / latency_p99_s(baseline) − 1, per replication", paired=_change("latency_p99_s")),
    Metric("latency_p50_s", "seconds", "lower", "run", f"the 50th {_P}"),
    Metric("latency_p95_s", "seconds", "lower", "run", f"the 95th {_P}"),
    Metric("latency_p99_s", "seconds", "lower", "run", f"the 99th {_P}"),
    Metric("fallback_rate", "pct", "", "run",
           "share of requests that made attempts on more than one model (retries of the same model are not "
           "fallbacks; a cascade's escalations count)", SHARE),
    Metric("escalation_rate", "pct", "", "run",
           "share of requests whose cascade judge rejected at least one answer (0 for policies without a judge)",
           SHARE),
    Metric("attempts_per_request", "ratio", "lower", "run", "Σ aᵢ / N (rejected requests count 0)", NON_NEGATIVE),
    Metric("slo_attainment", "pct", "higher", "run", "share of requests with sᵢ = ok and Lᵢ ≤ SLO(wᵢ)", SHARE),
    Metric("decision_us_p50", "us", "lower", "run", f"the 50th {_DECISION}"),
    Metric("decision_us_p99", "us", "lower", "run", f"the 99th {_DECISION}"),
    Metric("carbon_g", "grams", "lower", "run",
           "Σ over charged attempts of (input + charged output tokens) × `carbon_g_per_mtok` / 10⁶ (0 for models "
           "without a figure)", NON_NEGATIVE),
    Metric("policy_error_rate", "pct", "lower", "run",
           "share of requests whose policy raised or returned nothing usable", SHARE),
    # ------------------------------------------------------------------ resilience, per run
    Metric("fault_success_rate", "pct", "higher", "resilience", "\\|OK ∩ F\\| / \\|F\\|: availability during faults",
           SHARE),
    Metric("failed_in_faults", "count", "lower", "resilience",
           "\\|F \\ OK\\|: requests that arrived during a fault and got no answer", NON_NEGATIVE),
    Metric("extra_latency_in_faults_s", "seconds", "lower", "resilience",
           "mean over windows of (mean Lᵢ of successful requests in the window − mean Lᵢ of successful requests "
           "outside every window): what an answer during a fault costs in time; negative when the fallback model "
           "answers faster than the usual one (or only the quick requests got through)"),
    Metric("time_to_failover_s", "seconds", "lower", "resilience",
           "mean over windows of: the time from the window's start to the first arrival from which the success "
           "rate of the requests arriving in the next 30 s (within the window) is ≥ 99%; the window's length when "
           "that never happens (the report then says \"never\"); 0 when it holds from the window's first request",
           NON_NEGATIVE),
    Metric("never_recovered_share", "pct", "lower", "resilience",
           "share of fault windows (with traffic) in which that recovery never happened", SHARE),
    Metric("rate_limited_share", "pct", "lower", "resilience", "share of attempts answered with a 429", SHARE),
    Metric("hedge_cost_share", "pct", "lower", "resilience",
           "cost of cancelled (losing hedge) attempts / `cost_usd`", SHARE),
    Metric("breaker_open_s", "seconds", "", "resilience",
           "total time the circuit breakers of all models spent open", NON_NEGATIVE),
    Metric("error_budget_burn", "ratio", "lower", "resilience",
           "(1 − `success_rate`) / (1 − `slo.availability`): 1 spends the error budget exactly at the allowed "
           "pace (`null` without `slo.availability`)", NON_NEGATIVE),
    # ------------------------------------------------------------------ two-model comparisons (research.py)
    Metric("strong_call_share", "pct", "", "research", "share of the router's requests answered by S"),
    Metric("pgr", "ratio", "higher", "research",
           "performance gap recovered at the router's own operating point: (Q(router) − Q(W)) / (Q(S) − Q(W)); "
           "`null` when Q(S) ≤ Q(W)"),
    Metric("apgr", "ratio", "higher", "research",
           "RouteLLM's average PGR: the area under PGR(αₖ) = (Q(k) − Q(0)) / (Q(N) − Q(0)) over α ∈ [0, 1] "
           "(trapezoids); 0.5 for random routing; `null` for routers without a score"),
    Metric("cpt_50", "pct", "lower", "research", f"{_CPT} 50%"),
    Metric("cpt_80", "pct", "lower", "research", f"{_CPT} 80%"),
    Metric("aiq", "ratio", "higher", "research",
           "RouterBench's AIQ: (1 / (c_max − c_min)) ∫ Q̃(c) dc over the points' cost range, where Q̃ is the "
           "non-decreasing convex hull of the (C, Q) points of W, S, the router's operating point and (for a scored "
           "router) its routing curve (1,001 evenly spaced points of it)"),
    Metric("random_mix_aiq", "ratio", "", "research",
           "per comparison: the AIQ of W and S alone, i.e. of sending a random share to each"),
)
BY_NAME = {m.name: m for m in METRICS}


def names(*sections: str) -> tuple[str, ...]:
    """Metric names of these sections, in registry order."""
    return tuple(m.name for m in METRICS if m.section in sections)


#: summary.json and summary.csv, in this order.
SUMMARY_METRICS = names("run", "paired", "resilience")


def doc_table(section: str) -> str:
    """The Markdown table of a section's definitions, as docs/metrics.md has it."""
    rows = ["| metric | definition |", "|---|---|"]
    rows += [f"| `{m.name}` | {m.definition} |" for m in METRICS if m.section == section]
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover - prints the tables to paste into docs/metrics.md
    for section in ("run", "resilience", "research", "paired"):
        print(f"<!-- {section} -->\n{doc_table(section)}\n")
