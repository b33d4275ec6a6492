"""report.md: the comparison table, figures and method, for a pull request."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined

from .. import __version__
from .format import fmt_metric, policy_label
from .notes import run_warnings

_ENV = Environment(loader=PackageLoader("sim.report", "templates"), undefined=StrictUndefined,
                   keep_trailing_newline=True, trim_blocks=False, lstrip_blocks=False)


def table_rows(result) -> list[dict]:
    rows = []
    for name in result.policies:
        s = result.summary[name]
        rows.append({
            "name": policy_label(result, name),
            "cost": fmt_metric(s["cost_usd"], "usd"),
            "cost_1k": fmt_metric(s["cost_per_1k_requests_usd"], "usd"),
            "savings": "—" if name == result.baseline else fmt_metric(s["savings_vs_baseline"], "pct"),
            "quality": fmt_metric(s["mean_quality"], "ratio"),
            "quality_delta": "—" if name == result.baseline else fmt_metric(s["quality_delta_vs_baseline"], "delta"),
            "success": fmt_metric(s["success_rate"], "pct"),
            "p95": fmt_metric(s["latency_p95_s"], "seconds"),
            "fallback": fmt_metric(s["fallback_rate"], "pct"),
        })
    return rows


def resilience_rows(result) -> list[dict]:
    rows = []
    for name in result.policies:
        s = result.summary[name]
        rows.append({
            "name": policy_label(result, name),
            "fault_success": fmt_metric(s["fault_success_rate"], "pct"),
            "failed": fmt_metric(s["failed_in_faults"], "count"),
            "ttf": fmt_metric(s["time_to_failover_s"], "seconds"),
            "extra": fmt_metric(s["extra_latency_in_faults_s"], "seconds"),
            "attempts": fmt_metric(s["attempts_per_request"], "ratio"),
            "limited": fmt_metric(s["rate_limited_share"], "pct"),
            "hedge": fmt_metric(s["hedge_cost_share"], "pct"),
            "breaker": fmt_metric(s["breaker_open_s"], "seconds"),
            "burn": fmt_metric(s["error_budget_burn"], "ratio"),
        })
    return rows


def comparison_tables(result) -> list[dict]:
    """One table per two-model comparison: each router's RouteLLM and RouterBench metrics."""
    tables = []
    for c in result.comparisons:
        rows = [{"name": policy_label(result, name), "share": fmt_metric(m["strong_call_share"], "pct"),
                 "pgr": fmt_metric(m["pgr"], "ratio"), "apgr": fmt_metric(m["apgr"], "ratio"),
                 "cpt50": fmt_metric(m["cpt_50"], "pct"), "cpt80": fmt_metric(m["cpt_80"], "pct"),
                 "aiq": fmt_metric(m["aiq"], "ratio")} for name, m in c["routers"].items()]
        tables.append({"strong": c["strong_model"], "weak": c["weak_model"], "rows": rows,
                       "mixing_aiq": fmt_metric(c["random_mix_aiq"], "ratio")})
    return tables


def fault_summary(result) -> str:
    """The faults, in words: scheduled ones listed, random ones counted."""
    scheduled = [f"{kind.replace('_', ' ')} of {target} {start:g}–{end:g} s" for start, end, kind, target
                 in result.fault_windows if kind != "incident"]
    incidents = sum(1 for w in result.fault_windows if w[2] == "incident")
    parts = scheduled + ([f"{incidents} random incident(s) over all replications"] if incidents else [])
    return "; ".join(parts)


def render_markdown(result, resolved: dict, figures: dict[str, str]) -> str:
    return _ENV.get_template("report.md.j2").render(
        scenario=result.scenario, description=resolved.get("description"), seed=result.seed,
        replications=result.replications, requests=_requests(result), baseline=result.baseline,
        rows=table_rows(result), warnings=run_warnings(result), figures=figures, version=__version__,
        resilience=resilience_rows(result), faults=fault_summary(result), upper_bounds=result.upper_bounds,
        comparisons=comparison_tables(result))


def _requests(result) -> str:
    sizes = result.requests_per_replication
    return f"{sizes[0]:,}" if len(set(sizes)) == 1 else f"{min(sizes):,}–{max(sizes):,}"
