"""Issue 10: trace files that overflow, lie about their types or are not traces at all
are exit 2 naming the file, the line (or row) and what is wrong; messy real files import."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, scenario, write_scenario
from sim.errors import InputError
from sim.traces.table import read_trace

GOOD = {"arrival_s": [0.0, 1.0, 2.0], "input_tokens": [10, 20, 30], "output_tokens": [5, 6, 7]}


def _refused(path, *fragments):
    with pytest.raises(InputError) as caught:
        read_trace(path)
    text = str(caught.value)
    for fragment in fragments:
        assert fragment in text, text
    return text


@pytest.mark.parametrize("value", ["1e30", "99999999999999999999", "10000001"])
def test_token_counts_beyond_the_limit_are_refused_with_their_line(tmp_path, value):
    path = tmp_path / "t.csv"
    path.write_text(f"arrival_s,input_tokens,output_tokens\n0,10,5\n1,{value},5\n")
    _refused(path, f"t.csv:3: input_tokens: must be a whole number from 0 to 10,000,000 (got '{value}')")


def test_a_parquet_uint64_above_2_63_is_refused_not_wrapped(tmp_path):
    path = tmp_path / "t.parquet"
    table = pa.table({"arrival_s": [0.0, 1.0], "input_tokens": pa.array([10, 2**63 + 5], type=pa.uint64()),
                      "output_tokens": [1, 1]})
    pq.write_table(table, path)
    _refused(path, "t.parquet: row 2: input_tokens: must be a whole number from 0 to 10,000,000")


def test_the_limit_itself_is_accepted(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,input_tokens,output_tokens\n0,10000000,0\n")
    assert read_trace(path).input_tokens.tolist() == [10_000_000]


@pytest.mark.parametrize("column, values, message", [
    ("arrival_s", pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]), "arrival_s: holds datetime64"),
    ("arrival_s", pd.to_timedelta([0, 1, 2], unit="s"), "arrival_s: holds timedelta64"),
    ("input_tokens", [True, False, True], "input_tokens: holds booleans (true/false), not numbers"),
    ("output_tokens", [[1, 2], [3], [4]], "output_tokens: not a number (ndarray"),
])
def test_parquet_columns_of_the_wrong_kind_are_refused(tmp_path, column, values, message):
    path = tmp_path / "t.parquet"
    pd.DataFrame({**GOOD, column: values}).to_parquet(path)
    _refused(path, f"t.parquet: row 1: {message}")


def test_jsonl_booleans_are_not_token_counts(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"arrival_s": 0, "input_tokens": 3, "output_tokens": 1}\n'
                    '{"arrival_s": 1, "input_tokens": true, "output_tokens": 1}\n')
    _refused(path, "t.jsonl:2: input_tokens: not a number (bool True)")


def test_jsonl_with_an_invalid_utf8_byte_names_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"arrival_s": 0, "input_tokens": 3, "output_tokens": 1}\n'
                     b'{"arrival_s": 1, "input_tokens": 3, "output_tokens": 1, "workload": "caf\xe9"}\n')
    _refused(path, "t.jsonl:2: not UTF-8 text")


def test_jsonl_blank_lines_are_skipped_and_lines_stay_true(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"arrival_s": 0, "input_tokens": 3, "output_tokens": 1}\n\n'
                    '{"arrival_s": 1, "input_tokens": 4, "output_tokens": 1}\n\n')
    assert read_trace(path).input_tokens.tolist() == [3, 4]
    path.write_text('{"arrival_s": 0, "input_tokens": 3, "output_tokens": 1}\n\n\n'
                    '{"arrival_s": 1, "input_tokens": -4, "output_tokens": 1}\n')
    _refused(path, "t.jsonl:4: input_tokens:")


def test_csv_errors_after_a_multi_line_field_name_the_true_line(tmp_path):
    rows = ["arrival_s,input_tokens,output_tokens,workload"]  # line 1
    rows += [f"{i},10,5,chat" for i in range(8)]  # lines 2-9
    rows += ['8,10,5,"a workload name\nspread over\nthree lines"']  # lines 10-12
    rows += ["9,10,5,chat"]  # line 13
    rows += ["10,-1,5,chat"]  # line 14: the bad row (row 11 of the data)
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    _refused(path, "t.csv:14: input_tokens:")


def test_a_folder_or_a_device_is_not_a_trace(tmp_path):
    _refused(tmp_path, f"{tmp_path}: is a folder, not a file")
    with pytest.raises(InputError) as caught:
        read_trace("/proc/self/mem", "csv")
    assert "/proc/self/mem: cannot read" in str(caught.value)


def test_a_huge_sparse_csv_is_refused_at_once_by_its_size(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.truncate(2 * 10**9)  # 2 GB of nothing: sparse, no disk used
    _refused(path, "huge.csv: 1.9 GiB is more than this reader takes (1 GiB)", "routesim trace import --format csv")


def test_a_binary_csv_is_refused_before_parsing(tmp_path):
    path = tmp_path / "zeros.csv"
    path.write_bytes(b"arrival_s,input_tokens,output_tokens\n" + b"\0" * 10_000_000)
    _refused(path, "zeros.csv: binary data (a NUL byte at byte 38)")


def _import(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "sim", "trace", "import", *map(str, args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_trace_whose_clock_restarts_imports_with_sort(tmp_path):
    # Two sorted segments: the clock restarts halfway, as in one public trace.
    source = tmp_path / "two.csv"
    source.write_text("ts,input_tokens,output_tokens\n100,1,1\n105,2,1\n110,3,1\n0,4,1\n7,5,1\n")
    out = tmp_path / "out.csv"
    proc = _import(tmp_path, "--format", "csv", source, out, "--column", "arrival_s=ts")
    assert proc.returncode == 2
    assert "two.csv:5: time goes back" in proc.stderr and "--sort sorts it in memory" in proc.stderr
    assert not out.exists()
    proc = _import(tmp_path, "--format", "csv", source, out, "--column", "arrival_s=ts", "--sort")
    assert proc.returncode == 0, proc.stderr
    imported = pd.read_csv(out)
    expected = pd.read_csv(source).sort_values("ts", kind="stable")
    assert imported.arrival_s.tolist() == (expected.ts - expected.ts.min()).astype(float).tolist()
    assert imported.input_tokens.tolist() == expected.input_tokens.tolist() == [4, 5, 1, 2, 3]


def test_timestamps_stored_as_strings_of_numbers_import(tmp_path):
    source = tmp_path / "s.jsonl"
    source.write_text('{"t": "82", "i": "10", "o": 5}\n{"t": "90.5", "i": 3, "o": "7"}\n\n')
    out = tmp_path / "out.parquet"
    proc = _import(tmp_path, "--format", "jsonl", source, out, "--column", "arrival_s=t", "--column",
                   "input_tokens=i", "--column", "output_tokens=o", "--time-unit", "s")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(out)
    assert table.arrival_s.tolist() == [0.0, 8.5]
    assert table.input_tokens.tolist() == [10, 3] and table.output_tokens.tolist() == [5, 7]


@pytest.mark.parametrize("command", [
    ["validate", "absent.yaml"], ["run", "absent.yaml"], ["trace", "inspect", "absent.csv", "--no-png"],
    ["trace", "import", "--format", "csv", "absent.csv", "out.csv"], ["gate", "absent-run", "--min-savings", "0.1"],
    ["report", "absent-run"], ["import", "litellm", "absent.yaml", "-o", "s.yaml"],
    ["trace", "labels", "absent.csv", "out.csv", "--model", "a=b"]])
def test_every_file_not_found_is_one_whole_line(tmp_path, command):
    proc = subprocess.run([sys.executable, "-m", "sim", *command], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.endswith("\n") and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: absent") and "not found" in lines[0], lines


def test_a_file_that_is_not_a_trace_is_not_quoted_back(tmp_path):
    path = tmp_path / "os-release.csv"
    path.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n')
    text = _refused(path, "missing required column(s) arrival_s, input_tokens, output_tokens",
                    "none of which looks like a column name")
    assert "Debian" not in text and "PRETTY_NAME" not in text


def test_a_near_miss_header_is_listed_to_help(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arrival,input_tokens,output_tokens\n0,1,1\n")
    _refused(path, "missing required column(s) arrival_s (found: arrival, input_tokens, output_tokens)")


# --------------------------------------------------------------------------- a proxy's log database (issue 25)
SEGMENT = st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789", min_size=6, max_size=8)
SPECIAL = st.sampled_from(["@", "/", "%", "%2", "%zz", ":", "?", "&", "#", "=", " ", "+", "%40", "%2F", "'", '"', "é"])


@st.composite
def passwords(draw):
    """Passwords of distinctive segments joined by the characters that break URL parsing."""
    segments = draw(st.lists(SEGMENT, min_size=1, max_size=3, unique=True))
    joiners = draw(st.lists(SPECIAL, min_size=len(segments) - 1, max_size=len(segments) - 1))
    text = segments[0] + "".join(j + s for j, s in zip(joiners, segments[1:]))
    return text + draw(st.sampled_from(["", "@", "/", "%"])), segments


URL_FORMS = {
    "raw user info": "postgresql://routesim:{raw}@127.0.0.1:1/litellm",
    "encoded user info": "postgresql://routesim:{encoded}@127.0.0.1:1/litellm",
    "raw parameter": "postgresql://routesim@127.0.0.1:1/litellm?password={raw}",
    "encoded parameter": "postgres://127.0.0.1:1/litellm?sslmode=disable&password={encoded}",
    "libpq cannot parse": "postgresql://routesim:{encoded}@[::1/litellm",
    "bad port": "postgresql://routesim:{encoded}@127.0.0.1:99999/litellm",
    "bad option": "postgresql://routesim:{encoded}@127.0.0.1:1/litellm?sslmode=bogus",
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=passwords(), form=st.sampled_from(sorted(URL_FORMS)))
def test_a_database_password_is_never_printed(tmp_path, password, form):
    """Whatever the password holds and wherever the URL puts it, no piece of it appears in the
    error (nothing listens on port 1: libpq's own connection error is scrubbed too), nor in the
    printable form the scenario would carry."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (the logs extra)")
    from urllib.parse import quote

    from sim.ingest.database_url import printable
    from sim.ingest.litellm_logs import import_litellm_logs

    text, segments = password
    url = URL_FORMS[form].format(raw=text, encoded=quote(text, safe=""))
    with pytest.raises(InputError) as caught:
        import_litellm_logs(url, tmp_path / "s.yaml", tmp_path / "t.parquet")
    shown = str(caught.value) + "\n" + printable(url)
    for segment in segments:
        assert segment not in shown, (url, shown)
    assert not (tmp_path / "s.yaml").exists() and not (tmp_path / "t.parquet").exists()


