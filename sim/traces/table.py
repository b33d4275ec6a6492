"""Request traces: a columnar table, its readers and writers, and its description
(synthetic traces are made by ``traces/synthetic.py``).

A trace has ``arrival_s`` (seconds from the start, sorted), ``input_tokens`` and
``output_tokens`` (whole, non-negative), and optionally ``request_id``,
``workload``, ``difficulty``, ``cached_input_tokens``, ``tags`` (the request's
routing tags, as a LiteLLM proxy reads them from its metadata: a list in JSON
lines and Parquet, ``;``-separated text in CSV), ``logged_route`` (in a trace
made from a proxy's logs: the deployments production tried, in order, in the
same two forms; only a policy that replays production reads it) and
``quality.<model>`` (per-request labels in [0, 1] for counterfactual replay of
offline evals). Readers report the first bad
value with its line (text files) or row (Parquet).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import checks as table_checks
from sim.errors import InputError, Problem
from sim.files import check_input_file
from sim.limits import MAX_REQUESTS
from .checks import Locate, csv_rows, found_columns, table_rows, text_lines

if TYPE_CHECKING:  # pandas is imported where a trace file is read: a synthetic run never needs it
    import pandas as pd

REQUIRED = ("arrival_s", "input_tokens", "output_tokens")
OPTIONAL = ("request_id", "workload", "difficulty", "cached_input_tokens", "tags", "logged_route")
TAG_SEPARATOR = ";"  # between tags in a text cell
QUALITY_PREFIX = "quality."
DEFAULT_WORKLOAD = "default"


@dataclass
class Trace:
    """Columns as numpy arrays; ``workload`` holds codes into ``workloads``."""

    arrival_s: np.ndarray  # float64, sorted
    input_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    request_id: np.ndarray  # object (str); NumberedIds when routesim numbered the requests
    workload: np.ndarray  # int32 codes
    workloads: list[str]
    difficulty: np.ndarray | None = None  # float64
    quality_labels: dict[str, np.ndarray] = field(default_factory=dict)  # model -> float64 in [0, 1]
    cached_input_tokens: np.ndarray | None = None  # int64, <= input_tokens: input read from a prompt cache
    tags: np.ndarray | None = None  # int32 codes into ``tag_sets``
    tag_sets: list[tuple[str, ...]] = field(default_factory=list)  # each distinct set of a request's tags
    logged_route: np.ndarray | None = None  # int32 codes into ``logged_routes``
    logged_routes: list[tuple[str, ...]] = field(default_factory=list)  # each distinct route production took

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self) else 0.0

    def workload_names(self) -> np.ndarray:
        return np.asarray(self.workloads, dtype=object)[self.workload]

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        cols = {
            "request_id": np.asarray(self.request_id),
            "arrival_s": self.arrival_s,
            "workload": self.workload_names(),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        if self.difficulty is not None:
            cols["difficulty"] = self.difficulty
        if self.cached_input_tokens is not None:
            cols["cached_input_tokens"] = self.cached_input_tokens
        if self.tags is not None:
            cols["tags"] = np.asarray([TAG_SEPARATOR.join(t) for t in self.tag_sets], dtype=object)[self.tags]
        if self.logged_route is not None:
            cols["logged_route"] = np.asarray([TAG_SEPARATOR.join(r) for r in self.logged_routes],
                                              dtype=object)[self.logged_route]
        for model, labels in self.quality_labels.items():
            cols[QUALITY_PREFIX + model] = labels
        return pd.DataFrame(cols)


# --------------------------------------------------------------------------- reading
#: CSV and JSON-lines traces are read whole into memory; beyond this size, convert them to
#: Parquet in bounded memory with ``routesim trace import`` (which streams in chunks).
MAX_TEXT_TRACE_BYTES = 1 << 30


def read_trace(path: str | Path, fmt: str | None = None) -> Trace:
    """Read a CSV, JSON-lines or Parquet trace and validate it."""
    path = Path(path)
    check_input_file(path)
    fmt = fmt or format_from_suffix(path)
    if fmt not in ("csv", "jsonl", "parquet"):
        raise InputError(Problem(f"unknown trace format '{fmt}' (csv, jsonl, parquet)", file=str(path)))
    if fmt == "csv":
        check_text_file(path, MAX_TEXT_TRACE_BYTES)
        return from_frame(read_csv_table(path), str(path), csv_rows(path))
    if fmt == "jsonl":
        check_text_file(path, MAX_TEXT_TRACE_BYTES)
        import pandas as pd

        lines, rows = [], []
        for number, row in json_lines(path):
            lines.append(number)
            rows.append(row)
        return from_frame(pd.DataFrame(rows), str(path), text_lines(str(path), lines))
    return from_frame(_read_parquet(path), str(path), table_rows(str(path)))


def check_text_file(path: Path, max_bytes: int | None = None) -> None:
    """Refuse, before parsing, a text file holding binary data (a sparse or binary file would
    otherwise be parsed as one enormous line) or, with ``max_bytes``, too large to read whole."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(1 << 20)
    except OSError as exc:
        raise InputError(Problem(f"cannot read: {exc.strerror or exc}", file=str(path))) from None
    if max_bytes is not None and size > max_bytes:
        raise InputError(Problem(f"{size / (1 << 30):.1f} GiB is more than this reader takes ({max_bytes / (1 << 30):g} GiB): "
                                 f"convert it to Parquet in bounded memory with routesim trace import "
                                 f"--format {format_from_suffix(path)} {path} OUT.parquet", file=str(path)))
    nul = head.find(b"\0")
    if nul >= 0:
        raise InputError(Problem(f"binary data (a NUL byte at byte {nul + 1:,}): not a text trace", file=str(path)))


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
        if rows > MAX_REQUESTS:
            raise InputError(Problem(f"{rows:,} rows: more than the {MAX_REQUESTS:,} requests a replication may have; "
                                     "take a window or a sample with routesim trace transform", file=str(path)))
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise InputError(Problem(f"cannot read Parquet: {str(exc).splitlines()[0]}", file=str(path))) from None


