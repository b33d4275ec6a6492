"""Trace readers, validation with line numbers, and the synthetic generator."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.errors import InputError
from sim.scenario.schema.traffic import SyntheticTrace
from sim.traces.synthetic import generate
from sim.traces.table import read_trace, write_trace

from conftest import SHARED_DATA


def frame(n=50, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "request_id": [f"id{i}" for i in range(n)],
        "arrival_s": np.sort(rng.uniform(0, 100, n)),
        "workload": rng.choice(["a", "b"], n),
        "input_tokens": rng.integers(0, 1000, n),
        "output_tokens": rng.integers(0, 1000, n),
        "difficulty": rng.normal(size=n),
        "quality.m1": rng.integers(0, 2, n).astype(float),
    })


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_round_trip_each_format(tmp_path, suffix):
    original = frame()
    path = tmp_path / f"t.{suffix}"
    if suffix == "csv":
        original.to_csv(path, index=False)
    elif suffix == "jsonl":
        original.to_json(path, orient="records", lines=True, double_precision=15)
    else:
        original.to_parquet(path, index=False)
    trace = read_trace(path)
    assert len(trace) == len(original)
    np.testing.assert_allclose(trace.arrival_s, original.arrival_s, rtol=1e-12)
    assert (trace.input_tokens == original.input_tokens).all()
    assert (trace.output_tokens == original.output_tokens).all()
    assert list(trace.request_id) == list(original.request_id)
    assert list(trace.workload_names()) == list(original.workload)
    np.testing.assert_allclose(trace.difficulty, original.difficulty, rtol=1e-12)
    np.testing.assert_array_equal(trace.quality_labels["m1"], original["quality.m1"])
    # and back out through our writer
    again = tmp_path / f"again.{suffix}"
    write_trace(trace, again)
    assert len(read_trace(again)) == len(original)


def csv_with(tmp_path, rows: list[str], header="arrival_s,input_tokens,output_tokens"):
    path = tmp_path / "t.csv"
    path.write_text("\n".join([header] + rows) + "\n")
    return path


@pytest.mark.parametrize("rows, header, expected", [
    (["0,1,1", "2,1,1", "1,1,1"], None, "t.csv:4: arrival_s: not sorted (1.0 comes after 2.0)"),
    (["0,1,1", "-1,1,1"], None, "t.csv:3: arrival_s: must be >= 0"),
    (["0,1,1", "1,1.5,1"], None, "t.csv:3: input_tokens: must be a whole number from 0 to 10,000,000 (got '1.5')"),
    (["0,1,1", "1,1,-4"], None, "t.csv:3: output_tokens: must be a whole number from 0 to 10,000,000 (got '-4')"),
    (["0,1,1", "1,abc,1"], None, "t.csv:3: input_tokens: not a finite number ('abc')"),
    (["0,1,1", ",1,1"], None, "t.csv:3: arrival_s: not a finite number"),
    (["0,1"], "arrival_s,input_tokens", "missing required column(s) output_tokens"),
    (["0,1,1,x", "1,1,1,x"], "arrival_s,input_tokens,output_tokens,request_id", "t.csv:3: request_id: duplicate 'x'"),
    (["0,1,1,1.5"], "arrival_s,input_tokens,output_tokens,quality.m", "t.csv:2: quality.m: must be in [0, 1]"),
])
def test_bad_rows_are_named(tmp_path, rows, header, expected):
    path = csv_with(tmp_path, rows, header or "arrival_s,input_tokens,output_tokens")
    with pytest.raises(InputError) as info:
        read_trace(path)
    assert expected in str(info.value)


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    lines = [json.dumps({"arrival_s": 0, "input_tokens": 1, "output_tokens": 1}), "{not json"]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"t.jsonl:2: not valid JSON"):
        read_trace(path)
    path.write_text("\n".join([lines[0], json.dumps({"arrival_s": 1, "input_tokens": -2, "output_tokens": 1})]) + "\n")
    with pytest.raises(InputError, match=r"t.jsonl:2: input_tokens: must be a whole number"):
        read_trace(path)


def test_parquet_errors_name_the_row(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"arrival_s": [0.0, 2.0, 1.0], "input_tokens": [1, 1, 1], "output_tokens": [1, 1, 1]}).to_parquet(path)
    with pytest.raises(InputError, match=r"t.parquet: row 3: arrival_s: not sorted"):
        read_trace(path)


def test_unknown_suffix_needs_a_format(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("arrival_s,input_tokens,output_tokens\n0,1,1\n")
    with pytest.raises(InputError, match="give format"):
        read_trace(path)
    assert len(read_trace(path, "csv")) == 1


def test_generator_matches_its_specification():
    spec = SyntheticTrace.model_validate({
        "duration_s": 2000, "rate_per_s": 10,
        "workloads": {"a": 0.7, "b": {"share": 0.3, "output_tokens": {"median": 20, "p95": 60}}},
        "input_tokens": {"median": 800, "p95": 4000}, "output_tokens": {"median": 200, "p95": 1000}})
    trace = generate(spec, np.random.default_rng(5))
    n = len(trace)
    # Count: Poisson(20,000), so within 4 standard deviations.
    assert abs(n - 20_000) < 4 * math.sqrt(20_000)
    assert (np.diff(trace.arrival_s) >= 0).all() and trace.arrival_s[0] >= 0 and trace.arrival_s[-1] <= 2000
    # Inter-arrival gaps of a Poisson process are exponential with mean 1/rate.
    gaps = np.diff(trace.arrival_s)
    assert stats.kstest(gaps, "expon", args=(0, 1 / 10)).pvalue > 0.001
    # Workload shares: binomial, 4 standard deviations.
    share_b = np.mean(trace.workload_names() == "b")
    assert abs(share_b - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)
    # Token medians and p95 of each workload's lognormal (rounded), within 5%.
    a = trace.workload_names() == "a"
    assert np.median(trace.input_tokens) == pytest.approx(800, rel=0.05)
    assert np.percentile(trace.input_tokens, 95) == pytest.approx(4000, rel=0.05)
    assert np.median(trace.output_tokens[a]) == pytest.approx(200, rel=0.05)
    assert np.percentile(trace.output_tokens[a], 95) == pytest.approx(1000, rel=0.05)
    assert np.median(trace.output_tokens[~a]) == pytest.approx(20, rel=0.1)
    assert np.percentile(trace.output_tokens[~a], 95) == pytest.approx(60, rel=0.1)


def test_generator_is_seeded():
    spec = SyntheticTrace.model_validate({"duration_s": 100, "rate_per_s": 3})
    one = generate(spec, np.random.default_rng(1))
    two = generate(spec, np.random.default_rng(1))
    three = generate(spec, np.random.default_rng(2))
    assert one.to_pandas().equals(two.to_pandas())
    assert not one.to_pandas().equals(three.to_pandas())


@pytest.mark.skipif(not (SHARED_DATA / "azure2023").exists(), reason="../shared/data/azure2023 is absent")
def test_a_real_trace_converted_to_our_format_reads_back(tmp_path):
    """The Azure code trace, converted here with pandas, goes through the reader unchanged."""
    raw = pd.read_csv(SHARED_DATA / "azure2023" / "AzureLLMInferenceTrace_code.csv")
    stamps = pd.to_datetime(raw.TIMESTAMP)
    converted = pd.DataFrame({"arrival_s": (stamps - stamps.min()).dt.total_seconds(),
                              "input_tokens": raw.ContextTokens, "output_tokens": raw.GeneratedTokens})
    converted = converted.sort_values("arrival_s", kind="stable")
    path = tmp_path / "azure.parquet"
    converted.to_parquet(path, index=False)
    trace = read_trace(path)
    assert len(trace) == len(raw)
    assert np.median(trace.input_tokens) == np.median(raw.ContextTokens)
    assert trace.duration_s == pytest.approx(converted.arrival_s.max())


def test_spikes_add_their_rate_in_their_window():
    spec = SyntheticTrace.model_validate({"duration_s": 4000, "rate_per_s": 2,
                                          "spikes": [{"start_s": 1000, "end_s": 2000, "rate_per_s": 8}]})
    trace = generate(spec, np.random.default_rng(9))
    inside = (trace.arrival_s >= 1000) & (trace.arrival_s < 2000)
    # Poisson counts: 10/s x 1000 s inside, 2/s x 3000 s outside; 4 standard deviations.
    assert abs(inside.sum() - 10_000) < 4 * math.sqrt(10_000)
    assert abs((~inside).sum() - 6_000) < 4 * math.sqrt(6_000)
    assert (np.diff(trace.arrival_s) >= 0).all()


def test_numbered_ids_read_like_the_text_column_they_stand_for():
    """routesim's own ids are made when read (sim.traces.table.NumberedIds): every way the code reads
    an id column gives what an array of the written-out ids gives."""
    import pyarrow as pa

    from sim.traces.table import default_request_ids

    ids = default_request_ids(1000)
    written = np.array([f"r{i:06d}" for i in range(1000)], dtype=object)
    assert len(ids) == 1000 and ids[5] == "r000005" and ids[-1] == "r000999"
    for key in (slice(3, 9), slice(None, None, 7), slice(990, 2000), np.array([5, 0, 999, -2]), np.array([], int),
                written == "r000500"):
        assert list(ids[key]) == list(written[key]), key
    assert ids.tolist() == list(written) and list(ids) == list(written) and (np.asarray(ids) == written).all()
    assert (ids == written).all() and not (ids != default_request_ids(1000)).any()
    assert pa.array(ids[0:2], type=pa.string()).to_pylist() == ["r000000", "r000001"]
    assert default_request_ids(10_000_000)[9_999_999] == "r09999999"  # as wide as the count
    for bad in (1000, -1001):
        with pytest.raises(IndexError):
            ids[bad]
    with pytest.raises(IndexError):
        ids[np.array([1000])]
