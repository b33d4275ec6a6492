"""A run's three Parquet tables (requests, attempts, decisions), made while it runs.

Requests are cut into slices of ``TABLE_SLICE_ROWS`` by request number. Once
every request of the next slice has ended, and the feedback a policy may still
get on their answers has arrived (a policy error in ``observe`` belongs to the
request's decision row), the slice's rows of all three tables become Arrow
tables handed to a sink (a Parquet row group each); the recorder then adds
the slice to the run's totals and forgets what only the tables needed (its
attempts, reasons and candidates, and the pages of most request columns). A
ten-million-request run never holds its tables whole: what stays to the end is
what the metrics need whole (each request's status, latency and decision time).

The slicing depends only on the request numbers, so a run gives the same row
groups whether its sink writes them at once or a worker process sends them on.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pyarrow as pa

from sim.core.outcomes import OUTCOME_NAMES, STATUS_NAMES
from sim.core.recorder import RunRecorder

TABLES = ("requests", "attempts", "decisions")

#: Requests per slice (a row group of each table).
TABLE_SLICE_ROWS = 1 << 17

#: Where a slice's tables go: ``sink({"requests": table, "attempts": table, "decisions": table})``.
Sink = Callable[[dict[str, pa.Table]], None]


class TableStream:
    """Hands a run's tables to ``sink`` slice by slice as its requests end."""

    def __init__(self, rec: RunRecorder, policy: str, replication: int, trace, model_names: list[str], sink: Sink,
                 hold_s: float | None = None):
        """``hold_s``: how long after a request ends a policy error may still be recorded for it
        (the longest delay of the feedback its policy gets); its slice is written only once
        simulated time is past that. None: nothing comes after a request ends."""
        self.rec, self.policy, self.replication, self.trace = rec, policy, replication, trace
        self.model_names = list(model_names)
        self.sink = sink
        # Feedback delivered at exactly end + hold is an event at that time: only a later time is safe.
        self._strict = hold_s is not None
        self.hold_s = hold_s or 0.0
        n = rec.n_requests
        self._left = [min(TABLE_SLICE_ROWS, n - lo) for lo in range(0, n, TABLE_SLICE_ROWS)]
        self._next = 0  # the first slice not written yet
        self._ready_at = math.inf  # when the next slice may be written (inf: not all its requests ended)
        self._routes: dict[tuple, int] = {}  # each distinct candidate list -> its code
        self._workload_names = list(trace.workloads)
        rec.stream = self

    def ended(self, i: int, now: float) -> None:
        """Request i ended at ``now`` (the recorder calls this)."""
        k = i // TABLE_SLICE_ROWS
        self._left[k] -= 1
        if k == self._next and not self._left[k]:
            self._ready_at = now + self.hold_s
        if now >= self._ready_at:
            self._write_ready(now)

    def _write_ready(self, now: float) -> None:
        while now > self._ready_at or now == self._ready_at and not self._strict:
            self._write(self._next)
            self._next += 1
            # A later slice may have ended already: it is ready as soon as its hold is over, which
            # at the latest is hold_s from now (its own end time is not kept).
            self._ready_at = now + self.hold_s if self._next < len(self._left) and not self._left[self._next] \
                else math.inf

    def close(self) -> None:
        """The run is over: write every slice not written yet (the empty table of a run
        without requests too, so that every table has its file)."""
        if not self._left and self._next == 0:
            self._write(0)
            self._next = 1
        while self._next < len(self._left):
            self._write(self._next)
            self._next += 1
        self._ready_at = math.inf

    # ------------------------------------------------------------------ one slice
    def _write(self, k: int) -> None:
        lo = k * TABLE_SLICE_ROWS
        hi = min(lo + TABLE_SLICE_ROWS, self.rec.n_requests)
        self.sink({"requests": self._requests(lo, hi), "attempts": self._attempts(hi),
                   "decisions": self._decisions(lo, hi)})
        self.rec.fold(lo, hi)

    def _head(self, n: int) -> dict[str, pa.Array]:
        return {"policy": _coded(np.zeros(n, dtype=np.int32), [self.policy]),
                "replication": pa.array(np.full(n, self.replication, dtype=np.int32))}

    def _requests(self, lo: int, hi: int) -> pa.Table:
        rec, trace, s = self.rec, self.trace, slice(lo, hi)
        return pa.table({
            **self._head(hi - lo),
            "request_id": pa.array(trace.request_id[s], type=pa.string()),
            "arrival_s": pa.array(trace.arrival_s[s]),
            "workload": _coded(trace.workload[s], self._workload_names),
            "input_tokens": pa.array(trace.input_tokens[s]),
            "output_tokens": pa.array(trace.output_tokens[s]),
            # Copies of the recorder's columns: their pages are handed back once the slice is written,
            # and a table a worker keeps must not read zeros then.
            "status": _labels(STATUS_NAMES, _view(rec.r_status, np.int8)[s]),
            "model": _labels(self.model_names, _view(rec.r_model, np.int32)[s]),
            "attempts": pa.array(_view(rec.r_attempts, np.int32)[s].copy()),
            "latency_s": pa.array(_view(rec.r_latency, float)[s].copy()),
            "ttft_s": pa.array(_view(rec.r_ttft, float)[s].copy(), from_pandas=True),  # null when no answer came
            "cost_usd": pa.array(_view(rec.r_cost, float)[s].copy()),
            "quality": pa.array(_view(rec.r_quality, float)[s].copy()),
            "carbon_g": pa.array(_view(rec.r_carbon, float)[s].copy()),
            "fallback": pa.array(_view(rec.r_fallback, bool)[s]),
            "escalated": pa.array(_view(rec.r_escalated, bool)[s]),
        })

    def _attempts(self, hi: int) -> pa.Table:
        """The attempts of every request below ``hi`` not written yet, by request then attempt."""
        c = self.rec.take_attempts(hi)
        order = np.lexsort((c["attempt"], c["index"]))
        return pa.table({
            **self._head(len(order)),
            "request_id": pa.array(self.trace.request_id[c["index"][order]], type=pa.string()),
            "attempt": pa.array(c["attempt"][order]),
            "model": _labels(self.model_names, c["model"][order]),
            "start_s": pa.array(c["start"][order]),
            "end_s": pa.array(c["end"][order]),
            "outcome": _labels(OUTCOME_NAMES, c["outcome"][order]),
            "cost_usd": pa.array(c["cost"][order]),
            "queued_s": pa.array(c["queued"][order]),  # waiting for a serving slot
            "verdict": _labels(["rejected", "accepted"], c["verdict"][order]),
            "judge_cost_usd": pa.array(c["judge_cost"][order]),
        })

    def _decisions(self, lo: int, hi: int) -> pa.Table:
        """What the policy decided and why, with the wall-clock and CPU time it took (not
        deterministic)."""
        rec, s = self.rec, slice(lo, hi)
        reasons, candidates = rec.take_decisions(lo, hi)
        routes = self._routes
        codes = np.empty(len(candidates), dtype=np.int32)
        for k, c in enumerate(candidates):
            code = routes.get(c)
            if code is None:
                code = routes[c] = len(routes)
            codes[k] = code
        texts = [">".join(self.model_names[m] for m in c) for c in routes]  # in code order
        latency = rec.d_latency
        return pa.table({
            **self._head(hi - lo),
            "request_id": pa.array(self.trace.request_id[s], type=pa.string()),
            "candidates": _coded(codes, texts),
            "reason": reasons,
            "policy_error": pa.array(rec.errors(s), type=pa.string()),
            "score": pa.array(rec.scores(s), from_pandas=True),  # NaN -> null
            # A copy: d_us is still growing, and an array.array cannot grow while a view of it lives.
            "decision_us": pa.array(_view(rec.d_us, float)[s].copy()),
            "decision_cpu_us": pa.array(rec.cpu_us(s)),
            "decision_latency_s": pa.array(np.zeros(hi - lo) if latency is None
                                           else np.asarray(latency[lo:hi], dtype=float)),
        })


def _view(column, dtype) -> np.ndarray:
    """A numpy view of one of the recorder's array.array columns (no copy): only of columns
    allocated whole up front, or copied before the column grows again."""
    return np.frombuffer(column, dtype=dtype)


def _labels(names, codes: np.ndarray, empty: str = "") -> pa.Array:
    """Codes into a list of names; -1 becomes ``empty``."""
    names = list(names)
    return _coded(np.where(codes < 0, len(names), codes), names + [empty])


def _coded(codes: np.ndarray, names: list[str]) -> pa.Array:
    """Text given as codes into ``names``, kept as Arrow dictionary: no Python string per row
    (making them took a quarter of a million-request run's table time), and the Parquet writer
    takes the dictionary as it is. The files hold plain text (the writer does not store the
    Arrow schema), so readers get strings."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32()), pa.array(names, type=pa.string()))