def format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    known = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
    if suffix not in known:
        raise InputError(Problem(f"cannot tell the format from '{suffix}'; give format: csv|jsonl|parquet", file=str(path)))
    return known[suffix]


def read_csv_table(path: Path, chunksize: int | None = None):
    """A CSV file as text columns (numbers are parsed by the checks, with line numbers), or
    an iterator of chunks of ``chunksize`` rows."""
    import pandas as pd

    try:
        # Everything as text first: numbers are parsed later, with line numbers on failure.
        return pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, chunksize=chunksize)
    except pd.errors.EmptyDataError:
        raise InputError(Problem("empty file (no header, no rows)", file=str(path))) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(Problem(f"not valid CSV: {str(exc).splitlines()[0]}", file=str(path))) from None


def json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file; a bad line
    (not UTF-8, not JSON, not an object) is an InputError naming it."""
    try:
        with path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue  # blank lines, such as the one many files end with
                try:
                    row = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise InputError(Problem(f"not UTF-8 text (byte {exc.start + 1} of the line)", file=str(path),
                                             line=number)) from None
                except json.JSONDecodeError as exc:
                    raise InputError(Problem(f"not valid JSON: {exc.msg}", file=str(path), line=number)) from None
                if not isinstance(row, dict):
                    raise InputError(Problem("each line must be a JSON object", file=str(path), line=number))
                yield number, row
    except OSError as exc:
        raise InputError(Problem(f"cannot read: {exc.strerror or exc}", file=str(path))) from None


def from_frame(frame: pd.DataFrame, source: str = "trace", locate: Locate | None = None) -> Trace:
    """Validate a table and turn it into a ``Trace``.

    ``locate`` maps a row to where it came from (default: 1-based row numbers of ``source``).
    """
    import pandas as pd

    where = locate or table_rows(source)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(Problem(f"missing required column(s) {', '.join(missing)} ({found_columns(frame.columns)})",
                                 file=source))
    if len(frame) == 0:
        raise InputError(Problem("the trace has no requests", file=source))
    if len(frame) > MAX_REQUESTS:
        raise InputError(Problem(f"{len(frame):,} requests: more than the {MAX_REQUESTS:,} a replication may have",
                                 file=source))

    def numbers(column: str) -> np.ndarray:
        return table_checks.numbers(frame[column], column, where)

    def tokens(column: str) -> np.ndarray:
        return table_checks.token_counts(frame[column], column, where)

    arrival = numbers("arrival_s")
    negative = np.flatnonzero(arrival < 0)
    if len(negative):
        raise InputError(Problem(f"arrival_s: must be >= 0 (got {arrival[negative[0]]})", **where(int(negative[0]))))
    unsorted = np.flatnonzero(np.diff(arrival) < 0)
    if len(unsorted):
        i = int(unsorted[0]) + 1
        raise InputError(Problem(f"arrival_s: not sorted ({arrival[i]} comes after {arrival[i - 1]})", **where(i)))
    input_tokens, output_tokens = tokens("input_tokens"), tokens("output_tokens")

    if "request_id" in frame.columns:
        request_id = _text(frame["request_id"])
        empty = np.flatnonzero(request_id == "")
        if len(empty):
            raise InputError(Problem("request_id: missing", **where(int(empty[0]))))
        duplicated = pd.Series(request_id).duplicated().to_numpy()
        if duplicated.any():
            i = int(np.flatnonzero(duplicated)[0])
            raise InputError(Problem(f"request_id: duplicate '{request_id[i]}'", **where(i)))
    else:
        request_id = default_request_ids(len(frame))

    if "workload" in frame.columns:
        names = _text(frame["workload"])
        names[names == ""] = DEFAULT_WORKLOAD
        codes, uniques = pd.factorize(names, sort=True)
        workload, workloads = codes.astype(np.int32), [str(u) for u in uniques]
    else:
        workload, workloads = np.zeros(len(frame), dtype=np.int32), [DEFAULT_WORKLOAD]

    difficulty = numbers("difficulty") if "difficulty" in frame.columns else None
    cached = None
    if "cached_input_tokens" in frame.columns:
        cached = tokens("cached_input_tokens")
        over = np.flatnonzero(cached > input_tokens)
        if len(over):
            raise InputError(Problem(f"cached_input_tokens: {cached[over[0]]} is more than input_tokens "
                                     f"{input_tokens[over[0]]}", **where(int(over[0]))))
    tags, tag_sets = _tags(frame["tags"], where) if "tags" in frame.columns else (None, [])
    routes, route_lists = (_tags(frame["logged_route"], where, "logged_route", ordered=True)
                           if "logged_route" in frame.columns else (None, []))
    labels = {}
    for column in frame.columns:
        if str(column).startswith(QUALITY_PREFIX):
            values = numbers(column)
            bad = np.flatnonzero((values < 0) | (values > 1))
            if len(bad):
                raise InputError(Problem(f"{column}: must be in [0, 1] (got {values[bad[0]]})", **where(int(bad[0]))))
            labels[str(column)[len(QUALITY_PREFIX):]] = values
    return Trace(arrival, input_tokens, output_tokens, request_id, workload, workloads, difficulty, labels, cached,
                 tags, tag_sets, routes, route_lists)


def _tags(column: pd.Series, where: Locate, name: str = "tags",
          ordered: bool = False) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Each request's tags (or, ``ordered``, its logged route) as a code into the distinct
    sets: a cell is a list of strings or ``;``-separated text; an empty or missing cell is none."""
    sets: dict[tuple[str, ...], int] = {}
    codes = np.empty(len(column), dtype=np.int32)
    for i, cell in enumerate(column.to_numpy(dtype=object)):
        if isinstance(cell, str):
            found = cell.split(TAG_SEPARATOR)
        elif isinstance(cell, (list, tuple, np.ndarray)):
            found = list(cell)
            if not all(isinstance(t, str) for t in found):
                raise InputError(Problem(f"{name}: every item must be text (got {cell!r})", **where(i)))
        elif cell is None or (isinstance(cell, float) and np.isnan(cell)):
            found = []
        else:
            raise InputError(Problem(f"{name}: a list or '{TAG_SEPARATOR}'-separated text (got {cell!r})",
                                     **where(i)))
        stripped = [t.strip() for t in found if t.strip()]
        key = tuple(stripped) if ordered else tuple(sorted(set(stripped)))
        codes[i] = sets.setdefault(key, len(sets))
    return codes, list(sets)


