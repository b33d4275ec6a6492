"""A LiteLLM proxy's logged calls as a routesim trace: read back by routesim's own trace reader,
with what production did kept beside; an export out of start order is refused by request_id."""

from __future__ import annotations

import pandas as pd
import pytest

from test_spend_logs import logged_calls


def _normalized(frame: pd.DataFrame, size: int = 4):
    from sim.ingest.spend_logs import normalize

    rows = normalize(frame, "logs.csv")
    return [rows.iloc[i:i + size] for i in range(0, len(rows), size)]


def test_the_trace_reads_back_as_the_log_says(tmp_path):
    from sim.ingest.log_trace import write_logged_trace
    from sim.traces.table import read_trace

    calls = logged_calls()
    summary = write_logged_trace(_normalized(calls), tmp_path / "trace.parquet")
    assert summary.requests == summary.rows == 6 and summary.workloads == {"smart": 4, "cheap": 2}
    trace = read_trace(tmp_path / "trace.parquet")  # routesim's own reader and checks
    starts = pd.to_datetime(calls.startTime)
    assert list(trace.arrival_s) == list((starts - starts.iloc[0]).dt.total_seconds())
    assert list(trace.input_tokens) == list(calls.prompt_tokens)
    # The failed call (3) logged no answer: it gets the mean answer of its group's earlier requests.
    assert list(trace.output_tokens) == [50, 50, 50, 50, 50, 50] and calls.completion_tokens[3] == 0
    assert list(trace.workload_names()) == list(calls.model_group)
    assert list(trace.request_id) == list(calls.request_id)
    logged = pd.read_parquet(tmp_path / "trace.parquet")
    assert logged.logged_ok.tolist() == logged.logged_output_known.tolist() == [k != 3 for k in range(6)]
    assert logged.logged_route.tolist() == list(calls.model_id) and set(logged.logged_attempts) == {1}
    assert logged.logged_deployment.tolist() == [d if k != 3 else "" for k, d in enumerate(calls.model_id)]
    expected_latency = (pd.to_datetime(calls.endTime) - starts).dt.total_seconds()
    assert logged.logged_latency_s.tolist() == pytest.approx(expected_latency.tolist())
    assert logged.logged_spend_usd.tolist() == list(calls.spend)
    by_team = write_logged_trace(_normalized(calls), tmp_path / "teams.parquet", workload="team")
    assert by_team.workloads == {"team-a": 6}
    # The request tags (a JSON list in the table) are the trace's routing tags, and may be the workload.
    assert trace.tag_sets == [("prod",)] and set(trace.tags) == {0}
    by_tag = write_logged_trace(_normalized(calls), tmp_path / "tags.parquet", workload="tag")
    assert by_tag.workloads == {"prod": 6}


def test_an_export_out_of_order_is_refused_and_leaves_nothing(tmp_path):
    from sim.errors import InputError
    from sim.ingest.log_trace import write_logged_trace

    calls = logged_calls()
    calls.loc[5, "startTime"] = calls.startTime[1]  # logged after calls that started later
    calls.loc[5, "endTime"] = calls.endTime[1]
    with pytest.raises(InputError) as error:
        write_logged_trace(_normalized(calls), tmp_path / "trace.parquet", source="logs.csv")
    assert str(error.value.problems[0]).startswith("logs.csv: request_id chatcmpl-0005: starts before the call")
    assert list(tmp_path.iterdir()) == []  # no partial trace
    # Across two chunks too.
    calls = logged_calls()
    calls.loc[4, "startTime"] = calls.startTime[0]
    calls.loc[4, "endTime"] = calls.endTime[0]
    with pytest.raises(InputError, match="chatcmpl-0004"):
        write_logged_trace(_normalized(calls, size=4), tmp_path / "trace.parquet")


def test_the_rows_of_one_request_are_grouped_by_call_id_across_chunks(tmp_path):
    """A fallback is logged as a second row with the first's litellm_call_id, with another
    request's row between them and a chunk boundary too: one trace request, both rows in it."""
    import json

    from sim.ingest.log_trace import write_logged_trace

    calls = logged_calls()
    calls.loc[3, "metadata"] = json.dumps({"litellm_call_id": "call-x", "original_model_group": "smart",
                                           "error_information": {"error_code": "503"}})
    calls.loc[5, "metadata"] = json.dumps({"litellm_call_id": "call-x", "original_model_group": "smart"})
    calls.loc[5, "model_id"] = "dep-0"  # the fallback deployment
    calls.loc[5, "startTime"] = calls.endTime[3] + pd.Timedelta(seconds=0.1)  # tried once 3 failed...
    calls = calls.sort_values("startTime", kind="stable").reset_index(drop=True)  # ...before call 4 started
    summary = write_logged_trace(_normalized(calls, size=2), tmp_path / "trace.parquet")
    assert (summary.requests, summary.rows, summary.grouped) == (5, 6, 1)
    assert summary.fallback_next == {"dep-1": {"dep-0": 1}}
    logged = pd.read_parquet(tmp_path / "trace.parquet").set_index("request_id")
    x = logged.loc["call-x"]
    rows = calls[calls.request_id.isin(["chatcmpl-0003", "chatcmpl-0005"])]
    assert x.logged_route == "dep-1;dep-0" and x.logged_deployment == "dep-0" and x.logged_attempts == 2 and bool(x.logged_ok)
    assert x.logged_spend_usd == rows.spend.sum() and x.workload == "smart"
    assert x.logged_latency_s == pytest.approx((rows.endTime.max() - rows.startTime.min()).total_seconds())
    assert x.output_tokens == 50 and x.input_tokens == 103  # the answer's tokens, the first row's prompt
