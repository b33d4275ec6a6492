"""Things about a run the reader must not miss, for every report format."""

from __future__ import annotations


def run_warnings(result) -> list[str]:
    out = []
    for name in result.policies:
        rate = result.summary[name]["policy_error_rate"]["mean"] or 0.0
        if rate > 0:
            out.append(f"{name}: the policy failed on {rate:.2%} of requests (see policy_error in decisions.parquet); "
                       "those went to router.default_model or were rejected.")
    return out