def test_a_password_that_libpq_would_misread_is_refused_before_connecting(tmp_path):
    """'u:pa/ss@host' is host 'u', port 'pa', database 'ss@host' to libpq: refused with the fix,
    exit 2, the URL not shown; an encoded one reaches the server (refused there, still masked)."""
    for url in ("postgresql://routesim:Kx7p2Q/m4Tz9W@127.0.0.1:1/litellm",
                "postgresql://routesim:Kx7p2Q@m4Tz9W@127.0.0.1:1/litellm"):
        done = subprocess.run([sys.executable, "-m", "sim", "import", "litellm-logs", url, "-o", "s.yaml",
                               "--trace", "t.parquet"], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "percent-encoded (%40, %2F)" in done.stderr and "the URL is not shown" in done.stderr
        assert "Kx7p2Q" not in done.stderr + done.stdout and "m4Tz9W" not in done.stderr + done.stdout
        assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "sim", "import", "litellm-logs",
                           "postgresql://routesim:Kx7p2Q%2Fm4Tz9W@127.0.0.1:1/litellm", "-o", "s.yaml",
                           "--trace", "t.parquet"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "postgresql://127.0.0.1:1/litellm: cannot read LiteLLM_SpendLogs" in done.stderr
    assert "Kx7p2Q" not in done.stderr and "m4Tz9W" not in done.stderr


# --------------------------------------------------------------------------- a proxy's log rows (issue 25)
def _import_log(tmp_path, calls: pd.DataFrame, fmt: str = "csv", **options):
    """Write ``calls`` as an export and import it: (the trace as pandas, None) or (None, the error)."""
    from sim.ingest.litellm_logs import import_litellm_logs

    export = tmp_path / f"export.{fmt}"
    if fmt == "csv":
        calls.to_csv(export, index=False)
    elif fmt == "parquet":
        calls.to_parquet(export)
    else:
        calls.to_json(export, orient="records", lines=True, date_format="iso")
    try:
        import_litellm_logs(str(export), tmp_path / "s.yaml", tmp_path / "t.parquet", **options)
    except InputError as exc:
        assert not (tmp_path / "s.yaml").exists() and not (tmp_path / "t.parquet").exists()
        return None, str(exc)
    return pd.read_parquet(tmp_path / "t.parquet"), None


TIME_CELLS = st.sampled_from([
    "2025-06-01T00:00:05", "2025-06-01 00:00:05+00:00", "1500-01-01T00:00:00", "2300-01-01T00:00:00",
    "9999-12-31T23:59:59", "0001-01-01", "yesterday", "", "1748736005", "1748736005.5", 1748736005, 1748736005.25,
    1748736005000, 1748736005000000, 1748736005000000000, -5, 0, 2**70, float("nan"), True])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cell=TIME_CELLS, fmt=st.sampled_from(["csv", "parquet", "jsonl"]))