def _text(column: pd.Series) -> np.ndarray:
    """A column as Python strings; a missing cell (NaN, None, null) is the empty string."""
    values = column.astype(object)
    return values.where(values.notna(), "").astype(str).to_numpy(dtype=object)


def default_request_ids(n: int) -> "NumberedIds":
    """r000000, r000001, ...: made when asked for, never held (10 million ids as Python
    strings would take 860 MB, as fixed-width text 320 MB)."""
    return NumberedIds(n, max(6, len(str(n))))


class NumberedIds:
    """The ids ``r`` + the request's number in ``width`` digits, as a read-only column: what
    the code reads of a numpy text column (a length, items, slices, index arrays, iteration,
    ``tolist``, ``np.asarray``), each part made when it is read."""

    def __init__(self, n: int, width: int):
        self.n, self.width = n, width

    def __len__(self) -> int:
        return self.n

    def _text(self, numbers: np.ndarray) -> np.ndarray:
        if not numbers.size:  # numpy's zfill cannot take an empty array
            return np.empty(0, dtype=self.dtype)
        return np.strings.add("r", np.strings.zfill(numbers.astype("U"), self.width))

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            number = int(key) + self.n if key < 0 else int(key)
            if not 0 <= number < self.n:
                raise IndexError(f"request {key} of {self.n}")
            return f"r{number:0{self.width}d}"  # as _text writes it, without numpy's cost for one id
        if isinstance(key, slice):
            return self._text(np.arange(*key.indices(self.n)))
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (self.n,):
                raise IndexError(f"a mask of {key.shape} for {self.n} requests")
            return self._text(np.flatnonzero(key))
        numbers = np.where(key < 0, key + self.n, key).astype(np.int64)
        if numbers.size and (numbers.min() < 0 or numbers.max() >= self.n):
            raise IndexError(f"request numbers outside 0..{self.n - 1}")
        return self._text(numbers)

    def __array__(self, dtype=None, copy=None):
        values = self._text(np.arange(self.n))
        return values if dtype is None else values.astype(dtype)

    def __iter__(self):
        return iter(self.tolist())

    def __eq__(self, other):  # element-wise, as a numpy column compares
        return np.asarray(self) == (np.asarray(other) if isinstance(other, NumberedIds) else other)

    def __ne__(self, other):
        return ~self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # a column, not a value

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(f"U{self.width + 1}")

    def tolist(self) -> list[str]:
        return self._text(np.arange(self.n)).tolist()


