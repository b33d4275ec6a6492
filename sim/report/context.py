"""What report.md and report.html show, computed once from a run's ``RunData``.

Both templates render the same context, so the Markdown for a pull request and
the HTML for the approvers never disagree.
"""

from __future__ import annotations

import pandas as pd

from sim import __version__
from sim.metrics.registry import BY_NAME
from . import headline
from .decision import decision
from .defence_costs import defence_regressions
from .format import fmt_named, fmt_value, policy_label
from .notes import run_warnings

_STATUS_WORDS = {"ok": "answered", "failed": "failed", "rejected": "rejected"}


def resilience_rows(run) -> list[dict]:
    rows = []
    for name in run.policies:
        s = run.summary[name]
        rows.append({
            "name": policy_label(run, name),
            "fault_success": fmt_named(s, "fault_success_rate"),
            "failed": fmt_named(s, "failed_in_faults"),
            "ttf": headline.failover_text(s),
            "ttf_s": s["time_to_failover_s"]["mean"],
            "extra": fmt_named(s, "extra_latency_in_faults_s"),
            "attempts": fmt_named(s, "attempts_per_request"),
            "limited": fmt_named(s, "rate_limited_share"),
            "hedge": fmt_named(s, "hedge_cost_share"),
            "breaker": fmt_named(s, "breaker_open_s"),
            "burn": fmt_named(s, "error_budget_burn"),
        })
    return rows


def fault_rows(run) -> list[dict]:
    """Per scheduled fault window and policy, means over replications; random incidents pooled per policy."""
    faults = run.faults
    if faults is None or faults.empty:
        return []
    faults = faults.assign(window=[f"{k.replace('_', ' ')} of {t} {s:g}–{e:g} s" if k != "incident" else
                                   "random incidents (all)" for k, t, s, e in
                                   zip(faults.kind, faults.target, faults.start_s, faults.end_s)])
    table = faults.groupby(["window", "policy"], sort=False).agg(
        windows=("requests", "size"), requests=("requests", "mean"), failed=("failed", "mean"),
        success=("success_rate", "mean"), extra=("extra_latency_s", "mean"), ttf=("time_to_failover_s", "mean"),
        recovered=("recovered", "mean"))
    rows = []
    for (window, policy), r in table.iterrows():
        rows.append({"window": window, "name": policy_label(run, policy), "windows": int(r.windows),
                     "requests": f"{r.requests:,.1f}", "failed": f"{r.failed:,.1f}", "success": fmt_value(r.success, "pct"),
                     "extra": fmt_value(r.extra, "seconds"), "ttf_s": r.ttf,
                     "ttf": headline.failover_words(fmt_value(r.ttf, "seconds"), 1.0 - r.recovered)})
    return rows


def workload_rows(run, max_quality_drop: float | None) -> list[dict]:
    """Per policy and workload, with the quality's change from the baseline's on that workload
    (flagged when it falls by more than the quality gate)."""
    rows = []
    base = run.series[run.baseline].workloads
    for name in run.policies:
        for workload, r in run.series[name].workloads.iterrows():
            delta = r.mean_quality - base.mean_quality[workload] if workload in base.index else None
            rows.append({"name": policy_label(run, name), "workload": workload, "requests": f"{r.requests:,.0f}",
                         "success": fmt_value(r.success_rate, "pct"), "quality": f"{r.mean_quality:.4f}",
                         "delta": "—" if name == run.baseline or delta is None else f"{delta:+.4f}",
                         "flagged": (name != run.baseline and delta is not None and max_quality_drop is not None
                                     and -delta > max_quality_drop),
                         "cost_1k": f"${r.cost_per_1k_usd:,.4f}"})
    return rows


