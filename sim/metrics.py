"""Per-request and per-attempt records, their Parquet tables, and per-run metrics.

Records go into per-column lists during a run (never a list of dicts) and become
Arrow tables at its end. ``run_metrics`` computes every per-run metric declared
in ``metric_registry.py`` (their definitions, also in docs/metrics.md); stats.py
combines replications.
"""

from __future__ import annotations

import json
import math
from array import array
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from .metric_registry import names

REQUEST_OK, REQUEST_FAILED, REQUEST_REJECTED = 0, 1, 2
STATUS_NAMES = ("ok", "failed", "rejected")
ATTEMPT_OK, ATTEMPT_ERROR, ATTEMPT_RATE_LIMITED, ATTEMPT_TIMEOUT, ATTEMPT_CONTEXT_OVERFLOW, ATTEMPT_CANCELLED = range(6)
OUTCOME_NAMES = ("ok", "error", "rate_limited", "timeout", "context_overflow", "cancelled")

#: Metrics of one (policy, replication) run (declared in metric_registry.py), and those
#: that compare a policy with the baseline in the same replication.
RUN_METRICS = names("run")
PAIRED_METRICS = names("paired")
_NAN = float("nan")
_MISSING = object()
REASON_CHUNK = 1 << 16  # reasons kept as Python objects before they are turned into text


class RunRecorder:
    """Column buffers for one (policy, replication) run.

    Numeric columns are ``array.array``s: appending is as cheap as to a list, but
    they hold raw 8-byte values instead of keeping a Python float alive per cell,
    so memory stays small and cache-friendly on million-request runs.
    """

    def __init__(self) -> None:
        # requests
        self.r_index = array("q")
        self.r_status = array("b")
        self.r_model = array("i")
        self.r_attempts = array("i")
        self.r_latency = array("d")
        self.r_ttft = array("d")  # NaN when no answer came
        self.r_cost = array("d")
        self.r_quality = array("d")
        self.r_carbon = array("d")
        self.r_fallback = array("b")
        self.r_escalated = array("b")
        # attempts
        self.a_index = array("q")
        self.a_attempt = array("i")
        self.a_model = array("i")
        self.a_start = array("d")
        self.a_end = array("d")
        self.a_outcome = array("b")
        self.a_cost = array("d")
        self.a_queued = array("d")
        self.a_verdict = array("b")  # a cascade judge's: 1 accepted, 0 rejected, -1 not judged
        self.a_judge_cost = array("d")
        # decisions (in arrival order, which is request order)
        self.d_us = array("d")  # wall-clock time of route()
        self.d_cpu_us = array("d")  # its CPU (thread) time
        self.d_latency: list[float] | None = None  # the modelled decision latency of every request, when drawn
        self.d_score = array("d")  # NaN where the policy gave none
        self.d_reason: list[Any] = []  # the latest reasons, as the policy gave them
        # ... and the earlier ones as text in Arrow arrays: a million Python strings held to the
        # end of a run cost twice their bytes and pin the memory of everything allocated among them.
        self._reason_chunks: list[pa.Array] = []
        self._reason_texts: dict[int, str | None] = {}  # reasons are often one shared object: format once
        self.d_error: list[str | None] = []
        self.d_candidates: list[tuple[int, ...]] = []

    def request(self, i, status, model, attempts, latency, ttft, cost, quality, carbon, fallback, escalated) -> None:
        self.r_index.append(i)
        self.r_status.append(status)
        self.r_model.append(model)
        self.r_attempts.append(attempts)
        self.r_latency.append(latency)
        self.r_ttft.append(_NAN if ttft is None else ttft)
        self.r_cost.append(cost)
        self.r_quality.append(quality)
        self.r_carbon.append(carbon)
        self.r_fallback.append(fallback)
        self.r_escalated.append(escalated)

    def attempt(self, i, attempt, model, start, end, outcome, cost, queued, verdict, judge_cost) -> None:
        self.a_index.append(i)
        self.a_attempt.append(attempt)
        self.a_model.append(model)
        self.a_start.append(start)
        self.a_end.append(end)
        self.a_outcome.append(outcome)
        self.a_cost.append(cost)
        self.a_queued.append(queued)
        self.a_verdict.append(verdict)
        self.a_judge_cost.append(judge_cost)

    def decision(self, i, decision_us, decision_cpu_us, reason, error, candidates, score=math.nan) -> None:
        self.d_us.append(decision_us)
        self.d_cpu_us.append(decision_cpu_us)
        self.d_score.append(score)
        self.d_reason.append(reason)
        self.d_error.append(error)
        self.d_candidates.append(candidates)
        if len(self.d_reason) >= REASON_CHUNK:
            self._compact_reasons()

    def _compact_reasons(self) -> None:
        texts = self._reason_texts
        out = []
        for r in self.d_reason:
            if r is None or type(r) is str:
                out.append(r)
                continue
            key = id(r)
            text = texts.get(key, _MISSING)
            if text is _MISSING:
                text = texts[key] = _reason_text(r)
                if len(texts) > 4 * REASON_CHUNK:  # ids of reasons since freed may come back: forget them
                    texts.clear()
                    texts[key] = text
            out.append(text)
        self._reason_chunks.append(pa.array(out, type=pa.string()))
        self.d_reason = []

    def reasons(self) -> pa.ChunkedArray:
        """Every decision's reason as text, in request order."""
        self._compact_reasons()
        return pa.chunked_array(self._reason_chunks, type=pa.string())

    def observe_error(self, i: int, error: str, where: str = "observe") -> None:
        """A policy error after the decision (in ``observe``, or a re-decision before a retry)."""
        previous = self.d_error[i]
        self.d_error[i] = f"{where}: {error}" if previous is None else f"{previous}; {where}: {error}"


