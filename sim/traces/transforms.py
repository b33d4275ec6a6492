"""Shape-preserving replay: transforms of a real trace, and traces built from
tables of per-prompt labels.

Each transform returns a new ``Trace``; none changes a request's tokens, labels
or relative order, so the traffic keeps its shape (bursts, mix, sizes) while its
scale changes. Random choices (sampling, label-trace arrivals) take a seeded
generator from ``rng.py``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError, Problem
from .checks import csv_rows, found_columns, numbers
from sim.files import check_input_file
from .table import QUALITY_PREFIX, Trace, from_frame, read_csv_table


def _take(trace: Trace, rows: np.ndarray, arrival_s: np.ndarray) -> Trace:
    """The trace's requests at ``rows`` (in order), with new arrival times."""
    used = np.unique(trace.workload[rows])
    recode = np.full(len(trace.workloads), -1, dtype=np.int32)
    recode[used] = np.arange(len(used), dtype=np.int32)
    return Trace(arrival_s, trace.input_tokens[rows], trace.output_tokens[rows], trace.request_id[rows],
                 recode[trace.workload[rows]], [trace.workloads[c] for c in used],
                 None if trace.difficulty is None else trace.difficulty[rows],
                 {m: labels[rows] for m, labels in trace.quality_labels.items()},
                 None if trace.cached_input_tokens is None else trace.cached_input_tokens[rows],
                 None if trace.tags is None else trace.tags[rows], trace.tag_sets,
                 None if trace.logged_route is None else trace.logged_route[rows], trace.logged_routes)


def replay(trace: Trace, window_s: tuple[float, float] | None = None, keep: float | None = None,
           rng: np.random.Generator | None = None, speedup: float | None = None,
           rate_per_s: float | None = None) -> Trace:
    """The replay pipeline, in its one order (``trace transform`` and ``trace.replay`` alike):
    keep a window (shifted to 0), then each request with probability ``keep`` (drawn
    from ``rng``), then scale time by a speedup or to a mean rate."""
    if speedup is not None and rate_per_s is not None:
        raise InputError(Problem("give a speedup or a rate, not both"))
    if window_s is not None:
        trace = window(trace, *window_s)
    if keep is not None:
        trace = sample(trace, keep, rng)
    if speedup is not None:
        trace = scale_time(trace, speedup)
    if rate_per_s is not None:
        trace = to_rate(trace, rate_per_s)
    return trace


def scale_time(trace: Trace, speedup: float) -> Trace:
    """Compress time by ``speedup`` (> 1 is faster): every gap divided by it."""
    if not speedup > 0:
        raise InputError(Problem(f"speedup must be > 0 (got {speedup})"))
    return replace(trace, arrival_s=trace.arrival_s / speedup)


def to_rate(trace: Trace, rate_per_s: float) -> Trace:
    """Scale time so the mean rate (requests / duration) becomes ``rate_per_s``."""
    if not rate_per_s > 0:
        raise InputError(Problem(f"rate must be > 0 (got {rate_per_s})"))
    if trace.duration_s <= 0:
        raise InputError(Problem("the trace has no duration to scale"))
    return scale_time(trace, rate_per_s / (len(trace) / trace.duration_s))


def sample(trace: Trace, fraction: float, rng: np.random.Generator) -> Trace:
    """Keep each request with probability ``fraction`` (thinning keeps the rate's shape)."""
    if not 0 < fraction <= 1:
        raise InputError(Problem(f"sample fraction must be in (0, 1] (got {fraction})"))
    rows = np.flatnonzero(rng.random(len(trace)) < fraction)
    if len(rows) == 0:
        raise InputError(Problem("sampling kept no request; use a larger fraction"))
    return _take(trace, rows, trace.arrival_s[rows])


def window(trace: Trace, start_s: float, end_s: float) -> Trace:
    """The requests arriving in [start_s, end_s), shifted to start at 0."""
    rows = np.flatnonzero((trace.arrival_s >= start_s) & (trace.arrival_s < end_s))
    if len(rows) == 0:
        raise InputError(Problem(f"no request arrives in [{start_s:g}, {end_s:g}) s "
                                 f"(the trace spans 0-{trace.duration_s:g} s)"))
    return _take(trace, rows, trace.arrival_s[rows] - start_s)