# --------------------------------------------------------------------------- writing
def write_trace(trace: Trace, path: str | Path, fmt: str | None = None) -> None:
    """Write as CSV, JSON lines or Parquet (``fmt``, else from the suffix)."""
    path = Path(path)
    frame = trace.to_pandas()
    fmt = fmt or format_from_suffix(path)
    if fmt == "csv":
        frame.to_csv(path, index=False, float_format="%.6f")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, double_precision=15)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


# --------------------------------------------------------------------------- describing
PEAK_WINDOW_S = 60.0  # the peak rate is the busiest window of this length


def peak_rate(arrival_s: np.ndarray, window_s: float = PEAK_WINDOW_S) -> float:
    """Requests per second in the busiest sliding window of ``window_s`` (the
    whole trace's mean when it is shorter than one window)."""
    duration = float(arrival_s[-1] - arrival_s[0]) if len(arrival_s) else 0.0
    if duration <= window_s:
        return len(arrival_s) / max(duration, 1e-9) if len(arrival_s) > 1 else float("nan")
    # For each request, how many arrive in the window that starts with it.
    ends = np.searchsorted(arrival_s, arrival_s + window_s, side="left")
    return float((ends - np.arange(len(arrival_s))).max() / window_s)


def interarrival_cv(arrival_s: np.ndarray) -> float:
    gaps = np.diff(arrival_s)
    return float(gaps.std() / gaps.mean()) if len(gaps) > 1 and gaps.mean() > 0 else float("nan")


def describe(trace: Trace) -> str:
    """A short text summary: size, rate, burstiness and token percentiles per workload."""
    n = len(trace)
    duration = trace.duration_s
    lines = [
        f"requests: {n:,}",
        f"duration: {duration:,.1f} s",
        f"mean rate: {n / duration:.3f} req/s" if duration > 0 else "mean rate: n/a",
        f"peak rate: {peak_rate(trace.arrival_s):.3f} req/s (busiest {PEAK_WINDOW_S:g} s)",
        f"inter-arrival CV: {interarrival_cv(trace.arrival_s):.2f} (1 for Poisson arrivals)",
        "",
        f"{'workload':<16}{'requests':>10}{'in p50':>9}{'in p90':>9}{'in p99':>9}{'out p50':>9}{'out p90':>9}{'out p99':>9}",
    ]
    for code, name in enumerate(trace.workloads):
        rows = trace.workload == code
        if not rows.any():
            continue
        inputs = np.percentile(trace.input_tokens[rows], [50, 90, 99])
        outputs = np.percentile(trace.output_tokens[rows], [50, 90, 99])
        lines.append(f"{name:<16}{int(rows.sum()):>10,}" + "".join(f"{v:>9.0f}" for v in (*inputs, *outputs)))
    return "\n".join(lines)
