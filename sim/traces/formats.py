"""Trace importers: public trace formats and generic tables into routesim's
trace table, in bounded memory.

The source is read in chunks (CSV and JSON lines by rows, Parquet by record
batches); each chunk is mapped to routesim's columns, checked with the source's
line numbers, and appended to the output, which is written to a temporary file
and moved into place only when the whole source was good. Sources must be in time
order (every public trace is); arrival times become seconds from the first
request.

Formats:
- ``azure``: Azure LLM inference traces, ``TIMESTAMP,ContextTokens,GeneratedTokens``;
  2023 timestamps have no zone and 7 fractional digits, 2024 ones end in
  ``+00:00``; fractional parts vary in length. Workload: the file's name
  (``AzureLLMInferenceTrace_code.csv`` -> ``code``).
- ``mooncake``: JSON lines ``{timestamp (ms), input_length, output_length,
  hash_ids}``. Timestamps are rounded to 3 s; ``jitter_s`` spreads each request
  uniformly over the following ``jitter_s`` (seeded). ``cached_input_tokens``: the
  request's 512-token prefix blocks already seen earlier in the trace, in tokens
  (what a prompt cache could serve).
- ``burstgpt``: BurstGPT v1 (``Timestamp,Model,Request tokens,Response tokens,
  Total tokens,Log Type``) and v2 (adds ``Session ID,Elapsed time``), located by
  header name. Zero response tokens are failed requests: kept, flagged in
  ``failed_in_source``. Workload from the model, the log type or both.
- ``csv``, ``jsonl``, ``parquet``: any table, with ``columns`` mapping routesim's
  names to the source's and ``time_unit`` saying what the arrival column holds.

It is one streaming pipeline (read a chunk, map it, check it, order it, append
it), kept in one module of about 400 lines so that its single pass reads top to
bottom; the column checks are ``traces/checks.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.files import atomic_file, check_input_file
from sim.errors import InputError, Problem
from sim.limits import MAX_SORT_ROWS
from sim.rng import Stream, generator
from .checks import Locate, csv_rows, found_columns, numbers, table_rows, text_lines, token_counts
from .table import DEFAULT_WORKLOAD, QUALITY_PREFIX, check_text_file, format_from_suffix, json_lines, read_csv_table

FORMATS = ("azure", "mooncake", "burstgpt", "csv", "jsonl", "parquet")
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}  # plus "datetime"
WORKLOAD_SOURCES = ("model", "log_type", "model+log_type")  # BurstGPT
MOONCAKE_BLOCK_TOKENS = 512
_ROUTESIM_COLUMNS = ("arrival_s", "input_tokens", "output_tokens", "request_id", "workload", "difficulty")


@dataclass
class ImportOptions:
    columns: dict[str, str] = field(default_factory=dict)  # routesim column -> source column (generic formats)
    time_unit: str = "s"  # of the generic arrival column: s, ms, us, ns or datetime
    workload: str | None = None  # one label for every request
    workload_from: str = "model"  # BurstGPT: model, log_type or model+log_type
    jitter_s: float | None = None  # Mooncake: spread rounded timestamps over this many seconds
    seed: int = 0
    chunk_rows: int = 200_000
    sort: bool = False  # sort by time in memory (up to MAX_SORT_ROWS) instead of refusing an unsorted source


@dataclass
class ImportSummary:
    requests: int = 0
    duration_s: float = 0.0
    failed_in_source: int = 0
    workloads: dict[str, int] = field(default_factory=dict)


@dataclass
class _Chunk:
    frame: pd.DataFrame  # the source's columns, as read
    locate: Locate  # where each of its rows came from


# --------------------------------------------------------------------------- entry point
def import_trace(source: Path, fmt: str, out: Path, options: ImportOptions | None = None) -> ImportSummary:
    """Convert ``source`` into a routesim trace at ``out`` (format from its suffix)."""
    options = options or ImportOptions()
    source, out = Path(source), Path(out)
    if fmt not in FORMATS:
        raise InputError(Problem(f"unknown import format '{fmt}' (formats: {', '.join(FORMATS)})", file=str(source)))
    check_input_file(source)
    out_format = format_from_suffix(out)
    mapper = _mapper(fmt, source, options)
    summary = ImportSummary()
    with atomic_file(out, "trace") as tmp:
        writer = _Writer(tmp, out_format)
        try:
            ordered = _Ordered(options, source)
            mapped = (mapper(chunk) for chunk in _chunks(source, _reader_format(fmt), options.chunk_rows))
            for part in ([_sorted_whole(mapped, source)] if options.sort else mapped):
                for table in ordered.push(part):
                    writer.write(table, summary)
            for table in ordered.finish():
                writer.write(table, summary)
        finally:
            writer.close()
        if summary.requests == 0:
            raise InputError(Problem("the source has no requests", file=str(source)))
    return summary


def _reader_format(fmt: str) -> str:
    return {"azure": "csv", "burstgpt": "csv", "mooncake": "jsonl"}.get(fmt, fmt)


# --------------------------------------------------------------------------- reading in chunks
def _chunks(path: Path, fmt: str, rows: int) -> Iterator[_Chunk]:
    if fmt == "csv":
        yield from _csv_chunks(path, rows)
    elif fmt == "jsonl":
        yield from _jsonl_chunks(path, rows)
    else:
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=rows)
            first = 0
            for batch in batches:
                yield _Chunk(batch.to_pandas(), table_rows(str(path), first))
                first += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise InputError(Problem(f"cannot read Parquet: {str(exc).splitlines()[0]}", file=str(path))) from None


def _csv_chunks(path: Path, rows: int) -> Iterator[_Chunk]:
    check_text_file(path)  # streamed: any size, but no binary data
    first = 0
    try:
        for frame in read_csv_table(path, chunksize=rows):
            yield _Chunk(frame, csv_rows(path, first))
            first += len(frame)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(Problem(f"not valid CSV: {str(exc).splitlines()[0]}", file=str(path))) from None


def _jsonl_chunks(path: Path, rows: int) -> Iterator[_Chunk]:
    batch: list[dict] = []
    lines: list[int] = []
    for number, row in json_lines(path):
        batch.append(row)
        lines.append(number)
        if len(batch) == rows:
            yield _Chunk(pd.DataFrame(batch), text_lines(str(path), lines))
            batch, lines = [], []
    if batch:
        yield _Chunk(pd.DataFrame(batch), text_lines(str(path), lines))


# --------------------------------------------------------------------------- checking values
class _Check:
    """Turns a chunk's raw columns into checked numbers, naming the line of the first bad value."""

    def __init__(self, chunk: _Chunk, source: Path):
        self.chunk, self.source = chunk, source

    def where(self, i: int) -> dict:
        return self.chunk.locate(i)

    def column(self, name: str) -> pd.Series:
        frame = self.chunk.frame
        if name not in frame.columns:
            raise InputError(Problem(f"missing column '{name}' ({found_columns(frame.columns)})", file=str(self.source)))
        return frame[name]

    def numbers(self, name: str, label: str | None = None) -> np.ndarray:
        return numbers(self.column(name), label or name, self.where)

    def tokens(self, name: str, label: str) -> np.ndarray:
        return token_counts(self.column(name), label, self.where)

    def timestamps(self, name: str) -> np.ndarray:
        """Date-times (with or without a zone; naive ones are UTC) as seconds since the epoch."""
        raw = self.column(name).astype(str)
        parsed = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if len(bad):
            raise InputError(Problem(f"{name}: not a date-time ({raw.iloc[bad[0]]!r})", **self.where(int(bad[0]))))
        return parsed.astype("int64").to_numpy() / 1e9  # nanoseconds -> seconds, float64 (~0.1 us precision)


