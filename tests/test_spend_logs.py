"""LiteLLM proxy logs (LiteLLM_SpendLogs) read from a real PostgreSQL, created from the schema
the pinned litellm package ships, and from exports of the same table: the same rows either way,
in LiteLLM's own formats, streamed in bounded memory, bad rows named by request_id."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from conftest import ROOT

T0 = datetime(2026, 11, 2, 9, 0, 0)  # naive, as the proxy stores it (UTC)


def _needs_litellm() -> None:
    """The table's schema comes from the installed litellm package (found, not imported: importing
    litellm takes seconds)."""
    import importlib.util

    if importlib.util.find_spec("litellm") is None:
        pytest.skip("litellm is not installed (the conformance extra)")


def logged_calls() -> pd.DataFrame:
    """Six calls as a LiteLLM proxy logs them: two groups, a failure with its error metadata, a
    cache hit, a streamed answer with its first-token time, one without."""
    rows = []
    for k in range(6):
        start = T0 + timedelta(seconds=10 * k)
        failed = k == 3
        rows.append({
            "request_id": f"chatcmpl-{k:04d}", "call_type": "acompletion", "api_key": "hashed", "spend":
            0.0 if failed or k == 4 else 1e-6 * (100 * k + 3), "total_tokens": 150 + k, "prompt_tokens": 100 + k,
            "completion_tokens": 0 if failed else 50, "startTime": start,
            "endTime": start + timedelta(seconds=2.5 if not failed else 0.2),
            "request_duration_ms": 2500, "completionStartTime": None if k in (3, 5) else start + timedelta(seconds=0.7),
            "model": "gpt-5" if k % 2 == 0 else "claude-sonnet-4-5", "model_id": f"dep-{k % 2}",
            "model_group": "smart" if k < 4 else "cheap", "custom_llm_provider": "openai" if k % 2 == 0 else "anthropic",
            "api_base": "", "user": "", "metadata": json.dumps(
                {"error_information": {"error_code": "503", "error_class": "ServiceUnavailableError"}} if failed else {}),
            "cache_hit": "True" if k == 4 else "False", "cache_key": "", "request_tags": json.dumps(["prod"]),
            "team_id": "team-a", "end_user": "", "status": "failure" if failed else "success"})
    return pd.DataFrame(rows)


def _insert(url: str, frame: pd.DataFrame) -> None:
    import psycopg

    from sim.ingest.spend_logs import TABLE, ddl_from_prisma, litellm_schema

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP TABLE IF EXISTS "{TABLE}"')
        for statement in ddl_from_prisma(litellm_schema()):
            connection.execute(statement)
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        with connection.cursor().copy(f'COPY "{TABLE}" ({columns}) FROM STDIN') as copy:
            for row in frame.itertuples(index=False):
                copy.write_row([None if v is None or v is pd.NaT else v for v in row])


def test_the_table_is_the_one_litellm_ships():
    _needs_litellm()
    from sim.ingest.spend_logs import SOURCE_COLUMNS, ddl_from_prisma, litellm_schema

    ddl = ddl_from_prisma(litellm_schema())[0]
    assert ddl.startswith('CREATE TABLE "LiteLLM_SpendLogs"') and 'PRIMARY KEY ("request_id")' in ddl
    for column in SOURCE_COLUMNS:  # every column routesim reads is one LiteLLM writes
        assert f'"{column}" ' in ddl, column
    assert '"startTime" TIMESTAMP(3) NOT NULL' in ddl and '"completionStartTime" TIMESTAMP(3),' in ddl
    assert '"metadata" JSONB' in ddl and '"spend" DOUBLE PRECISION DEFAULT 0.0 NOT NULL' in ddl
    assert '"created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP NOT NULL' in ddl


def test_the_database_and_its_exports_read_the_same(postgres_url, tmp_path):
    _needs_litellm()
    from sim.ingest.spend_logs import Window, read_spend_logs

    calls = logged_calls()
    _insert(postgres_url, calls)
    from_db = pd.concat(read_spend_logs(postgres_url, chunk_rows=4), ignore_index=True)
    assert list(from_db.request_id) == list(calls.request_id)  # in start-time order
    # What each field means, against the rows as written.
    assert (from_db.start == pd.to_datetime(calls.startTime, utc=True)).all()
    assert from_db.first_token.isna().tolist() == [k in (3, 5) for k in range(6)]
    assert from_db.ok.tolist() == [k != 3 for k in range(6)] and from_db.error[3] == "503"
    assert from_db.cache_hit.tolist() == [k == 4 for k in range(6)]
    assert from_db.model_group.tolist() == ["smart"] * 4 + ["cheap"] * 2
    assert from_db.deployment.tolist() == [f"dep-{k % 2}" for k in range(6)]
    assert from_db.spend_usd.tolist() == calls.spend.tolist()
    # The same rows from a CSV, a Parquet and a JSON-lines export of the table.
    exports = {"csv": tmp_path / "logs.csv", "parquet": tmp_path / "logs.parquet", "jsonl": tmp_path / "logs.jsonl"}
    calls.to_csv(exports["csv"], index=False)
    calls.to_parquet(exports["parquet"], index=False)
    calls.to_json(exports["jsonl"], orient="records", lines=True, date_format="iso")
    for kind, path in exports.items():
        read = pd.concat(read_spend_logs(path, chunk_rows=4), ignore_index=True)
        pd.testing.assert_frame_equal(read, from_db, check_dtype=False, obj=kind)
    # A time window, the same from the database and from an export.
    window = Window(T0 + timedelta(seconds=15), T0 + timedelta(seconds=45))
    for source in (postgres_url, exports["csv"]):
        assert [r for c in read_spend_logs(source, window) for r in c.request_id] == [
            "chatcmpl-0002", "chatcmpl-0003", "chatcmpl-0004"]
    aware = Window(datetime(2026, 11, 2, 10, 0, 15, tzinfo=timezone(timedelta(hours=1))))  # 09:00:15 UTC
    for source in (postgres_url, exports["parquet"]):
        assert len(pd.concat(read_spend_logs(source, aware))) == 4


@pytest.mark.parametrize("field, value, message", [
    ("startTime", "yesterday", "request_id chatcmpl-0002: startTime: not a time ('yesterday')"),
    ("prompt_tokens", "-5", "request_id chatcmpl-0002: prompt_tokens: not a number >= 0 ('-5')"),
    ("request_id", "", "row 3: request_id: missing"),
])
def test_a_bad_row_is_named(tmp_path, field, value, message):
    from sim.errors import InputError
    from sim.ingest.spend_logs import read_spend_logs

    calls = logged_calls().astype({field: object})
    calls.loc[2, field] = value
    calls.to_csv(tmp_path / "logs.csv", index=False)
    with pytest.raises(InputError) as error:
        list(read_spend_logs(tmp_path / "logs.csv"))
    assert str(error.value.problems[0]) == f"{tmp_path / 'logs.csv'}: {message}"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_null_request_id_is_missing_in_every_format(tmp_path, fmt):
    """A JSON null or a Parquet null stays missing through pandas' text dtype: the row is
    refused, not written into the trace as an id ``nan``."""
    from sim.errors import InputError
    from sim.ingest.spend_logs import read_spend_logs

    calls = logged_calls().astype({"request_id": object})
    calls.loc[2, "request_id"] = None
    export = tmp_path / f"logs.{fmt}"
    if fmt == "jsonl":
        calls.to_json(export, orient="records", lines=True, date_format="iso")
    else:
        calls.to_parquet(export)
    with pytest.raises(InputError) as error:
        list(read_spend_logs(export))
    assert str(error.value.problems[0]) == f"{export}: row 3: request_id: missing"


def test_millions_of_rows_stream_in_bounded_memory(postgres_url):
    """Two million logged calls, made in the database itself, read in chunks: the reader's
    resident memory grows by far less than the table's size."""
    _needs_litellm()
    import psycopg

    from sim.ingest.spend_logs import TABLE

    _insert(postgres_url, logged_calls().iloc[:0])
    rows = 2_000_000
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        for k in (0, 2, 3, 4, 5):  # indexes the read does not use (it orders by startTime, request_id): a quicker fill
            connection.execute(f'DROP INDEX "{TABLE}_idx_{k}"')
        connection.execute(f'''INSERT INTO "{TABLE}" ("request_id", "call_type", "spend", "total_tokens",
            "prompt_tokens", "completion_tokens", "startTime", "endTime", "completionStartTime", "model",
            "model_group", "status")
            SELECT 'r' || n, 'acompletion', 0.00001 * (n % 7), 150, 100 + n % 50, 50,
                   TIMESTAMP '2026-11-02 09:00:00' + n * INTERVAL '10 milliseconds',
                   TIMESTAMP '2026-11-02 09:00:02' + n * INTERVAL '10 milliseconds',
                   TIMESTAMP '2026-11-02 09:00:00.5' + n * INTERVAL '10 milliseconds',
                   'gpt-5', 'smart', 'success'
            FROM generate_series(1, {rows}) AS n''')
    code = (f"import resource, sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from sim.ingest.spend_logs import read_spend_logs\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "n = tokens = 0\n"
            f"for chunk in read_spend_logs({postgres_url!r}, chunk_rows=50_000):\n"
            "    n += len(chunk); tokens += int(chunk.input_tokens.sum())\n"
            "print(n, tokens, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    n, tokens, grown_mb = map(int, done.stdout.split())
    assert n == rows and tokens == sum(100 + k % 50 for k in range(1, rows + 1))
    # Read whole, the rows would take over 1 GB as Python objects and 200 MB as the finished frame;
    # chunks of 50,000 keep the reader's growth to a small multiple of one chunk.
    assert grown_mb < 120, grown_mb
