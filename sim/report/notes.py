"""Things about a run the reader must not miss, for every report format."""

from __future__ import annotations


def run_warnings(result) -> list[str]:
    out = []
    budget_us = result.decision_budget_ms * 1000.0
    for name in result.policies:
        p99 = result.summary[name]["decision_us_p99"]["mean"]
        if p99 is not None and p99 > budget_us:
            out.append(f"{name}: routing takes {p99 / 1000:.1f} ms (wall clock) at the 99th percentile, over the "
                       f"{result.decision_budget_ms:g} ms budget (slo.decision_p99_ms).")
    for name in result.policies:
        rate = result.summary[name]["policy_error_rate"]["mean"] or 0.0
        if rate > 0:
            out.append(f"{name}: the policy failed on {rate:.2%} of requests (see policy_error in decisions.parquet); "
                       "those went to router.default_model or were rejected.")
    return out
