"""Request tags in traces (the ``tags`` column): read from each format, kept by the
transforms, and handed to the policy as ``Request.tags``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.errors import InputError
from sim.traces.table import read_trace, write_trace
from sim.traces.transforms import merge, window

EXPECTED = [("free",), ("eu", "paid"), (), ("free",)]  # sorted, without duplicates or blanks


def frame() -> pd.DataFrame:
    return pd.DataFrame({"arrival_s": [0.0, 1.0, 2.0, 3.0], "input_tokens": 10, "output_tokens": 5})


def tags_of(trace) -> list[tuple[str, ...]]:
    return [trace.tag_sets[c] for c in trace.tags]


def test_tags_read_from_csv_jsonl_and_parquet(tmp_path):
    csv = frame().assign(tags=["free", "paid; eu", "", "free;free"])
    csv.to_csv(tmp_path / "t.csv", index=False)
    with (tmp_path / "t.jsonl").open("w") as f:
        for i, tags in enumerate([["free"], ["paid", "eu"], None, ["free", "free"]]):
            f.write(json.dumps({"arrival_s": float(i), "input_tokens": 10, "output_tokens": 5,
                                **({} if tags is None else {"tags": tags})}) + "\n")
    table = pa.Table.from_pandas(frame()).append_column(
        "tags", pa.array([["free"], ["paid", "eu"], [], ["free"]], pa.list_(pa.string())))
    pq.write_table(table, tmp_path / "t.parquet")
    for name in ("t.csv", "t.jsonl", "t.parquet"):
        assert tags_of(read_trace(tmp_path / name)) == EXPECTED, name


def test_a_trace_without_tags_has_none():
    from sim.traces.table import from_frame

    assert from_frame(frame()).tags is None


def test_a_bad_tags_cell_names_its_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"arrival_s": 0, "input_tokens": 1, "output_tokens": 1, "tags": ["a"]}\n'
                    '{"arrival_s": 1, "input_tokens": 1, "output_tokens": 1, "tags": [1, 2]}\n')
    with pytest.raises(InputError) as err:
        read_trace(path)
    problem = err.value.problems[0]
    assert problem.line == 2 and "tags" in problem.message


def test_tags_survive_writing_windows_and_merges(tmp_path):
    trace = read_trace_with_tags(tmp_path)
    write_trace(trace, tmp_path / "back.parquet")
    assert tags_of(read_trace(tmp_path / "back.parquet")) == EXPECTED
    assert tags_of(window(trace, 1.0, 3.5)) == EXPECTED[1:]
    plain = window(trace, 0.0, 10.0)
    plain.tags, plain.tag_sets = None, []
    merged = merge([("a", trace), ("b", plain)])
    by_id = dict(zip(merged.request_id, tags_of(merged)))
    assert [by_id[f"a/{r}"] for r in trace.request_id] == EXPECTED
    assert all(by_id[f"b/{r}"] == () for r in plain.request_id)


def read_trace_with_tags(tmp_path):
    frame().assign(tags=["free", "paid;eu", "", "free"]).to_csv(tmp_path / "t.csv", index=False)
    return read_trace(tmp_path / "t.csv")


def test_litellm_router_serves_each_request_by_its_tags(tmp_path):
    """A trace's tags reach the policy: with tag filtering on, each request is served only by
    the deployments its tags allow (by the rules, worked out here by hand), and a request whose
    tag the group does not know goes on to the fallback group's 'default' deployment."""
    from conftest import BASE, read, run_scenario_data, scenario

    kinds = ["free", "paid", "", "unknown", "!free"]
    allowed = {"free": {"a", "c"}, "paid": {"b", "c"}, "": {"a", "b", "c"}, "unknown": {"e"}, "!free": {"b"}}
    n = 500
    pd.DataFrame({"arrival_s": np.arange(n) * 0.5, "input_tokens": 100, "output_tokens": 20, "workload": "g",
                  "tags": [kinds[i % len(kinds)] for i in range(n)]}).to_csv(tmp_path / "t.csv", index=False)
    model = BASE["models"]["small"]
    data = scenario(replications=1, trace={"path": "t.csv"}, models={m: model for m in "abceF"},
                    policies={"lite": {"kind": "litellm-router", "groups": {"g": ["a", "b", "c"], "h": ["e", "F"]},
                                       "fallbacks": {"g": ["h"]}, "tag_filtering": True,
                                       "tags": {"a": ["free"], "b": ["paid"], "c": ["free", "paid"],
                                                "e": ["default"], "F": ["paid"]}}},
                    baseline="lite")
    requests = read(run_scenario_data(tmp_path, data, report=False))
    requests["kind"] = [kinds[int(r[1:]) % len(kinds)] for r in requests.request_id]
    assert (requests.status == "ok").all()
    served = requests.groupby("kind").model.apply(set).to_dict()
    assert served == allowed