def test_a_logged_time_is_read_as_written_or_refused_naming_its_row(tmp_path, cell, fmt):
    """Text is ISO 8601, a number seconds since the epoch; anything outside 2000-2200 (an epoch
    in milliseconds, nanoseconds since 1970, years pandas cannot hold) is exit 2 naming the row."""
    from test_spend_logs import logged_calls

    calls = logged_calls()
    calls["startTime"] = calls.startTime.astype(str).astype(object)
    calls["endTime"] = pd.Timestamp("2100-01-01").isoformat()  # after any start that is read
    calls["completionStartTime"] = None
    calls.loc[5, "startTime"] = cell
    for path in tmp_path.iterdir():
        path.unlink()
    try:
        trace, error = _import_log(tmp_path, calls, fmt)
    except Exception:  # noqa: BLE001 - the writer may refuse a mixed column; such an export cannot exist
        if fmt != "parquet":
            raise
        return
    if isinstance(cell, bool) or cell in ("", "yesterday") or (isinstance(cell, float) and cell != cell):
        expected = None
    elif isinstance(cell, (int, float)) or cell.replace(".", "").isdigit():
        seconds = float(cell)
        expected = pd.Timestamp(seconds, unit="s", tz="UTC") if 946_684_800 <= seconds < 7_258_118_400 else None
    else:
        expected = pd.Timestamp(cell, tz="UTC") if cell[:4] > "1999" and cell[:4] < "2200" else None
    if expected is not None and pd.Timestamp("2000-01-01", tz="UTC") <= expected < pd.Timestamp("2200-01-01", tz="UTC"):
        if expected < pd.Timestamp(calls.startTime[4], tz="UTC"):
            assert error is not None and "request_id chatcmpl-0005: starts before the call" in error
            return
        assert error is None, error
        first = pd.Timestamp(calls.startTime[0], tz="UTC")
        assert trace.arrival_s.iloc[-1] == pytest.approx((expected - first).total_seconds(), abs=1e-3)
    elif fmt == "jsonl" and error is not None and "cannot read the export: Value is too big" in error:
        pass  # pandas' JSON reader refuses the whole file for a number past 64 bits: exit 2 naming it
    else:
        assert error is not None and "request_id chatcmpl-0005: startTime: " in error, (cell, error)