# --------------------------------------------------------------------------- per format
def _mapper(fmt: str, source: Path, options: ImportOptions):
    """A function from a raw chunk to routesim columns (``time`` in absolute seconds)."""
    if fmt == "azure":
        label = options.workload or _azure_workload(source)

        def azure(chunk: _Chunk) -> tuple[pd.DataFrame, _Check]:
            check = _Check(chunk, source)
            return pd.DataFrame({"time": check.timestamps("TIMESTAMP"),
                                 "input_tokens": check.tokens("ContextTokens", "ContextTokens"),
                                 "output_tokens": check.tokens("GeneratedTokens", "GeneratedTokens"),
                                 "workload": label}), check
        return azure
    if fmt == "mooncake":
        seen: set[int] = set()

        def mooncake(chunk: _Chunk) -> tuple[pd.DataFrame, _Check]:
            check = _Check(chunk, source)
            inputs = check.tokens("input_length", "input_length")
            hits = np.zeros(len(inputs), dtype=np.int64)
            if "hash_ids" in chunk.frame.columns:
                for i, blocks in enumerate(chunk.frame["hash_ids"]):
                    blocks = blocks if isinstance(blocks, list) else []
                    hits[i] = sum(1 for b in blocks if b in seen) * MOONCAKE_BLOCK_TOKENS
                    seen.update(blocks)
            return pd.DataFrame({"time": check.numbers("timestamp") / 1000.0, "input_tokens": inputs,
                                 "output_tokens": check.tokens("output_length", "output_length"),
                                 "workload": options.workload or DEFAULT_WORKLOAD,
                                 "cached_input_tokens": np.minimum(hits, inputs)}), check
        return mooncake
    if fmt == "burstgpt":
        if options.workload_from not in WORKLOAD_SOURCES:
            raise InputError(Problem(f"workload_from must be one of {', '.join(WORKLOAD_SOURCES)}", file=str(source)))

        def burstgpt(chunk: _Chunk) -> tuple[pd.DataFrame, _Check]:
            check = _Check(chunk, source)
            output = check.tokens("Response tokens", "Response tokens")
            frame = pd.DataFrame({"time": check.numbers("Timestamp"),
                                  "input_tokens": check.tokens("Request tokens", "Request tokens"),
                                  "output_tokens": output, "workload": _burstgpt_workload(check, options),
                                  "failed_in_source": output == 0})
            if "Session ID" in chunk.frame.columns:
                frame["session_id"] = chunk.frame["Session ID"].to_numpy()
            return frame, check
        return burstgpt
    return _generic_mapper(source, options)


