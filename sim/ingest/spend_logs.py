"""A LiteLLM proxy's request log (its ``LiteLLM_SpendLogs`` table) read as routesim
needs it: from the proxy's PostgreSQL (read-only, streamed by time window) or
from an export of the table (CSV, Parquet, JSON lines), in chunks of bounded size.

Each chunk is a DataFrame of the columns below, one row per logged call, with
times as UTC timestamps. The table's schema is ``model LiteLLM_SpendLogs`` in
``litellm/proxy/schema.prisma``; ``ddl_from_prisma`` turns that block into the
PostgreSQL table the proxy creates (the tests build their database with it).

A row that cannot be read (no request_id, a time that is not one, negative
tokens) is an input error naming its request_id and field.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from .database_url import check_database_url, is_database_url, printable, scrub
from sim.errors import InputError, Problem
from sim.limits import MAX_TOKENS

TABLE = "LiteLLM_SpendLogs"
#: The table's columns routesim reads, as the proxy names them.
SOURCE_COLUMNS = ("request_id", "startTime", "endTime", "completionStartTime", "model", "model_id", "model_group",
                  "custom_llm_provider", "api_base", "prompt_tokens", "completion_tokens", "spend", "cache_hit",
                  "status", "metadata", "request_tags", "team_id", "end_user", "session_id")
REQUIRED = ("request_id", "startTime", "endTime", "prompt_tokens", "completion_tokens", "spend")
CHUNK_ROWS = 50_000  # rows per chunk: ~15 MB as a DataFrame, ~150 MB while psycopg hands over its tuples
_TIMES = ("startTime", "endTime", "completionStartTime")
#: What routesim takes out of each row's metadata JSON, as the database query returns it: the error
#: (error_information's code, or its class), the proxy's call id (shared by the rows of one client
#: request: its retries and fallbacks), the model group the client asked for before any fallback, and
#: the prompt tokens read from the provider's prompt cache (usage_object.prompt_tokens_details).
METADATA_COLUMNS = ("error_code", "call_id", "original_group", "cached_tokens")
TAGS_TEXT = "request_tags_text"  # request_tags as JSON text, as the database query returns it

#: Prisma scalar types -> PostgreSQL, as prisma migrate maps them.
_PRISMA_TYPES = {"String": "TEXT", "Int": "INTEGER", "BigInt": "BIGINT", "Float": "DOUBLE PRECISION",
                 "Boolean": "BOOLEAN", "DateTime": "TIMESTAMP(3)", "Json": "JSONB", "Decimal": "DECIMAL(65,30)"}


def ddl_from_prisma(schema_text: str, model: str = TABLE) -> list[str]:
    """The statements ``prisma migrate`` runs for one model in PostgreSQL: ``CREATE TABLE`` (quoted
    identifiers, ``@map`` names, NOT NULL unless optional, literal and ``now()`` defaults, the
    ``@id`` as primary key) and a ``CREATE INDEX`` per ``@@index``."""
    block = re.search(rf"^model\s+{re.escape(model)}\s*\{{(.*?)^\}}", schema_text, re.S | re.M)
    if block is None:
        raise ValueError(f"no model {model} in the schema")
    columns, key, indexes = [], None, []
    for line in block.group(1).splitlines():
        line = line.split("//", 1)[0].strip()
        index = re.match(r"@@index\(\[([^\]]*)\]", line)
        if index:
            indexes.append([c.strip() for c in index.group(1).split(",")])
        if not line or line.startswith("@@"):
            continue
        name, kind = line.split()[:2]
        base = kind.rstrip("?[]")
        if base not in _PRISMA_TYPES:
            continue  # a relation to another model, not a column
        mapped = re.search(r'@map\("([^"]+)"\)', line)
        column = f'"{mapped.group(1) if mapped else name}" {_PRISMA_TYPES[base]}'
        default = re.search(r"@default\s*\((.*)\)", line)
        if default:
            value = default.group(1).split(")")[0] + (")" if default.group(1).startswith("now(") else "")
            if value == "now()":
                column += " DEFAULT CURRENT_TIMESTAMP"
            elif value.startswith('"'):
                column += " DEFAULT '" + value.strip('"').replace("'", "''") + "'" + ("::jsonb" if base == "Json" else "")
            elif re.fullmatch(r"-?[0-9.]+|true|false", value):
                column += f" DEFAULT {value}"
        columns.append(column + ("" if kind.endswith("?") else " NOT NULL"))
        if "@id" in line:
            key = name
    if key is not None:
        columns.append(f'PRIMARY KEY ("{key}")')
    statements = [f'CREATE TABLE "{model}" (\n  ' + ",\n  ".join(columns) + "\n)"]
    for k, fields in enumerate(indexes):
        quoted = ", ".join('"' + field + '"' for field in fields)
        statements.append(f'CREATE INDEX "{model}_idx_{k}" ON "{model}" ({quoted})')
    return statements


def litellm_schema() -> str:
    """The schema.prisma of the installed litellm package (the conformance extra pins it)."""
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        raise InputError(Problem("the litellm package is not installed (pip install -e '.[conformance]')"))
    return (Path(spec.origin).parent / "proxy" / "schema.prisma").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Window:
    """The logged period to read: calls that started in [since, until)."""

    since: datetime | None = None
    until: datetime | None = None


def read_spend_logs(source: str | Path, window: Window = Window(),
                    chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The log's calls that started within ``window``, in chunks in start-time order (a
    database is read in that order; an export in its own, which LiteLLM writes by time)."""
    if isinstance(source, str) and is_database_url(source):
        yield from _from_database(source, window, chunk_rows)
        return
    path = Path(source)
    if not path.is_file():
        raise InputError(Problem("file not found" if not path.exists() else "not a file", file=str(path)))
    try:
        yield from _from_export(path, window, chunk_rows)
    except (ValueError, OSError, RecursionError) as exc:  # pandas' and pyarrow's parse errors, nesting too deep
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(Problem(f"cannot read the export: {detail}", file=str(path))) from None