@dataclass
class RunColumns:
    """A finished run's request columns, sorted by request number, as numpy arrays."""

    status: np.ndarray
    model: np.ndarray
    attempts: np.ndarray
    latency: np.ndarray
    ttft: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    carbon: np.ndarray
    fallback: np.ndarray
    escalated: np.ndarray  # bool: a cascade's judge rejected an answer
    decision_us: np.ndarray
    policy_error: np.ndarray  # bool


def run_columns(rec: RunRecorder, n_requests: int) -> RunColumns:
    if len(rec.r_index) != n_requests or len(rec.d_us) != n_requests:
        raise RuntimeError(f"run ended with {len(rec.r_index)} of {n_requests} requests recorded")
    order = np.argsort(np.asarray(rec.r_index), kind="stable")
    return RunColumns(
        status=np.asarray(rec.r_status, dtype=np.int8)[order],
        model=np.asarray(rec.r_model, dtype=np.int32)[order],
        attempts=np.asarray(rec.r_attempts, dtype=np.int32)[order],
        latency=np.asarray(rec.r_latency, dtype=float)[order],
        ttft=np.asarray(rec.r_ttft, dtype=float)[order],
        cost=np.asarray(rec.r_cost, dtype=float)[order],
        quality=np.asarray(rec.r_quality, dtype=float)[order],
        carbon=np.asarray(rec.r_carbon, dtype=float)[order],
        fallback=np.asarray(rec.r_fallback, dtype=bool)[order],
        escalated=np.asarray(rec.r_escalated, dtype=bool)[order],
        decision_us=np.asarray(rec.d_us, dtype=float),
        policy_error=np.array([e is not None for e in rec.d_error], dtype=bool),
    )


# --------------------------------------------------------------------------- tables
def _labels(names: list[str], codes: np.ndarray, empty: str = "") -> pa.Array:
    """Codes into a list of names; -1 becomes ``empty``."""
    lookup = np.asarray(list(names) + [empty], dtype=object)
    return pa.array(lookup[codes], type=pa.string())


#: Rows per table slice: the tables are built and written slice by slice (a Parquet row
#: group each), so a million-request run never holds a whole table twice.
TABLE_SLICE_ROWS = 1 << 17


def _slices(n: int) -> Iterator[slice]:
    for lo in range(0, n, TABLE_SLICE_ROWS):
        yield slice(lo, min(n, lo + TABLE_SLICE_ROWS))
    if n == 0:
        yield slice(0, 0)


def requests_table(cols: RunColumns, policy: str, replication: int, trace, model_names: list[str]) -> Iterator[pa.Table]:
    """The requests table, slice by slice."""
    for s in _slices(len(cols.status)):
        n = s.stop - s.start
        yield pa.table({
            "policy": pa.array([policy] * n, type=pa.string()),
            "replication": pa.array(np.full(n, replication, dtype=np.int32)),
            "request_id": pa.array(trace.request_id[s], type=pa.string()),
            "arrival_s": pa.array(trace.arrival_s[s]),
            "workload": pa.array(np.asarray(trace.workloads, dtype=object)[trace.workload[s]], type=pa.string()),
            "input_tokens": pa.array(trace.input_tokens[s]),
            "output_tokens": pa.array(trace.output_tokens[s]),
            "status": _labels(list(STATUS_NAMES), cols.status[s]),
            "model": _labels(model_names, cols.model[s]),
            "attempts": pa.array(cols.attempts[s]),
            "latency_s": pa.array(cols.latency[s]),
            "ttft_s": pa.array(cols.ttft[s], from_pandas=True),  # null when no answer came
            "cost_usd": pa.array(cols.cost[s]),
            "quality": pa.array(cols.quality[s]),
            "carbon_g": pa.array(cols.carbon[s]),
            "fallback": pa.array(cols.fallback[s]),
            "escalated": pa.array(cols.escalated[s]),
        })