def _azure_workload(source: Path) -> str:
    name = re.sub(r"^AzureLLMInferenceTrace_?", "", source.stem)
    return name or DEFAULT_WORKLOAD


def _slug(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip().str.lower().str.replace(r"\s+", "-", regex=True)


def _burstgpt_workload(check: _Check, options: ImportOptions):
    if options.workload:
        return options.workload
    parts = {"model": lambda: _slug(check.column("Model")),
             "log_type": lambda: _slug(check.column("Log Type")).str.replace("-log$", "", regex=True)}
    if options.workload_from == "model+log_type":
        return (parts["model"]() + "/" + parts["log_type"]()).to_numpy()
    return parts[options.workload_from]().to_numpy()


def _generic_mapper(source: Path, options: ImportOptions):
    unknown = sorted(set(options.columns) - set(_ROUTESIM_COLUMNS) - {c for c in options.columns
                                                                     if c.startswith(QUALITY_PREFIX)})
    if unknown:
        raise InputError(Problem(f"--column: unknown routesim column(s) {', '.join(unknown)} "
                                 f"(known: {', '.join(_ROUTESIM_COLUMNS)}, quality.<model>)", file=str(source)))
    if options.time_unit not in (*TIME_UNITS, "datetime"):
        raise InputError(Problem(f"time unit '{options.time_unit}' (use s, ms, us, ns or datetime)", file=str(source)))

    def generic(chunk: _Chunk) -> tuple[pd.DataFrame, _Check]:
        check = _Check(chunk, source)
        src = {name: options.columns.get(name, name) for name in _ROUTESIM_COLUMNS}
        if options.time_unit == "datetime":
            time = check.timestamps(src["arrival_s"])
        else:
            time = check.numbers(src["arrival_s"], "arrival_s") * TIME_UNITS[options.time_unit]
        frame = pd.DataFrame({"time": time, "input_tokens": check.tokens(src["input_tokens"], "input_tokens"),
                              "output_tokens": check.tokens(src["output_tokens"], "output_tokens")})
        present = chunk.frame.columns
        if options.workload:
            frame["workload"] = options.workload
        elif src["workload"] in present:
            frame["workload"] = chunk.frame[src["workload"]].astype(str).to_numpy()
        if src["request_id"] in present:
            frame["request_id"] = chunk.frame[src["request_id"]].astype(str).to_numpy()
        if src["difficulty"] in present:
            frame["difficulty"] = check.numbers(src["difficulty"], "difficulty")
        labels = {c: c for c in present if str(c).startswith(QUALITY_PREFIX)}
        labels.update({dst: s for dst, s in options.columns.items() if dst.startswith(QUALITY_PREFIX)})
        for dst, s in labels.items():
            values = check.numbers(s, dst)
            bad = np.flatnonzero((values < 0) | (values > 1))
            if len(bad):
                raise InputError(Problem(f"{dst}: must be in [0, 1] (got {values[bad[0]]})", **check.where(int(bad[0]))))
            frame[dst] = values
        return frame, check
    return generic


# --------------------------------------------------------------------------- order, jitter, ids
def _sorted_whole(mapped: Iterator[tuple[pd.DataFrame, _Check]], source: Path) -> tuple[pd.DataFrame, _Check]:
    """Every chunk in memory, stably sorted by time (``--sort``): for sources whose clock
    restarts or whose rows are out of order. Refused beyond ``MAX_SORT_ROWS`` rows."""
    frames, rows = [], 0
    for frame, _ in mapped:
        rows += len(frame)
        if rows > MAX_SORT_ROWS:
            raise InputError(Problem(f"--sort holds the whole trace in memory, and this one has more than "
                                     f"{MAX_SORT_ROWS:,} rows: sort the source by time first", file=str(source)))
        frames.append(frame)
    whole = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"time": []})
    whole = whole.sort_values("time", kind="stable", ignore_index=True)
    return whole, _Check(_Chunk(whole, table_rows(f"{source} (sorted)")), source)


