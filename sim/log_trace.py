"""A LiteLLM proxy's logged calls as a routesim trace, written chunk by chunk.

Each logged call is one request (grouping a request's retries and fallbacks,
logged as separate rows, is not done yet): arrival = its start, relative to the
first call's; tokens as logged; the workload the model group by default, or
the team or end user; the request id as logged. What production did with it is
kept beside, for the backtest and for a reviewer: ``logged_deployment``,
``logged_ok``, ``logged_latency_s``, ``logged_spend_usd``, ``logged_cache_hit``
(trace readers ignore columns they do not know).

The calls must come in start order, as the database query returns them: an
export out of order is an input error naming the first call out of place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError, Problem
from .files import atomic_file

#: What ``--workload`` may name: the log's column that becomes the workload.
WORKLOAD_SOURCES = {"model_group": "model_group", "team": "team_id", "end_user": "end_user"}


@dataclass
class LoggedTrace:
    requests: int
    first_start: pd.Timestamp | None
    last_start: pd.Timestamp | None
    workloads: dict[str, int]  # requests per workload


def write_logged_trace(chunks: Iterable[pd.DataFrame], out: Path, workload: str = "model_group",
                       source: str = "the log") -> LoggedTrace:
    """Write the calls of ``chunks`` (``spend_logs.normalize``'s columns, in start order) as a
    Parquet trace at ``out``, replaced only once complete."""
    if workload not in WORKLOAD_SOURCES:
        raise InputError(Problem(f"--workload {workload}: one of {', '.join(WORKLOAD_SOURCES)}"))
    column = WORKLOAD_SOURCES[workload]
    first = last = None
    counts: dict[str, int] = {}
    n = 0
    with atomic_file(Path(out), "trace") as tmp:
        writer = None
        try:
            for chunk in chunks:
                if chunk.empty:
                    continue
                starts = chunk.start
                earlier = (starts.diff() < pd.Timedelta(0)).to_numpy().copy()
                if last is not None and starts.iloc[0] < last:
                    earlier[0] = True
                if earlier.any():
                    i = int(earlier.argmax())
                    raise InputError(Problem(f"request_id {chunk.request_id.iloc[i]}: starts before the call logged "
                                             "ahead of it; sort the export by startTime (the database is read in "
                                             "that order)", file=source))
                first = starts.iloc[0] if first is None else first
                last = starts.iloc[-1]
                names = chunk[column].where(chunk[column] != "", "default")
                for name, count in names.value_counts().items():
                    counts[str(name)] = counts.get(str(name), 0) + int(count)
                table = pa.table({
                    "request_id": pa.array(chunk.request_id, type=pa.string()),
                    "arrival_s": pa.array((starts - first).dt.total_seconds().to_numpy()),
                    "input_tokens": pa.array(chunk.input_tokens.to_numpy()),
                    "output_tokens": pa.array(chunk.output_tokens.to_numpy()),
                    "workload": pa.array(names, type=pa.string()),
                    "logged_deployment": pa.array(chunk.deployment, type=pa.string()),
                    "logged_ok": pa.array(chunk.ok.to_numpy()),
                    "logged_latency_s": pa.array((chunk.end - starts).dt.total_seconds().to_numpy()),
                    "logged_spend_usd": pa.array(chunk.spend_usd.to_numpy()),
                    "logged_cache_hit": pa.array(chunk.cache_hit.to_numpy()),
                })
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                n += len(chunk)
        finally:
            if writer is not None:
                writer.close()
        if n == 0:
            raise InputError(Problem("no logged calls in the period asked for", file=source))
    return LoggedTrace(n, first, last, counts)
