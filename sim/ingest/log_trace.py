"""A LiteLLM proxy's logged calls as a routesim trace, written chunk by chunk.

One trace request per client request. LiteLLM logs each call to a deployment
as a row; the rows of one client request (its retries and fallbacks) share
the proxy's call id (``metadata.litellm_call_id``), so rows with the same call
id are grouped, in start order, as long as they start within
``GROUP_HORIZON_S`` of the first; a later row with that call id begins a new
request. A row with no call id is a request of its own. A request's id is its
call id (a row of its own: the row's request_id); an id the trace already holds
gets ``~2``, ``~3``, ... appended, so ids stay unique. The request's arrival is its first row's start, relative to the
log's first call; its tokens are as logged (its first row's prompt, and of it
the tokens read from the prompt cache as ``cached_input_tokens``, 0 where
LiteLLM logged none); its workload the model group the
client asked for (``metadata.original_model_group``, else the first row's
group) by default, or the team, the end user or the first of its request tags
(alphabetically). Its request tags are the trace's ``tags`` (a proxy with tag
filtering routes by them).

A request that failed everywhere has no logged answer length (LiteLLM logs 0
completion tokens): it gets the mean answer length of its workload's answered
requests logged before it (0 before the first), and ``logged_output_known`` is
false.

What production did is kept beside, for the backtest and for a reviewer:
``logged_route`` (the deployments tried, in order, ``;``-separated),
``logged_deployment`` (the one that answered, or empty), ``logged_ok``,
``logged_attempts``, ``logged_latency_s`` (first start to last end),
``logged_spend_usd`` (all its rows), ``logged_cache_hit`` (trace readers
ignore columns they do not know).

The calls must come in start order, as the database query returns them: an
export out of order is an input error naming the first call out of place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import InputError, Problem
from sim.files import atomic_file

#: What ``--workload`` may name: the log's column that becomes the workload.
WORKLOAD_SOURCES = {"model_group": "requested_group", "team": "team_id", "end_user": "end_user", "tag": "first_tag"}
#: In the trace's Parquet metadata: marks a file a later import may replace.
MARK = {b"routesim": b"litellm-logs trace"}
GROUP_HORIZON_S = 600.0  # a retry or fallback logged later than this after its request's first row is a new request
ROUTE_SEPARATOR = ";"


@dataclass
class LoggedTrace:
    requests: int
    rows: int
    first_start: pd.Timestamp | None
    last_start: pd.Timestamp | None
    workloads: dict[str, int]  # requests per workload
    grouped: int = 0  # requests of more than one row
    answered: int = 0  # requests answered (by a deployment or the response cache)
    failovers: int = 0  # requests that went to more than one deployment
    most_attempts: int = 0  # calls of the request that made most
    longest_s: float = 0.0  # the longest logged call, start to end
    unknown_output: int = 0  # requests that failed everywhere (answer length filled in)
    fallback_next: dict = field(default_factory=dict)  # deployment -> {next deployment tried after it failed: count}


def checked_in_order(chunks: Iterable[pd.DataFrame], source: str) -> Iterator[pd.DataFrame]:
    """The chunks, refusing a call that starts before the one logged ahead of it."""
    last = None
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
        last = starts.iloc[-1]
        yield chunk


def grouped_requests(chunks: Iterable[pd.DataFrame], workload_column: str) -> Iterator[pd.DataFrame]:
    """One row per client request (module docstring), in arrival order: request_id, start,
    input_tokens, output_tokens (as logged by the answering row, else 0), ok, workload, route,
    deployment, attempts, end, spend_usd, cache_hit."""
    carry = None
    horizon = pd.Timedelta(seconds=GROUP_HORIZON_S)
    rows_before = 0  # rows of earlier chunks: a row without a call id is keyed by its place in the log
    chunks = iter(chunks)
    chunk = next(chunks, None)
    while chunk is not None:
        following = next(chunks, None)
        if workload_column == "first_tag":
            chunk = chunk.assign(first_tag=chunk.tags.str.split(ROUTE_SEPARATOR).str[0].fillna(""))
        alone = (chunk.call_id == "").to_numpy()
        keys = chunk.call_id.copy()
        if alone.any():  # a key of its own, by its place in the log (built only for these rows)
            keys[alone] = "\0row " + (np.flatnonzero(alone) + rows_before).astype(str).astype(object)
        chunk = chunk.assign(_key=keys, _id=chunk.call_id.where(~alone, chunk.request_id))
        rows_before += len(chunk)
        rows = chunk if carry is None else pd.concat([carry.drop(columns="_group"), chunk], ignore_index=True)
        rows = rows.assign(_group=_sessions(rows, horizon))
        first = rows.groupby("_group", sort=False).start.transform("min")
        if following is None:
            done = np.ones(len(rows), dtype=bool)
        else:
            done = (first < chunk.start.iloc[-1] - horizon).to_numpy()
        carry = rows[~done]
        if done.any():
            yield _one_row_per_request(rows[done], first[done], workload_column)
        chunk = following


def _sessions(rows: pd.DataFrame, horizon: pd.Timedelta) -> pd.Series:
    """Each row's request: its key (call id, or its own place), and a new request wherever a row
    starts later than ``horizon`` after the first row of the request so far. Rows come in start
    order; only keys spanning more than the horizon need the walk."""
    group = rows._key.copy()
    span = rows.groupby("_key", sort=False).start.agg(["min", "max"])
    for key in span.index[(span["max"] - span["min"]) > horizon]:
        where = np.flatnonzero((rows._key == key).to_numpy())
        first, session = rows.start.iloc[where[0]], 0
        for i in where:
            if rows.start.iloc[i] - first > horizon:
                first, session = rows.start.iloc[i], session + 1
            if session:
                group.iloc[i] = f"{key}\0{session}"
    return group


def _one_row_per_request(rows: pd.DataFrame, first: pd.Series, workload_column: str) -> pd.DataFrame:
    rows = rows.assign(_first=first).sort_values(["_first", "_group", "start"], kind="stable")
    size = rows.groupby("_group", sort=False)._group.transform("size").to_numpy()
    single = rows[size == 1]
    out_single = pd.DataFrame({
        "request_id": single._id.to_numpy(), "start": single.start.to_numpy(),
        "input_tokens": single.input_tokens.to_numpy(), "cached_tokens": single.cached_tokens.to_numpy(),
        "output_tokens": single.output_tokens.to_numpy(),
        "ok": single.ok.to_numpy(), "workload": single[workload_column].to_numpy(),
        "route": single.deployment.to_numpy(), "deployment": single.deployment.where(single.ok, "").to_numpy(),
        "attempts": np.ones(len(single), dtype=np.int64), "end": single.end.to_numpy(),
        "longest_call_s": (single.end - single.start).dt.total_seconds().to_numpy(),
        "spend_usd": single.spend_usd.to_numpy(), "cache_hit": single.cache_hit.to_numpy(),
        "tags": single.tags.to_numpy()})
    several = rows[size > 1]
    if len(several):
        answered = several.deployment.where(several.ok, "")
        groups = several.assign(_answered=answered, _answer_tokens=several.output_tokens.where(several.ok, 0),
                                _seconds=(several.end - several.start).dt.total_seconds()).groupby(
            "_group", sort=False)
        out_several = pd.DataFrame({
            "request_id": groups._id.first().to_numpy(), "start": groups.start.min().to_numpy(),
            "input_tokens": groups.input_tokens.first().to_numpy(),
            "cached_tokens": groups.cached_tokens.first().to_numpy(),
            "output_tokens": groups._answer_tokens.max().to_numpy(), "ok": groups.ok.any().to_numpy(),
            "workload": groups[workload_column].first().to_numpy(),
            "route": groups.deployment.agg(ROUTE_SEPARATOR.join).to_numpy(),
            "deployment": groups._answered.max().to_numpy(),
            "attempts": groups.size().to_numpy().astype(np.int64), "end": groups.end.max().to_numpy(),
            "longest_call_s": groups._seconds.max().to_numpy(),
            "spend_usd": groups.spend_usd.sum().to_numpy(), "cache_hit": groups.cache_hit.any().to_numpy(),
            "tags": groups.tags.first().to_numpy()})
        out = pd.concat([out_single, out_several], ignore_index=True)
    else:
        out = out_single
    return out.sort_values(["start", "request_id"], kind="stable").reset_index(drop=True)


def write_logged_trace(chunks: Iterable[pd.DataFrame], out: Path, workload: str = "model_group",
                       source: str = "the log") -> LoggedTrace:
    """Write the calls of ``chunks`` (``ingest.spend_logs.normalize``'s columns, in start order) as a
    Parquet trace at ``out``, replaced only once complete."""
    if workload not in WORKLOAD_SOURCES:
        raise InputError(Problem(f"--workload {workload}: one of {', '.join(WORKLOAD_SOURCES)}"))
    column = WORKLOAD_SOURCES[workload]
    summary = LoggedTrace(0, 0, None, None, {})
    answered_sums: dict[str, list[int]] = {}  # workload -> [answer tokens, answered requests]

    def counted(chunks):
        for chunk in chunks:
            summary.rows += len(chunk)
            yield chunk

    with atomic_file(Path(out), "trace") as tmp:
        writer = None
        try:
            for requests in grouped_requests(counted(checked_in_order(chunks, source)), column):
                summary.first_start = requests.start.iloc[0] if summary.first_start is None else summary.first_start
                summary.last_start = requests.start.iloc[-1]
                names = requests.workload.where(requests.workload != "", "default").astype(str)
                output = _fill_unknown_output(requests, names, answered_sums)
                summary.unknown_output += int((~requests.ok).sum())
                summary.grouped += int((requests.attempts > 1).sum())
                summary.answered += int(requests.ok.sum())
                summary.most_attempts = max(summary.most_attempts, int(requests.attempts.max()))
                summary.longest_s = max(summary.longest_s, float(requests.longest_call_s.max()))
                summary.failovers += int(sum(len(set(r.split(ROUTE_SEPARATOR))) > 1
                                             for r in requests.route[requests.attempts > 1]))
                _count_fallbacks(requests.route[requests.attempts > 1], summary.fallback_next)
                for name, count in names.value_counts().items():
                    summary.workloads[name] = summary.workloads.get(name, 0) + int(count)
                starts = pd.to_datetime(requests.start, utc=True)
                table = pa.table({
                    "request_id": pa.array(requests.request_id, type=pa.string()),
                    "arrival_s": pa.array((starts - summary.first_start).dt.total_seconds().to_numpy()),
                    "input_tokens": pa.array(requests.input_tokens.to_numpy(np.int64)),
                    "cached_input_tokens": pa.array(requests.cached_tokens.to_numpy(np.int64)),
                    "output_tokens": pa.array(output),
                    "workload": pa.array(names, type=pa.string()),
                    "tags": pa.array(requests.tags, type=pa.string()),
                    "logged_route": pa.array(requests.route, type=pa.string()),
                    "logged_deployment": pa.array(requests.deployment, type=pa.string()),
                    "logged_ok": pa.array(requests.ok.to_numpy(bool)),
                    "logged_attempts": pa.array(requests.attempts.to_numpy(np.int64)),
                    "logged_latency_s": pa.array((pd.to_datetime(requests.end, utc=True) - starts)
                                                 .dt.total_seconds().to_numpy()),
                    "logged_spend_usd": pa.array(requests.spend_usd.to_numpy(float)),
                    "logged_cache_hit": pa.array(requests.cache_hit.to_numpy(bool)),
                    "logged_output_known": pa.array(requests.ok.to_numpy(bool)),
                })
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema.with_metadata(MARK))
                writer.write_table(table)
                summary.requests += len(requests)
        finally:
            if writer is not None:
                writer.close()
        if summary.requests == 0:
            raise InputError(Problem("no logged calls in the period asked for", file=source))
        _make_ids_unique(tmp)
    return summary


def _make_ids_unique(path: Path) -> None:
    """Give each repeat of a request id ``~2``, ``~3``, ... in arrival order (a call id reused
    past the grouping horizon, or rows of an export that repeat a request_id without a call
    id): trace ids must be unique. The file is rewritten only when an id repeats."""
    if not _hashes_repeat(path):
        return
    table = pq.read_table(path)
    names = table.column("request_id").to_pandas()
    if not names.duplicated().any():  # two ids whose hashes collided
        return
    while names.duplicated().any():  # again if a new name is taken already (an id that ends in ~2)
        repeat = names.groupby(names, sort=False).cumcount()
        names = names.where(repeat == 0, names + "~" + (repeat + 1).astype(str))
    table = table.set_column(table.schema.get_field_index("request_id"), "request_id",
                             pa.array(names, type=pa.string()))
    rewritten = path.with_name(path.name + ".ids")
    pq.write_table(table, rewritten)
    rewritten.replace(path)


def _hashes_repeat(path: Path) -> bool:
    """Whether two request ids of the trace at ``path`` share a 64-bit hash: a streamed check
    holding 8 bytes a request (reading the column whole and counting distinct values took
    200 MB more than the import itself at two million requests). A collision only costs the
    exact check."""
    hashes = [pd.util.hash_array(batch.column(0).to_numpy(zero_copy_only=False), categorize=False)
              for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=["request_id"])]
    every = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    every.sort()
    return bool((every[1:] == every[:-1]).any())


def is_logged_trace(path: Path) -> bool:
    """Whether ``path`` is a trace this module wrote (and a later import may replace)."""
    try:
        return (pq.read_schema(path).metadata or {}).get(b"routesim") == MARK[b"routesim"]
    except (OSError, pa.ArrowException):
        return False


def _fill_unknown_output(requests: pd.DataFrame, names: pd.Series, sums: dict[str, list[int]]) -> np.ndarray:
    """Answer lengths, a failed request's the mean of its workload's answered ones logged before it."""
    output = requests.output_tokens.to_numpy(np.int64).copy()
    ok = requests.ok.to_numpy(bool)
    for name in names.unique():
        mine = (names == name).to_numpy()
        tokens = np.where(ok & mine, output, 0)
        count = (ok & mine).astype(np.int64)
        before_tokens = sums.get(name, [0, 0])[0] + np.cumsum(tokens) - tokens
        before_count = sums.get(name, [0, 0])[1] + np.cumsum(count) - count
        fill = mine & ~ok
        output[fill] = np.round(before_tokens[fill] / np.maximum(before_count[fill], 1)).astype(np.int64)
        sums[name] = [int(before_tokens[-1] + tokens[-1]), int(before_count[-1] + count[-1])]
    return output


def _count_fallbacks(routes: pd.Series, counts: dict) -> None:
    """For each deployment of a route but the last, which deployment was tried next."""
    for route in routes:
        tried = route.split(ROUTE_SEPARATOR)
        for here, after in zip(tried, tried[1:]):
            if here != after:
                following = counts.setdefault(here, {})
                following[after] = following.get(after, 0) + 1