TOKEN_CELLS = st.sampled_from([0, 7, 10_000_000, 10_000_001, -1, 2**63, 2**64 + 5, 9223372036854775808000, 1.5,
                               "12", "1e30", "x", "", float("inf")])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cell=TOKEN_CELLS, column=st.sampled_from(["prompt_tokens", "completion_tokens"]))
def test_a_logged_token_count_is_whole_and_in_range_or_refused(tmp_path, cell, column):
    from test_spend_logs import logged_calls

    calls = logged_calls().astype({column: object})
    calls.loc[2, column] = cell
    for path in tmp_path.iterdir():
        path.unlink()
    trace, error = _import_log(tmp_path, calls)
    value = float(cell) if isinstance(cell, (int, float)) or (cell and cell.lstrip("-").replace("e", "").isdigit()) \
        else None
    if value is not None and 0 <= value <= 10_000_000 and value == int(value):
        assert error is None, error
        column_out = "input_tokens" if column == "prompt_tokens" else "output_tokens"
        assert trace[column_out].iloc[2] == int(value) and (trace[column_out] >= 0).all()
    else:
        assert error is not None and f"request_id chatcmpl-0002: {column}: " in error, (cell, error)


def test_a_call_id_is_one_request_only_within_ten_minutes(tmp_path):
    """Rows sharing a call id within 10 minutes of the first are one request; the call id seen
    again 40 minutes later is a new request (its id made unique with ~2); rows without a call id
    are a request each, even when they repeat a request_id."""
    import json

    from test_spend_logs import logged_calls

    calls = logged_calls()
    t0 = pd.Timestamp(calls.startTime[0])
    starts = [t0, t0 + pd.Timedelta(seconds=30), t0 + pd.Timedelta(minutes=9), t0 + pd.Timedelta(minutes=40),
              t0 + pd.Timedelta(minutes=41), t0 + pd.Timedelta(minutes=42)]
    calls["startTime"] = starts
    calls["endTime"] = [s + pd.Timedelta(seconds=2) for s in starts]
    calls["completionStartTime"] = None
    calls["metadata"] = [json.dumps({"litellm_call_id": c}) for c in ["call-a", "call-a", "call-a", "call-a", "", ""]]
    calls.loc[4:5, "request_id"] = "same-id"
    trace, error = _import_log(tmp_path, calls)
    assert error is None, error
    assert trace.request_id.tolist() == ["call-a", "call-a~2", "same-id", "same-id~2"]
    assert trace.logged_attempts.tolist() == [3, 1, 1, 1]
    assert trace.arrival_s.tolist() == [(s - t0).total_seconds() for s in (starts[0], starts[3], starts[4], starts[5])]
    from sim.traces.table import read_trace

    assert len(read_trace(tmp_path / "t.parquet").arrival_s) == 4  # unique ids: the trace reader takes it


