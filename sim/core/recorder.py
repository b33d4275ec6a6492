"""Per-request and per-attempt records of one (policy, replication) run.

Records go into per-column buffers during a run (never a list of dicts);
``run/tables.py`` turns them into the Parquet tables slice by slice while the
run goes on, and ``metrics/per_run.py`` computes the run's metrics from them.
"""

from __future__ import annotations

import json
import mmap
from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .outcomes import ATTEMPT_CANCELLED, ATTEMPT_RATE_LIMITED

_NAN = float("nan")
_MISSING = object()
REASON_CHUNK = 1 << 16  # reasons kept as Python objects before they are turned into text
#: decision_cpu_us is measured for requests 0, CPU_SAMPLE, 2 CPU_SAMPLE, ... (NaN for the others):
#: the thread's CPU clock is a system call (0.4 µs, twice per request).
CPU_SAMPLE = 16


class RunRecorder:
    """Column buffers for one (policy, replication) run of ``n_requests`` requests.

    Numeric columns are ``array.array``s: they hold raw 8-byte values instead of
    keeping a Python float alive per cell, so memory stays small and
    cache-friendly on million-request runs. A request's columns are allocated
    up front and written at its index when it ends (no sort afterwards); a
    run's attempts, whose number is not known in advance, are appended.
    Columns that are nearly always empty (policy errors) are dictionaries.

    With a ``stream`` (``run.tables.TableStream``) the tables are written slice
    by slice as requests end; each written slice is added to ``totals``
    (``fold``, ``take_attempts``) and forgotten: its attempts, the decisions'
    reasons and candidates, and the pages of the request columns other than
    status and latency. What stays to the end is what the metrics need whole:
    each request's status, latency, decision time (and score, CPU time when
    sampled, policy error).
    """

    def __init__(self, n_requests: int) -> None:
        n = self.n_requests = n_requests
        self.finished = 0  # requests that have ended
        self.stream = None  # a TableStream, told of each request's end
        # requests, by request number: status and latency are kept to the end (percentiles, faults) ...
        self.r_status = array("b", bytes(n))
        self.r_latency = array("d", bytes(8 * n))
        # ... the others only until their slice is written and summed (fold): their pages go back then.
        self._pages: list[_Pages] = []
        self.r_model = self._foldable("i")
        self.r_attempts = self._foldable("i")
        self.r_ttft = self._foldable("d")  # NaN when no answer came
        self.r_cost = self._foldable("d")
        self.r_quality = self._foldable("d")
        self.r_carbon = self._foldable("d")
        self.r_fallback = self._foldable("b")
        self.r_escalated = self._foldable("b")
        self.folded = 0  # requests 0..folded-1 are summed into the totals
        self.totals = RunTotals()
        self._request_columns = (self.r_status, self.r_model, self.r_attempts, self.r_latency, self.r_ttft,
                                 self.r_cost, self.r_quality, self.r_carbon, self.r_fallback, self.r_escalated)
        # attempts: the table's columns of those not written yet (the written ones are in the totals)
        self._attempts = {name: array(code) for name, code in _ATTEMPT_COLUMNS}
        self._attempt_columns = tuple(self._attempts.values())
        # decisions (in arrival order, which is request order)
        self.d_us = array("d")  # wall-clock time of route()
        # Its CPU (thread) time, measured for one request in CPU_SAMPLE: requests 0, 16, 32, ...
        self.d_cpu_us = array("d", [_NAN]) * ((n + CPU_SAMPLE - 1) // CPU_SAMPLE)
        self.d_latency: list[float] | None = None  # the modelled decision latency of every request, when drawn
        self._scores: array | None = None  # a score per request (NaN where none), once a policy gives one
        self.d_error: dict[int, str] = {}  # request number -> the policy's error(s)
        # Reasons and candidates of the decisions not written yet, from request number _decided_from on.
        # The latest reasons are kept as the policy gave them, the earlier ones as text in Arrow arrays:
        # a million Python strings held to the end of a run cost twice their bytes and pin the memory
        # of everything allocated among them.
        self._decided_from = 0
        self.d_reason: list[Any] = []
        self._reason_chunks: list[pa.Array] = []
        self._reason_texts: dict[int, str | None] = {}  # reasons are often one shared object: format once
        self.d_candidates: list[tuple[int, ...]] = []

    def request(self, i, status, model, attempts, latency, ttft, cost, quality, carbon, fallback, escalated,
                end) -> None:
        (c_status, c_model, c_attempts, c_latency, c_ttft, c_cost, c_quality, c_carbon, c_fallback,
         c_escalated) = self._request_columns
        c_status[i] = status
        c_model[i] = model
        c_attempts[i] = attempts
        c_latency[i] = latency
        c_ttft[i] = _NAN if ttft is None else ttft
        c_cost[i] = cost
        c_quality[i] = quality
        c_carbon[i] = carbon
        c_fallback[i] = fallback
        c_escalated[i] = escalated
        self.finished += 1
        if self.stream is not None:
            self.stream.ended(i, end)

    def _foldable(self, code: str) -> memoryview:
        pages = _Pages(array(code).itemsize, self.n_requests)
        self._pages.append(pages)
        return pages.column(code)

    def fold(self, lo: int, hi: int) -> None:
        """Requests lo..hi-1 (the next slice) are written: add them to the run's totals, and
        give the pages only they used back to the system."""
        if lo != self.folded:
            raise RuntimeError(f"requests {lo}..{hi} folded out of order (next {self.folded})")
        s = slice(lo, hi)
        totals = self.totals
        totals.cost_usd.append(float(np.frombuffer(self.r_cost, dtype=float)[s].sum()))
        totals.quality.append(float(np.frombuffer(self.r_quality, dtype=float)[s].sum()))
        totals.carbon_g.append(float(np.frombuffer(self.r_carbon, dtype=float)[s].sum()))
        totals.attempts += int(np.frombuffer(self.r_attempts, dtype=np.int32)[s].sum())
        totals.fallbacks += int(np.frombuffer(self.r_fallback, dtype=np.int8)[s].sum())
        totals.escalations += int(np.frombuffer(self.r_escalated, dtype=np.int8)[s].sum())
        for pages in self._pages:
            pages.release(lo, hi)
        self.folded = hi

    def attempt(self, i, attempt, model, start, end, outcome, cost, queued, verdict, judge_cost) -> None:
        (c_index, c_attempt, c_model, c_start, c_end, c_outcome, c_cost, c_queued, c_verdict,
         c_judge_cost) = self._attempt_columns
        c_index.append(i)
        c_attempt.append(attempt)
        c_model.append(model)
        c_start.append(start)
        c_end.append(end)
        c_outcome.append(outcome)
        c_cost.append(cost)
        c_queued.append(queued)
        c_verdict.append(verdict)
        c_judge_cost.append(judge_cost)

    def take_attempts(self, below: int) -> dict[str, np.ndarray]:
        """The unwritten attempts of requests numbered below ``below`` (copies), forgotten here."""
        columns = {name: np.frombuffer(column, dtype=column.typecode) for name, column in self._attempts.items()}
        taken = columns["index"] < below
        out = {name: values[taken] for name, values in columns.items()}
        kept = {name: values[~taken] for name, values in columns.items()}
        del columns  # the views: the arrays cannot be replaced while they are exported
        self._attempts = {name: array(column.typecode, kept[name].tobytes()) for name, column in self._attempts.items()}
        self._attempt_columns = tuple(self._attempts.values())
        totals = self.totals
        totals.attempt_count += len(out["index"])
        totals.rate_limited += int((out["outcome"] == ATTEMPT_RATE_LIMITED).sum())
        totals.attempt_cost.append(float(out["cost"].sum()))
        totals.cancelled_cost.append(float(out["cost"][out["outcome"] == ATTEMPT_CANCELLED].sum()))
        return out

    @property
    def attempts_made(self) -> int:
        """Attempts recorded so far, written or not."""
        return self.totals.attempt_count + len(self._attempts["index"])

    def decision(self, decision_us, reason, candidates) -> None:
        """The next request's decision (decisions come in request order). Its CPU time, score
        and policy error, when it has them, go to ``d_cpu_us``, ``score`` and ``policy_error``."""
        self.d_us.append(decision_us)
        self.d_candidates.append(candidates)
        reasons = self.d_reason
        reasons.append(reason)
        if len(reasons) >= REASON_CHUNK:
            self._compact_reasons()

    def score(self, i: int, value: float) -> None:
        """Request i's decision came with a score."""
        if self._scores is None:  # most policies never give one: no column for them
            self._scores = array("d", [_NAN]) * self.n_requests
        self._scores[i] = value

    def scores(self, s: slice) -> np.ndarray:
        """The scores of requests ``s`` (NaN where none)."""
        if self._scores is None:
            return np.full(s.stop - s.start, _NAN)
        return np.frombuffer(self._scores, dtype=float)[s]

    def cpu_us(self, s: slice) -> np.ndarray:
        """The decisions' CPU time for requests ``s``: NaN but where it was measured."""
        out = np.full(s.stop - s.start, _NAN)
        first = -(-s.start // CPU_SAMPLE)  # the first sampled request in s, in units of CPU_SAMPLE
        sampled = np.frombuffer(self.d_cpu_us, dtype=float)[first:-(-s.stop // CPU_SAMPLE)]
        out[first * CPU_SAMPLE - s.start::CPU_SAMPLE] = sampled
        return out

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

    def take_decisions(self, lo: int, hi: int) -> tuple[pa.ChunkedArray, list[tuple[int, ...]]]:
        """(reasons as text, candidates) of requests lo..hi-1, the first not written yet;
        forgotten here."""
        if lo != self._decided_from or hi > len(self.d_us):
            raise RuntimeError(f"decisions {lo}..{hi} taken out of order (next {self._decided_from}, "
                               f"{len(self.d_us)} made)")
        self._compact_reasons()
        reasons = pa.chunked_array(self._reason_chunks, type=pa.string())
        self._reason_chunks = reasons.slice(hi - lo).chunks
        candidates = self.d_candidates[:hi - lo]
        del self.d_candidates[:hi - lo]
        self._decided_from = hi
        return reasons.slice(0, hi - lo), candidates

    def policy_error(self, i: int, error: str, where: str | None = None) -> None:
        """A policy error: at the decision, or after it (``where``: in ``observe``, or a
        re-decision before a retry)."""
        if where is not None:
            error = f"{where}: {error}"
        previous = self.d_error.get(i)
        self.d_error[i] = error if previous is None else f"{previous}; {error}"

    def errors(self, s: slice) -> list[str | None]:
        """The policy errors of requests ``s`` (None where there was none)."""
        if not self.d_error:
            return [None] * (s.stop - s.start)
        # By the slice's request numbers: a scan of every error per slice would be quadratic for a
        # policy that errs on every request.
        return [self.d_error.get(i) for i in range(s.start, s.stop)]


#: The attempts table's columns as the recorder keeps them (array.array type codes).
_ATTEMPT_COLUMNS = (("index", "q"), ("attempt", "i"), ("model", "i"), ("start", "d"), ("end", "d"), ("outcome", "b"),
                    ("cost", "d"), ("queued", "d"), ("verdict", "b"),  # a cascade judge's: 1, 0, or -1 not judged
                    ("judge_cost", "d"))


@dataclass
class RunTotals:
    """Sums over a run's requests, built slice by slice (``RunRecorder.fold``); the float
    sums as the list of the slices' sums, added exactly at the end."""

    cost_usd: list[float] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    carbon_g: list[float] = field(default_factory=list)
    attempts: int = 0  # the requests' attempts, summed
    fallbacks: int = 0
    escalations: int = 0
    # over the attempts written
    attempt_count: int = 0
    rate_limited: int = 0
    attempt_cost: list[float] = field(default_factory=list)
    cancelled_cost: list[float] = field(default_factory=list)  # hedges that lost the race


class _Pages:
    """A zeroed column of ``n`` values of ``itemsize`` bytes in memory of its own (an
    anonymous map), whose pages can be handed back to the system once read."""

    def __init__(self, itemsize: int, n: int):
        self.itemsize = itemsize
        # Private: handed-back pages of a shared map would stay in memory, only unmapped.
        self.map = mmap.mmap(-1, max(itemsize * n, 1), flags=mmap.MAP_PRIVATE)

    def column(self, code: str) -> memoryview:
        return memoryview(self.map).cast(code)[:len(self.map) // self.itemsize]

    def release(self, lo: int, hi: int) -> None:
        """Give back the whole pages inside values lo..hi-1 (they read as zeros from now on);
        pages shared with the values around them stay."""
        start = -(-lo * self.itemsize // mmap.PAGESIZE) * mmap.PAGESIZE
        stop = hi * self.itemsize // mmap.PAGESIZE * mmap.PAGESIZE
        if stop > start and hasattr(self.map, "madvise"):
            self.map.madvise(mmap.MADV_DONTNEED, start, stop - start)


def _reason_text(reason: Any) -> str | None:
    if reason is None or isinstance(reason, str):
        return reason
    try:
        return json.dumps(reason, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(reason)
