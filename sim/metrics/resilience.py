"""Resilience metrics of one run: what faults did to the traffic, and what the
defences cost. Declared and defined in metric_registry.py."""

from __future__ import annotations

import math

import numpy as np

from .registry import names
from sim.core.outcomes import REQUEST_OK
from .per_run import RunColumns

#: Per-run resilience metrics (declared in metric_registry.py), in summary order.
RESILIENCE_METRICS = names("resilience")
FAILOVER_WINDOW_S = 30.0  # look-ahead of the success rate that defines recovery
FAILOVER_TARGET = 0.99


def time_to_failover(arrival: np.ndarray, ok: np.ndarray, start: float, end: float) -> tuple[float, bool]:
    """(seconds, recovered): from ``start`` to the first arrival from which the success rate
    of the requests arriving in the next ``FAILOVER_WINDOW_S`` is at least 99%, 0 when it is
    so from the fault's first request; ``(end − start, False)`` when that never happens during
    the fault. (NaN, False) without traffic in the fault.

    The look-ahead stays inside the fault: an arrival is a candidate only if its whole
    look-ahead is (a fault shorter than the look-ahead has one, its first arrival, looking to
    the end). Otherwise the requests arriving after the fault ended, answered again, would
    count as a recovery in its last seconds.
    """
    lo, hi = np.searchsorted(arrival, [start, end])
    if lo == hi:
        return float("nan"), False  # no traffic during the fault
    horizon = min(FAILOVER_WINDOW_S, end - start)
    last = max(lo + 1, int(np.searchsorted(arrival, end - horizon, side="right")))  # candidates lo..last-1
    ends = np.minimum(np.searchsorted(arrival, arrival[lo:last] + horizon), hi)
    ok_before = np.r_[0, np.cumsum(ok)]
    counts = ends - np.arange(lo, last)
    rates = (ok_before[ends] - ok_before[lo:last]) / counts
    recovered = np.flatnonzero(rates >= FAILOVER_TARGET)
    if not len(recovered):
        return end - start, False
    if recovered[0] == 0:
        return 0.0, True  # the traffic never noticed
    return float(arrival[lo + recovered[0]] - start), True


def fault_rows(cols: RunColumns, arrival: np.ndarray, windows: list[tuple[float, float, str, str]]) -> list[dict]:
    """One row per fault window: what happened to the requests that arrived in it."""
    ok = cols.status == REQUEST_OK
    rows = []
    outside = ok.copy()
    for start, end, _, _ in windows:
        outside &= ~((arrival >= start) & (arrival < end))
    calm_latency = cols.latency[outside].mean() if outside.any() else float("nan")
    for start, end, kind, target in windows:
        inside = (arrival >= start) & (arrival < end)
        n = int(inside.sum())
        served = inside & ok
        rows.append({
            "start_s": start, "end_s": end, "kind": kind, "target": target, "requests": n,
            "failed": int(n - served.sum()),
            "success_rate": float(served.sum() / n) if n else float("nan"),
            "extra_latency_s": float(cols.latency[served].mean() - calm_latency) if served.any() else float("nan"),
        })
        rows[-1]["time_to_failover_s"], rows[-1]["recovered"] = time_to_failover(arrival, ok, start, end)
    return rows


def resilience_metrics(cols: RunColumns, arrival: np.ndarray, rows: list[dict],
                       breaker_open_s: float, availability_target: float | None) -> dict[str, float]:
    ok = cols.status == REQUEST_OK
    in_fault = np.zeros(len(arrival), dtype=bool)
    for row in rows:
        in_fault |= (arrival >= row["start_s"]) & (arrival < row["end_s"])
    totals = cols.totals
    total_cost = math.fsum(totals.attempt_cost)
    measured = [r for r in rows if not np.isnan(r["time_to_failover_s"])]
    failovers = [r["time_to_failover_s"] for r in measured]
    extra = [r["extra_latency_s"] for r in rows if not np.isnan(r["extra_latency_s"])]
    nan = float("nan")
    return {
        "fault_success_rate": float(ok[in_fault].mean()) if in_fault.any() else nan,
        "failed_in_faults": float((in_fault & ~ok).sum()) if rows else nan,
        "extra_latency_in_faults_s": float(np.mean(extra)) if extra else nan,
        "time_to_failover_s": float(np.mean(failovers)) if failovers else nan,
        "never_recovered_share": float(np.mean([not r["recovered"] for r in measured])) if measured else nan,
        "rate_limited_share": totals.rate_limited / totals.attempt_count if totals.attempt_count else 0.0,
        "hedge_cost_share": math.fsum(totals.cancelled_cost) / total_cost if total_cost > 0 else 0.0,
        "breaker_open_s": breaker_open_s,
        "error_budget_burn": (float((1.0 - ok.mean()) / (1.0 - availability_target))
                              if availability_target is not None else nan),
    }