def merge(traces: list[tuple[str, Trace]]) -> Trace:
    """Several traces on one clock; each request's workload becomes its trace's
    label, and request ids are prefixed with it to stay unique."""
    if not traces:
        raise InputError(Problem("nothing to merge"))
    labels = [label for label, _ in traces]
    if len(set(labels)) != len(labels):
        raise InputError(Problem(f"merge labels must differ (got {', '.join(labels)})"))
    arrival = np.concatenate([t.arrival_s for _, t in traces])
    order = np.argsort(arrival, kind="stable")  # ties keep the order of the inputs
    workload = np.concatenate([np.full(len(t), k, dtype=np.int32) for k, (_, t) in enumerate(traces)])
    ids = np.concatenate([np.array([f"{label}/{r}" for r in t.request_id], dtype=object) for label, t in traces])
    models = sorted({m for _, t in traces for m in t.quality_labels})
    quality = {}
    for m in models:  # a trace without a model's labels: unknown, so the ability model decides (NaN is refused)
        missing = [label for label, t in traces if m not in t.quality_labels]
        if missing:
            raise InputError(Problem(f"quality.{m} is in some traces but not in {', '.join(missing)}"))
        quality[m] = np.concatenate([t.quality_labels[m] for _, t in traces])[order]
    with_difficulty = [t.difficulty is not None for _, t in traces]
    difficulty = None
    if all(with_difficulty):
        difficulty = np.concatenate([t.difficulty for _, t in traces])[order]
    elif any(with_difficulty):
        raise InputError(Problem("difficulty is in some traces but not all"))
    cached = None
    if any(t.cached_input_tokens is not None for _, t in traces):  # a trace without the column cached nothing
        cached = np.concatenate([t.cached_input_tokens if t.cached_input_tokens is not None
                                 else np.zeros(len(t), dtype=np.int64) for _, t in traces])[order]
    tags, tag_sets = _merged_codes([(t.tags, t.tag_sets, len(t)) for _, t in traces])
    routes, route_lists = _merged_codes([(t.logged_route, t.logged_routes, len(t)) for _, t in traces])
    return Trace(arrival[order], np.concatenate([t.input_tokens for _, t in traces])[order],
                 np.concatenate([t.output_tokens for _, t in traces])[order], ids[order], workload[order],
                 labels, difficulty, quality, cached, None if tags is None else tags[order], tag_sets,
                 None if routes is None else routes[order], route_lists)


def _merged_codes(columns: list[tuple[np.ndarray | None, list[tuple[str, ...]], int]]
                  ) -> tuple[np.ndarray | None, list[tuple[str, ...]]]:
    """The traces' tags (or logged routes), as (codes, the sets they index, rows), coded into
    one list of sets (a trace without the column: none)."""
    if all(codes is None for codes, _, _ in columns):
        return None, []
    sets: dict[tuple[str, ...], int] = {}
    parts = []
    for codes, known, rows in columns:
        if codes is None:
            parts.append(np.full(rows, sets.setdefault((), len(sets)), dtype=np.int32))
        else:
            recode = np.array([sets.setdefault(s, len(sets)) for s in known], dtype=np.int32)
            parts.append(recode[codes])
    return np.concatenate(parts), list(sets)


def labels_trace(table: Path, models: dict[str, str], rate_per_s: float, rng: np.random.Generator,
                 chars_per_token: float = 4.0, output_tokens: int = 1, workload_column: str | None = None) -> Trace:
    """A trace for counterfactual replay of offline evals: one request per row of
    a per-prompt correctness table (e.g. RouteLLM's), Poisson arrivals at
    ``rate_per_s``, and ``quality.<model>`` from the table's columns.

    ``models``: scenario model -> the table's 0/1 (or probability) column.
    Input tokens come from ``prompt_chars`` / ``chars_per_token`` when the table
    has that column, else ``input_tokens``."""
    table = Path(table)
    check_input_file(table)
    frame = read_csv_table(table)
    n = len(frame)
    if n == 0:
        raise InputError(Problem("the table has no rows", file=str(table)))
    missing = [c for c in models.values() if c not in frame.columns]
    if workload_column is not None and workload_column not in frame.columns:
        missing.append(workload_column)
    if "prompt_chars" not in frame.columns and "input_tokens" not in frame.columns:
        missing.append("prompt_chars or input_tokens")
    if missing:
        raise InputError(Problem(f"missing column(s) {', '.join(missing)} ({found_columns(frame.columns)})",
                                 file=str(table)))
    if "prompt_chars" in frame.columns:
        chars = numbers(frame["prompt_chars"], "prompt_chars", csv_rows(table))
        input_tokens = np.maximum(np.rint(chars / chars_per_token), 1)
    else:
        input_tokens = frame["input_tokens"]
    arrival = np.cumsum(rng.exponential(1.0 / rate_per_s, n))
    trace = pd.DataFrame({"arrival_s": arrival - arrival[0], "input_tokens": input_tokens,
                          "output_tokens": output_tokens,
                          "workload": table.stem if workload_column is None else frame[workload_column].astype(str)})
    for model, column in models.items():
        trace[QUALITY_PREFIX + model] = frame[column]
    # The trace readers' checks (whole token counts, labels in [0, 1]) with the table's line numbers.
    return from_frame(trace, str(table), csv_rows(table))