def attempts_table(rec: RunRecorder, policy: str, replication: int, trace, model_names: list[str]) -> Iterator[pa.Table]:
    """The attempts table, by request then attempt, slice by slice."""
    index = np.asarray(rec.a_index, dtype=np.int64)
    attempt = np.asarray(rec.a_attempt, dtype=np.int32)
    order = np.lexsort((attempt, index))  # by request, then attempt
    model, outcome = np.asarray(rec.a_model, dtype=np.int32), np.asarray(rec.a_outcome, dtype=np.int8)
    verdict = np.asarray(rec.a_verdict, dtype=np.int8)
    columns = {name: np.asarray(getattr(rec, field), dtype=float) for name, field in (
        ("start_s", "a_start"), ("end_s", "a_end"), ("cost_usd", "a_cost"), ("queued_s", "a_queued"),
        ("judge_cost_usd", "a_judge_cost"))}
    for s in _slices(len(index)):
        rows = order[s]
        n = len(rows)
        yield pa.table({
            "policy": pa.array([policy] * n, type=pa.string()),
            "replication": pa.array(np.full(n, replication, dtype=np.int32)),
            "request_id": pa.array(trace.request_id[index[rows]], type=pa.string()),
            "attempt": pa.array(attempt[rows]),
            "model": _labels(model_names, model[rows]),
            "start_s": pa.array(columns["start_s"][rows]),
            "end_s": pa.array(columns["end_s"][rows]),
            "outcome": _labels(list(OUTCOME_NAMES), outcome[rows]),
            "cost_usd": pa.array(columns["cost_usd"][rows]),
            "queued_s": pa.array(columns["queued_s"][rows]),  # waiting for a serving slot
            "verdict": _labels(["rejected", "accepted"], verdict[rows]),
            "judge_cost_usd": pa.array(columns["judge_cost_usd"][rows]),
        })


def _reason_text(reason: Any) -> str | None:
    if reason is None or isinstance(reason, str):
        return reason
    try:
        return json.dumps(reason, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(reason)


def decisions_table(rec: RunRecorder, policy: str, replication: int, trace,
                    model_names: list[str]) -> Iterator[pa.Table]:
    """What the policy decided and why, with the wall-clock and CPU time it took (not
    deterministic), slice by slice."""
    routes: dict[tuple, str] = {}  # candidate lists are often one cached tuple: join once
    reasons = rec.reasons()
    score, us, cpu_us = (np.asarray(a, dtype=float) for a in (rec.d_score, rec.d_us, rec.d_cpu_us))
    latency = None if rec.d_latency is None else np.asarray(rec.d_latency, dtype=float)
    for s in _slices(len(rec.d_us)):
        n = s.stop - s.start
        candidates = []
        for c in rec.d_candidates[s]:
            text = routes.get(c)
            if text is None:
                text = routes[c] = ">".join(model_names[m] for m in c)
            candidates.append(text)
        yield pa.table({
            "policy": pa.array([policy] * n, type=pa.string()),
            "replication": pa.array(np.full(n, replication, dtype=np.int32)),
            "request_id": pa.array(trace.request_id[s], type=pa.string()),
            "candidates": pa.array(candidates, type=pa.string()),
            "reason": reasons.slice(s.start, n),
            "policy_error": pa.array(rec.d_error[s], type=pa.string()),
            "score": pa.array(score[s], from_pandas=True),  # NaN -> null
            "decision_us": pa.array(us[s]),
            "decision_cpu_us": pa.array(cpu_us[s]),
            "decision_latency_s": pa.array(np.zeros(n) if latency is None else latency[s]),
        })


# --------------------------------------------------------------------------- per-run metrics
def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def run_metrics(cols: RunColumns, workload_codes: np.ndarray, slo_by_code: np.ndarray) -> dict[str, float]:
    """Every per-run metric (docs/metrics.md). ``slo_by_code``: SLO seconds per workload code, inf for none."""
    n = len(cols.status)
    ok = cols.status == REQUEST_OK
    ok_latency = cols.latency[ok]
    within_slo = ok & (cols.latency <= slo_by_code[workload_codes])
    cost = float(cols.cost.sum())
    return {
        "requests": float(n),
        "success_rate": float(ok.mean()),
        "cost_usd": cost,
        "cost_per_1k_requests_usd": cost / n * 1000.0,
        # Failed requests cost little or nothing: per success, failing cannot look cheap.
        "cost_per_1k_successes_usd": cost / ok.sum() * 1000.0 if ok.any() else float("nan"),
        "mean_quality": float(cols.quality.mean()),
        "latency_p50_s": _percentile(ok_latency, 50),
        "latency_p95_s": _percentile(ok_latency, 95),
        "latency_p99_s": _percentile(ok_latency, 99),
        "fallback_rate": float(cols.fallback.mean()),
        "escalation_rate": float(cols.escalated.mean()),
        "attempts_per_request": float(cols.attempts.mean()),
        "slo_attainment": float(within_slo.mean()),
        "decision_us_p50": _percentile(cols.decision_us, 50),
        "decision_us_p99": _percentile(cols.decision_us, 99),
        "carbon_g": float(cols.carbon.sum()),
        "policy_error_rate": float(cols.policy_error.mean()),
    }