def test_ids_whose_hashes_collide_are_left_as_they_are(tmp_path, monkeypatch):
    """The streamed check for repeated ids compares 64-bit hashes; when every hash collides
    (hash_array made constant) the exact check finds the ids distinct and keeps them."""
    import numpy as np

    from test_spend_logs import logged_calls

    from pathlib import Path

    import sim.ingest.log_trace

    monkeypatch.setattr(pd.util, "hash_array", lambda values, **_: np.zeros(len(values), np.uint64))
    written = []  # every Parquet file the trace writer writes: a rewrite of the ids would show here
    real_write = sim.ingest.log_trace.pq.write_table
    monkeypatch.setattr(sim.ingest.log_trace.pq, "write_table", lambda table, where, **kw: (written.append(Path(where)),
                                                                                      real_write(table, where, **kw)))
    trace, error = _import_log(tmp_path, logged_calls())
    assert error is None, error
    assert trace.request_id.tolist() == [f"chatcmpl-{k:04d}" for k in range(6)]
    assert not [p for p in written if p.name.endswith(".ids")]  # the exact check found none: no rewrite


def test_a_first_token_before_the_start_is_refused_naming_the_row(tmp_path):
    from test_spend_logs import logged_calls

    calls = logged_calls()
    calls.loc[2, "completionStartTime"] = calls.startTime[2] - pd.Timedelta(seconds=1)
    _, error = _import_log(tmp_path, calls)
    assert "request_id chatcmpl-0002: completionStartTime is before startTime" in error