class _Ordered:
    """Checks that time never goes back, makes times relative to the first
    request, applies seeded jitter, and hands out rows in arrival order.

    With jitter a row may overtake rows of the next chunk, so rows whose jittered
    time is not below the chunk's last source time wait for the next chunk."""

    def __init__(self, options: ImportOptions, source: Path):
        self.jitter_s = options.jitter_s
        self.rng = generator(options.seed, 0, Stream.IMPORT) if options.jitter_s else None
        self.source = source
        self.t0: float | None = None
        self.last_time = -np.inf
        self.waiting: pd.DataFrame | None = None
        self.next_id = 0

    def push(self, mapped: tuple[pd.DataFrame, _Check]) -> Iterator[pd.DataFrame]:
        frame, check = mapped
        if len(frame) == 0:
            return
        time = frame["time"].to_numpy()
        back = np.flatnonzero(np.diff(np.concatenate([[self.last_time], time])) < 0)
        if len(back):
            i = int(back[0])
            raise InputError(Problem(f"time goes back ({time[i]:.6f} s after {self.last_time if i == 0 else time[i - 1]:.6f} s): "
                                     "the source must be sorted by time (--sort sorts it in memory, up to "
                                     f"{MAX_SORT_ROWS:,} rows)", **check.where(i)))
        self.last_time = float(time[-1])
        if self.t0 is None:
            self.t0 = float(time[0])
        frame = frame.assign(arrival_s=time - self.t0).drop(columns="time")
        if self.rng is not None:
            frame["arrival_s"] += self.rng.uniform(0.0, self.jitter_s, len(frame))
        if self.waiting is not None:
            frame = pd.concat([self.waiting, frame], ignore_index=True)
        frame = frame.sort_values("arrival_s", kind="stable", ignore_index=True)
        if self.rng is None:
            self.waiting = None
            yield self._with_ids(frame)
            return
        safe = frame["arrival_s"].to_numpy() < self.last_time - self.t0
        self.waiting = frame[~safe]
        if safe.any():
            yield self._with_ids(frame[safe])

    def finish(self) -> Iterator[pd.DataFrame]:
        if self.waiting is not None and len(self.waiting):
            yield self._with_ids(self.waiting)

    def _with_ids(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.reset_index(drop=True)
        if "request_id" not in frame.columns:
            frame.insert(0, "request_id", [f"r{i:08d}" for i in range(self.next_id, self.next_id + len(frame))])
        self.next_id += len(frame)
        if "workload" not in frame.columns:
            frame["workload"] = DEFAULT_WORKLOAD
        first = ["request_id", "arrival_s", "workload", "input_tokens", "output_tokens"]
        return frame[[c for c in first if c in frame.columns] + [c for c in frame.columns if c not in first]]


# --------------------------------------------------------------------------- writing
class _Writer:
    """Appends chunks to one CSV, JSON-lines or Parquet file."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self.parquet: pq.ParquetWriter | None = None
        self.started = False

    def write(self, frame: pd.DataFrame, summary: ImportSummary) -> None:
        summary.requests += len(frame)
        summary.duration_s = float(frame["arrival_s"].iloc[-1])
        if "failed_in_source" in frame.columns:
            summary.failed_in_source += int(frame["failed_in_source"].sum())
        for name, count in frame["workload"].value_counts().items():
            summary.workloads[name] = summary.workloads.get(name, 0) + int(count)
        if self.fmt == "parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table.cast(self.parquet.schema))
        elif self.fmt == "csv":
            frame.to_csv(self.path, mode="a" if self.started else "w", header=not self.started, index=False,
                         float_format="%.6f")
        else:
            with self.path.open("a" if self.started else "w", encoding="utf-8") as f:
                f.write(frame.to_json(orient="records", lines=True, double_precision=15))
        self.started = True

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
            self.parquet = None