def decision_rows(run) -> list[dict]:
    rows = []
    for r in run.decisions.itertuples():
        reason = r.reason if pd.isna(r.policy_error) else f"policy error: {r.policy_error}"
        rows.append({"name": policy_label(run, r.policy), "request": r.request_id, "workload": r.workload,
                     "candidates": r.candidates.replace(">", " → "), "served": r.model or "—",
                     "outcome": f"{_STATUS_WORDS.get(r.status, r.status)} after {r.attempts} attempt(s)",
                     "cost": f"${r.cost_usd:.6f}", "latency": fmt_value(r.latency_s, "seconds"), "reason": "" if pd.isna(reason) else reason})
    return rows


def comparison_tables(run) -> list[dict]:
    """One table per two-model comparison: each router's RouteLLM and RouterBench metrics."""
    tables = []
    for c in run.comparisons:
        rows = [{"name": policy_label(run, name), "share": fmt_named(m, "strong_call_share"),
                 "pgr": fmt_named(m, "pgr"), "apgr": fmt_named(m, "apgr"),
                 "cpt50": fmt_named(m, "cpt_50"), "cpt80": fmt_named(m, "cpt_80"),
                 "aiq": fmt_named(m, "aiq")} for name, m in c["routers"].items()]
        tables.append({"strong": c["strong_model"], "weak": c["weak_model"], "rows": rows,
                       "mixing_aiq": fmt_named(c, "random_mix_aiq")})
    return tables


def fault_summary(run) -> str:
    """The faults, in words: scheduled ones listed, random ones counted."""
    scheduled = [f"{kind.replace('_', ' ')} of {target} {start:g}–{end:g} s" for start, end, kind, target
                 in run.fault_windows if kind != "incident"]
    incidents = sum(1 for w in run.fault_windows if w[2] == "incident")
    parts = scheduled + ([f"{incidents} random incident(s) over all replications"] if incidents else [])
    return "; ".join(parts)


def failovers_without_faults(run) -> str:
    """With no fault scheduled or drawn, who still failed over (the models' own random errors,
    their ``error_rate``): "dynamic on 1.06% of requests; ..." or "" when no request did."""
    moved = [(name, run.summary[name]["fallback_rate"]["mean"]) for name in run.policies]
    return "; ".join(f"{policy_label(run, name)} on {fmt_value(share, 'pct')} of requests"
                     for name, share in moved if share)


def knowledge_rows(run) -> list[dict]:
    """What each policy knew (the method section): belief source and noise, difficulty signal, feedback."""
    rows = []
    for name in run.policies:
        known = run.knowledge.get(name)
        if known:
            rows.append({"name": policy_label(run, name), "quality": known["quality"],
                         "difficulty": known["difficulty"], "feedback": known["feedback"]})
    return rows


def bound_notes(run) -> list[dict]:
    """Why each upper bound is one: the ground truth it was given."""
    return [{"name": name, "given": run.knowledge.get(name, {}).get("exact_truth")
             or "ground truth no production router has"} for name in run.upper_bounds]


def glossary(run) -> list[dict]:
    """Every metric the report shows, with its definition from the registry: a forwarded
    report.html must explain itself without docs/metrics.md."""
    labels = {**RESILIENCE_LABELS, **dict(headline.HEADLINE)}  # a metric in both: the headline's title
    shown = [metric for metric, _ in headline.HEADLINE] + (list(RESILIENCE_SHOWN) if fault_summary(run) else [])
    if run.comparisons:
        shown += ["strong_call_share", "pgr", "apgr", "cpt_50", "cpt_80", "aiq", "random_mix_aiq"]
    out = [glossary_entry(name, labels.get(name, name), plain_definition(BY_NAME[name].definition))
           for name in dict.fromkeys(shown)]
    return out + [glossary_entry("pp", "pp", PERCENTAGE_POINTS)]


#: The unit the verdicts give availability differences in.
PERCENTAGE_POINTS = ("percentage points: the difference of two percentages, as in availability 99.50% against "
                     "98.50%, −1.00 pp (a relative change would be −1.005%)")