def test_a_spend_that_is_not_usd_is_refused_and_nothing_is_written(tmp_path):
    """A spend of $1.7 billion on a call (a timestamp pasted into the column) fits a price past
    the scenario's limit: exit 2 naming the deployment, neither the trace nor the scenario left."""
    from test_spend_logs import logged_calls

    calls = logged_calls()
    calls.loc[0, "spend"] = 1_748_736_000
    _, error = _import_log(tmp_path, calls)  # asserts that neither file was written
    assert "deployment dep-0: its spend fits a price of $" in error
    assert "past the $1,000,000 a scenario allows: is the log's spend column in USD per call?" in error
    assert list(tmp_path.iterdir()) == [tmp_path / "export.csv"]  # no partial file either


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "cannot read the export: No columns to parse from file"),
    (lambda p: p.write_text("request_id,startTime,endTime,prompt_tokens,completion_tokens,spend\n"),
     "no logged calls in the period asked for"),
])
def test_an_empty_export_is_exit_2(tmp_path, make, message):
    from sim.ingest.litellm_logs import import_litellm_logs

    make(tmp_path / "export.csv")
    with pytest.raises(InputError, match=message):
        import_litellm_logs(str(tmp_path / "export.csv"), tmp_path / "s.yaml", tmp_path / "t.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_metadata_nested_100000_deep_is_exit_2(tmp_path, fmt):
    from test_spend_logs import logged_calls

    calls = logged_calls()
    calls.loc[1, "metadata"] = '{"a":' * 100_000 + "1" + "}" * 100_000
    if fmt == "jsonl":  # nested in the line itself, not as text
        export = tmp_path / "export.jsonl"
        lines = calls.drop(columns="metadata").to_json(orient="records", lines=True, date_format="iso").splitlines()
        lines[1] = lines[1][:-1] + ', "metadata": ' + calls.metadata[1] + "}"
        export.write_text("\n".join(lines) + "\n")
        from sim.ingest.litellm_logs import import_litellm_logs

        with pytest.raises(InputError, match="export.jsonl: cannot read the export"):
            import_litellm_logs(str(export), tmp_path / "s.yaml", tmp_path / "t.parquet")
        return
    _, error = _import_log(tmp_path, calls, fmt)
    assert f"export.{fmt}: request_id chatcmpl-0001: metadata: nested too deeply to read" in error


def test_options_are_checked_before_the_log_is_read(tmp_path):
    from test_spend_logs import logged_calls

    for option, message in [({"latency_kind": "bogus"}, "--latency bogus: one of quantiles, lognormal"),
                            ({"workload": "bogus"}, "--workload bogus: one of model_group")]:
        _, error = _import_log(tmp_path, logged_calls(), **option)
        assert message in error
        assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]


def test_an_unreadable_export_is_named_as_the_input(tmp_path):
    """Root without the capabilities that bypass file modes (setpriv), as a user would be."""
    import shutil

    from test_spend_logs import logged_calls

    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop the file-mode override")
    logged_calls().to_csv(tmp_path / "export.csv", index=False)
    (tmp_path / "export.csv").chmod(0)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    done = subprocess.run(drop + [sys.executable, "-m", "sim", "import", "litellm-logs", "export.csv", "-o", "s.yaml",
                                  "--trace", "t.parquet"], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: export.csv: cannot read the export: ") and "Permission denied" in done.stderr
    assert "t.parquet" not in done.stderr


def test_a_candidate_policy_file_is_blamed_for_its_own_problems(tmp_path, cli):
    path = write_scenario(tmp_path, scenario(replications=1))
    (tmp_path / "candidates.yaml").write_text("7:\n  kind: static\n  model: big\n")
    result = cli("backtest", path, "--policy", tmp_path / "candidates.yaml")
    assert result.exit_code == 2
    assert f"{tmp_path / 'candidates.yaml'}:1: policy name 7: a policy's name is text" in result.output
