"""Every per-run metric of one (policy, replication) run, from its records: the metrics
declared in ``registry.py`` (their definitions are also in docs/metrics.md); ``metrics/stats.py``
combines replications."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.core.outcomes import REQUEST_OK
from sim.core.recorder import RunRecorder, RunTotals


@dataclass
class RunColumns:
    """What a finished run's metrics read: the columns kept whole, by request number, and
    the totals of the others."""

    status: np.ndarray
    latency: np.ndarray
    decision_us: np.ndarray
    policy_error: np.ndarray  # bool
    totals: RunTotals


def run_columns(rec: RunRecorder, n_requests: int) -> RunColumns:
    if rec.n_requests != n_requests or rec.finished != n_requests or len(rec.d_us) != n_requests:
        raise RuntimeError(f"run ended with {rec.finished} of {n_requests} requests recorded")
    if rec.folded != n_requests:
        raise RuntimeError(f"run ended with {rec.folded} of {n_requests} requests written and summed")
    policy_error = np.zeros(n_requests, dtype=bool)
    policy_error[list(rec.d_error)] = True
    # Views of the recorder's buffers, not copies (np.frombuffer): it lives as long as they do.
    return RunColumns(status=np.frombuffer(rec.r_status, dtype=np.int8),
                      latency=np.frombuffer(rec.r_latency, dtype=float),
                      decision_us=np.frombuffer(rec.d_us, dtype=float), policy_error=policy_error,
                      totals=rec.totals)



def _percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """The qs-percentiles of ``values``, which are reordered in place (pass a copy you own:
    ten million latencies copied once more would be another 80 MB at the run's peak)."""
    if not len(values):
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(values, qs, overwrite_input=True)]


def run_metrics(cols: RunColumns, workload_codes: np.ndarray, slo_by_code: np.ndarray) -> dict[str, float]:
    """Every per-run metric (docs/metrics.md). ``slo_by_code``: SLO seconds per workload code, inf for none."""
    n = len(cols.status)
    ok = cols.status == REQUEST_OK
    latency_p50, latency_p95, latency_p99 = _percentiles(cols.latency[ok], (50, 95, 99))  # [ok]: a copy
    decision_p50, decision_p99 = _percentiles(cols.decision_us.copy(), (50, 99))
    within_slo = 0  # workload by workload: a per-request array of SLOs would be 80 MB a ten million requests
    for code, slo in enumerate(slo_by_code):
        served = ok & (workload_codes == code)
        within_slo += int(served.sum() if slo == math.inf else (served & (cols.latency <= slo)).sum())
    totals = cols.totals
    cost = math.fsum(totals.cost_usd)
    return {
        "requests": float(n),
        "success_rate": float(ok.mean()),
        "cost_usd": cost,
        "cost_per_1k_requests_usd": cost / n * 1000.0,
        # Failed requests cost little or nothing: per success, failing cannot look cheap.
        "cost_per_1k_successes_usd": cost / ok.sum() * 1000.0 if ok.any() else float("nan"),
        "mean_quality": math.fsum(totals.quality) / n,
        # Failed requests have quality 0: the sum over answers is the sum over all.
        "answered_quality": math.fsum(totals.quality) / ok.sum() if ok.any() else float("nan"),
        "latency_p50_s": latency_p50,
        "latency_p95_s": latency_p95,
        "latency_p99_s": latency_p99,
        "fallback_rate": totals.fallbacks / n,
        "escalation_rate": totals.escalations / n,
        "attempts_per_request": totals.attempts / n,
        "slo_attainment": within_slo / n,
        "decision_us_p50": decision_p50,
        "decision_us_p99": decision_p99,
        "carbon_g": math.fsum(totals.carbon_g),
        "policy_error_rate": float(cols.policy_error.mean()),
    }