def glossary_entry(name: str, label: str, definition: str) -> dict:
    """A glossary entry under the label the tables show (the metric's name beside it, as in
    summary.json); for HTML, the text between backticks is code (odd pieces of the split)."""
    return {"name": name, "label": label, "definition": definition,
            "pieces": [(piece, k % 2 == 1) for k, piece in enumerate(definition.split("`"))]}


def plain_definition(markdown: str) -> str:
    """A registry definition without Markdown's escapes, for either template."""
    return markdown.replace("\\|", "|")


#: The resilience table's metrics, in its column order.
RESILIENCE_SHOWN = ("fault_success_rate", "failed_in_faults", "time_to_failover_s", "never_recovered_share",
                    "extra_latency_in_faults_s", "attempts_per_request", "rate_limited_share", "hedge_cost_share",
                    "breaker_open_s", "error_budget_burn")
#: The resilience table's columns (metric, title), in order: the templates' headers and the glossary's labels.
RESILIENCE_COLUMNS = (("fault_success_rate", "Success during faults"), ("failed_in_faults", "Failed during faults"),
                      ("time_to_failover_s", "Time to failover (s)"),
                      ("extra_latency_in_faults_s", "Extra latency in faults (s)"),
                      ("attempts_per_request", "Attempts / request"), ("rate_limited_share", "429 share"),
                      ("hedge_cost_share", "Hedge cost share"), ("breaker_open_s", "Breaker open (s)"),
                      ("error_budget_burn", "Error-budget burn"))
#: Every resilience metric's label (never_recovered_share is shown inside the time to failover).
RESILIENCE_LABELS = dict(RESILIENCE_COLUMNS) | {"never_recovered_share": "Time to failover: share of faults never"}


def backtest_section(folder) -> dict | None:
    """The backtest's figures (backtest.json), shown first: how well the simulation of production
    matched its logs decides how far the comparison after it can be trusted."""
    from sim.verdicts.backtest import read_backtest
    from .format import backtest_cells

    record = read_backtest(folder)
    if record is None:
        return None
    return {"policy": record["policy"], "since": record["since"], "until": record["until"],
            "requests": f"{record['logged_requests']:,}", "matched": record["matched"],
            "rows": backtest_cells(record), "missed": [r["figure"] for r in record["rows"] if r["verdict"] == "miss"],
            "noisy": [r["figure"] for r in record["rows"] if r["verdict"] == "noisy"]}


def report_context(run, figures: dict[str, str]) -> dict:
    sizes = run.requests_per_replication
    decided = decision(run)
    return {
        "scenario": run.scenario, "description": run.description, "seed": run.seed,
        "replications": run.replications, "baseline": run.baseline, "version": __version__,
        "requests": f"{sizes[0]:,}" if len(set(sizes)) == 1 else f"{min(sizes):,}–{max(sizes):,}",
        "models": len(run.resolved.get("models", {})), "horizon": f"{run.horizon_s:,.0f}",
        "decision": decided,
        "backtest": backtest_section(run.folder),
        "headline_columns": [title for _, title in headline.HEADLINE],
        "headline": headline.rows(run, decided.max_quality_drop),
        "upper_bounds": run.upper_bounds, "bound_notes": bound_notes(run), "knowledge": knowledge_rows(run),
        "resilience": resilience_rows(run), "faults": fault_summary(run),
        "resilience_titles": [title for _, title in RESILIENCE_COLUMNS],
        "failovers_without_faults": failovers_without_faults(run),
        "resolved_yaml": (run.folder / "scenario.resolved.yaml").read_text(encoding="utf-8"),
        "fault_rows": fault_rows(run), "workload_rows": workload_rows(run, decided.max_quality_drop),
        "max_quality_drop": decided.max_quality_drop, "decisions": decision_rows(run),
        "comparisons": comparison_tables(run), "warnings": run_warnings(run) + defence_regressions(run),
        "figures": figures,
        "glossary": glossary(run),
    }