def _from_export(path: Path, window: Window, chunk_rows: int) -> Iterator[pd.DataFrame]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        chunks = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows)
    elif suffix in (".jsonl", ".ndjson"):
        chunks = pd.read_json(path, lines=True, dtype=False, chunksize=chunk_rows)
    elif suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        chunks = (batch.to_pandas() for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows))
    else:
        raise InputError(Problem(f"cannot tell the format from '{suffix}': an export of {TABLE} as .csv, .jsonl or "
                                 ".parquet, or a postgresql:// URL", file=str(path)))
    for chunk in chunks:
        rows = normalize(chunk, str(path))
        if window.since is not None:
            rows = rows[rows.start >= _utc(window.since)]
        if window.until is not None:
            rows = rows[rows.start < _utc(window.until)]
        if len(rows):
            yield rows.reset_index(drop=True)


def _from_database(url: str, window: Window, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A server-side cursor over the window, ordered by start time, in a read-only transaction."""
    check_database_url(url)  # before anything connects: a URL libpq would misread is refused, unshown
    import psycopg
    where, params = [], []
    # The proxy stores UTC without a zone: compare with naive UTC, whatever the session's time zone.
    if window.since is not None:
        where.append('"startTime" >= %s')
        params.append(_utc(window.since).tz_convert(None).to_pydatetime())
    if window.until is not None:
        where.append('"startTime" < %s')
        params.append(_utc(window.until).tz_convert(None).to_pydatetime())
    # The error is taken out of the metadata JSON by the server: decoding a JSON document per row in
    # Python took two thirds of the read.
    plain = [c for c in SOURCE_COLUMNS if c not in ("metadata", "request_tags")]
    # Times as seconds since the epoch (a float per cell, not a datetime object): a third of the memory.
    columns = ", ".join(f'EXTRACT(EPOCH FROM "{c}")::float8' if c in _TIMES else f'"{c}"' for c in plain) + (
        ", COALESCE(\"metadata\"->'error_information'->>'error_code', "
        "\"metadata\"->'error_information'->>'error_class', ''), "
        "COALESCE(\"metadata\"->>'litellm_call_id', ''), COALESCE(\"metadata\"->>'original_model_group', ''), "
        "COALESCE(\"metadata\"->'usage_object'->'prompt_tokens_details'->>'cached_tokens', ''), "
        "COALESCE(\"request_tags\"::text, '')")
    query = (f'SELECT {columns} FROM "{TABLE}"' + (f" WHERE {' AND '.join(where)}" if where else "")
             + ' ORDER BY "startTime", "request_id"')
    where_from = printable(url)  # never print a password
    try:
        with psycopg.connect(url) as connection:
            connection.read_only = True
            with connection.cursor(name="routesim_spend_logs") as cursor:  # server-side: memory stays bounded
                cursor.itersize = chunk_rows
                cursor.execute(query, params)
                while rows := cursor.fetchmany(chunk_rows):
                    yield normalize(pd.DataFrame(rows, columns=plain + list(METADATA_COLUMNS) + [TAGS_TEXT]),
                                    where_from)
    except psycopg.Error as exc:  # libpq's words may quote the URL, or the host a misread password became
        message = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
        raise InputError(Problem(f"cannot read {TABLE}: {message}", file=where_from)) from None


#: The times a log's rows may carry: what lies outside is a misread column (milliseconds taken for
#: seconds, nanoseconds since 1970) or a typo, and would overflow pandas' arithmetic past 2262.
EARLIEST, LATEST = pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")


def _times(values: pd.Series, field: str, ids: pd.Series, source: str, required: bool) -> pd.Series:
    """UTC timestamps. Text is ISO 8601 (naive taken as UTC: the proxy writes UTC) or, like every
    number (the database query's epoch floats, an export's integer column), seconds since the
    epoch. An empty cell is NaT where the field may be missing, an error where it may not; a
    time outside 2000-2200 is an error (milliseconds read as seconds, or a typo)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        present = values.notna()
        parsed = pd.to_datetime(values, utc=True)
        numbers = pd.Series(np.nan, index=values.index)
    else:
        if pd.api.types.is_bool_dtype(values):
            values = values.astype(object)
        if pd.api.types.is_numeric_dtype(values):  # the database query's floats, an export's numbers
            present, numbers = values.notna(), values.astype(float)
        else:
            present = values.notna() & (values.astype(str).str.strip() != "")
            numbers = pd.to_numeric(values.where(present, None), errors="coerce")
        plausible = numbers.between(EARLIEST.timestamp(), LATEST.timestamp())
        seconds = pd.to_datetime((numbers.where(plausible) * 1000.0).round(), unit="ms", utc=True)
        text = values.where(present & numbers.isna(), None)
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed") if text.notna().any() else \
            pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
        parsed = parsed.where(numbers.isna(), seconds)
    outside = parsed.notna() & ((parsed < EARLIEST) | (parsed >= LATEST))
    unread = (parsed.isna() & present) | (~present if required else False)
    bad = (outside | unread | (present & numbers.notna() & parsed.isna())).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        if numbers.notna().iloc[i]:
            why = ("a number is read as seconds since the epoch, and this is not between 2000 and 2200 "
                   "(milliseconds? write seconds, or ISO 8601 text)")
        elif outside.iloc[i]:
            why = "not between 2000 and 2200"
        else:
            why = "not a time"
        shown = values.iloc[i].item() if hasattr(values.iloc[i], "item") else values.iloc[i]
        raise InputError(Problem(f"request_id {ids.iloc[i]}: {field}: {why} ({shown!r})", file=source))
    return parsed.dt.as_unit("us")  # one resolution whatever the source


def _utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _token_counts(values: pd.Series, field: str, ids: pd.Series, source: str) -> np.ndarray:
    """Whole numbers from 0 to MAX_TOKENS (beyond it a count is a damaged row, and past 2^63 it
    would wrap negative)."""
    numbers = _numbers(values, field, ids, source)
    bad = (numbers > MAX_TOKENS) | (numbers != np.floor(numbers))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(Problem(f"request_id {ids.iloc[i]}: {field}: not a whole number of tokens from 0 to "
                                 f"{MAX_TOKENS:,} ({values.iloc[i]!r})", file=source))
    return numbers.astype(np.int64)


def _numbers(values: pd.Series, field: str, ids: pd.Series, source: str) -> np.ndarray:
    numbers = pd.to_numeric(values.replace("", np.nan), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(numbers) | (numbers < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(Problem(f"request_id {ids.iloc[i]}: {field}: not a number >= 0 ({values.iloc[i]!r})",
                                 file=source))
    return numbers


def _from_metadata(metadata) -> tuple[str, str, str, str]:
    """(error, call id, original model group, cached prompt tokens) from a row's metadata (a dict
    or its JSON text), as text: what ``METADATA_COLUMNS`` holds when the database reads it."""
    if metadata is None or metadata == "" or (isinstance(metadata, float) and np.isnan(metadata)):
        return "", "", "", ""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            return "", "", "", ""
    if not isinstance(metadata, dict):
        return "", "", "", ""
    info = metadata.get("error_information")
    error = str(info.get("error_code") or info.get("error_class") or "") if isinstance(info, dict) else ""
    usage = metadata.get("usage_object")
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return (error, str(metadata.get("litellm_call_id") or ""), str(metadata.get("original_model_group") or ""),
            "" if cached is None else str(cached))


def _tags(cell) -> str:
    """A row's request_tags (a JSON list, as text or parsed) as sorted ``;``-separated text."""
    if isinstance(cell, str):
        if not cell.strip():
            return ""
        try:
            cell = json.loads(cell)
        except json.JSONDecodeError:
            return ""
    if isinstance(cell, (list, tuple, np.ndarray)):
        return ";".join(sorted({str(t).strip() for t in cell if str(t).strip()}))
    return ""


def _tag_column(frame: pd.DataFrame) -> pd.Series:
    column = TAGS_TEXT if TAGS_TEXT in frame.columns else "request_tags" if "request_tags" in frame.columns else None
    if column is None:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].map(lambda cell: _tags_text(cell) if isinstance(cell, str) else _tags(cell))


@functools.lru_cache(maxsize=4096)
def _tags_text(cell: str) -> str:
    """``_tags`` of JSON text: most rows share a handful of tag lists, each parsed once."""
    return _tags(cell)


def normalize(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The columns routesim reads, checked: request_id, call_id (the client request the row is an
    attempt of; empty when not logged), start, end, first_token (UTC; NaT when the log has none), model_group (that served
    or failed the call), requested_group (the one the client asked for), deployment, provider,
    input_tokens, cached_tokens (of them, read from the prompt cache; 0 when not logged),
    output_tokens, spend_usd, cache_hit, ok, error, team_id, end_user, tags (the request_tags,
    sorted, ``;``-separated)."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(Problem(f"not an export of {TABLE}: missing column(s) {', '.join(missing)}", file=source))
    absent = frame["request_id"].isna()  # pandas' text dtype keeps a missing cell missing through astype(str)
    ids = frame["request_id"].astype(object).where(~absent, "").astype(str)
    empty = absent | ids.str.strip().isin(["", "None", "nan"])
    if empty.any():
        raise InputError(Problem(f"row {int(np.flatnonzero(empty.to_numpy())[0]) + 1}: request_id: missing",
                                 file=source))

    def text(column: str) -> pd.Series:
        if column not in frame.columns:
            return pd.Series([""] * len(frame), index=frame.index)
        return frame[column].astype(object).where(frame[column].notna(), "").astype(str)

    model_group = text("model_group").where(text("model_group") != "", text("model"))
    deployment = text("model_id").where(text("model_id") != "", text("model"))
    status = text("status").str.lower()
    if METADATA_COLUMNS[0] in frame.columns:  # taken out of the metadata by the database
        error, call_id, original_group, cached = (text(c) for c in METADATA_COLUMNS)
    elif "metadata" in frame.columns:
        fields = []
        for rid, metadata in zip(ids, frame["metadata"]):
            try:
                fields.append(_from_metadata(metadata))
            except RecursionError:  # JSON nested deeper than Python reads
                raise InputError(Problem(f"request_id {rid}: metadata: nested too deeply to read", file=source)) \
                    from None
        error, call_id, original_group, cached = (pd.Series([f[k] for f in fields], index=frame.index, dtype=object)
                                                  for k in range(4))
    else:
        error = call_id = original_group = cached = pd.Series("", index=frame.index)
    input_tokens = _token_counts(frame["prompt_tokens"], "prompt_tokens", ids, source)
    # Unknown cached tokens are none; more than the prompt is a bad row.
    cached_tokens = _token_counts(cached.where(cached != "", "0"), "metadata.usage_object.prompt_tokens_details."
                                  "cached_tokens", ids, source)
    over = np.flatnonzero(cached_tokens > input_tokens)
    if len(over):
        raise InputError(Problem(f"request_id {ids.iloc[over[0]]}: cached_tokens {cached_tokens[over[0]]} is more "
                                 f"than prompt_tokens {input_tokens[over[0]]}", file=source))
    out = pd.DataFrame({
        "request_id": ids,
        "call_id": call_id,  # empty when not logged: the row is a request of its own (log_trace)
        "start": _times(frame["startTime"], "startTime", ids, source, required=True),
        "end": _times(frame["endTime"], "endTime", ids, source, required=True),
        "first_token": (_times(frame["completionStartTime"], "completionStartTime", ids, source, required=False)
                        if "completionStartTime" in frame.columns
                        else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")),
        "model_group": model_group,
        "requested_group": original_group.where(original_group != "", model_group),
        "deployment": deployment,
        "provider": text("custom_llm_provider"),
        "input_tokens": input_tokens,
        "cached_tokens": cached_tokens,
        "output_tokens": _token_counts(frame["completion_tokens"], "completion_tokens", ids, source),
        "spend_usd": _numbers(frame["spend"], "spend", ids, source),
        "cache_hit": text("cache_hit").str.lower().isin(["true", "1", "t"]),
        # LiteLLM logs "success" or "failure"; older proxies leave it empty for successes.
        "ok": (status != "failure") & (error == ""),
        "error": error,
        "team_id": text("team_id"),
        "end_user": text("end_user"),
        "tags": _tag_column(frame),
    })
    before = np.flatnonzero((out.end < out.start).to_numpy())
    if len(before):
        raise InputError(Problem(f"request_id {ids.iloc[before[0]]}: endTime is before startTime", file=source))
    early = np.flatnonzero((out.first_token < out.start).to_numpy())  # NaT compares False: none logged
    if len(early):
        raise InputError(Problem(f"request_id {ids.iloc[early[0]]}: completionStartTime is before startTime "
                                 "(the first token cannot come before the call)", file=source))
    return out
