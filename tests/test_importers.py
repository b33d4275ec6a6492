"""Trace importers: real public traces (skipped when ../shared/data is absent) and
small files written here, checked against pandas computations on the raw source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.errors import InputError
from sim.traces.formats import ImportOptions, import_trace
from sim.traces.table import read_trace

from conftest import SHARED_DATA

AZURE = SHARED_DATA / "azure2023"
MOONCAKE = SHARED_DATA / "mooncake" / "conversation_trace.jsonl"


@pytest.mark.parametrize("name", ["code", "conv"])
def test_azure_import_matches_the_raw_csv(tmp_path, name):
    source = AZURE / f"AzureLLMInferenceTrace_{name}.csv"
    if not source.exists():
        pytest.skip(f"Azure trace not found at {source}")
    raw = pd.read_csv(source)
    stamps = pd.to_datetime(raw.TIMESTAMP)
    out = tmp_path / "t.parquet"
    summary = import_trace(source, "azure", out, ImportOptions(chunk_rows=1000))  # several chunks
    trace = read_trace(out)
    assert summary.requests == len(trace) == len(raw)
    assert trace.duration_s == pytest.approx((stamps.max() - stamps.min()).total_seconds(), abs=1e-6)
    assert np.median(trace.input_tokens) == raw.ContextTokens.median()
    assert np.median(trace.output_tokens) == raw.GeneratedTokens.median()
    assert trace.workloads == [name]  # from the file name
    if name == "code":  # the figures the data README gives for this file
        assert trace.duration_s == pytest.approx(3436, abs=1)
        assert (np.median(trace.input_tokens), np.median(trace.output_tokens)) == (1469, 13)


def test_azure_2024_timestamps_with_zone_and_mixed_fractions(tmp_path):
    source = tmp_path / "AzureLLMInferenceTrace_conv_1week.csv"
    source.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                      "2024-05-10 00:00:00.0096590+00:00,100,10\n"
                      "2024-05-10 00:00:01+00:00,200,20\n"
                      "2024-05-10 00:00:01.5+00:00,300,30\n")
    import_trace(source, "azure", tmp_path / "t.csv")
    trace = read_trace(tmp_path / "t.csv")
    assert trace.arrival_s == pytest.approx([0.0, 1.0 - 0.009659, 1.5 - 0.009659])
    assert trace.workloads == ["conv_1week"]


def test_mooncake_import_with_and_without_jitter(tmp_path):
    if not MOONCAKE.exists():
        pytest.skip(f"Mooncake trace not found at {MOONCAKE}")
    raw = pd.read_json(MOONCAKE, lines=True)
    seconds = (raw.timestamp - raw.timestamp.iloc[0]).to_numpy() / 1000.0
    plain = tmp_path / "plain.parquet"
    import_trace(MOONCAKE, "mooncake", plain)
    trace = read_trace(plain)
    assert len(trace) == len(raw) and trace.arrival_s == pytest.approx(seconds)
    assert (trace.input_tokens == raw.input_length).all() and (trace.output_tokens == raw.output_length).all()
    # Prefix blocks seen before, counted independently: explode the hash ids and mark repeats.
    blocks = raw.hash_ids.explode().dropna()
    repeats = blocks.duplicated().groupby(level=0).sum().reindex(raw.index, fill_value=0)
    expected = np.minimum(repeats.to_numpy() * 512, raw.input_length.to_numpy())
    assert (pd.read_parquet(plain).cached_input_tokens.to_numpy() == expected).all()

    jittered = []
    for seed in (1, 1, 2):
        out = tmp_path / f"jitter-{len(jittered)}.parquet"
        import_trace(MOONCAKE, "mooncake", out, ImportOptions(jitter_s=3.0, seed=seed, chunk_rows=2500))
        jittered.append(pd.read_parquet(out))
    first = jittered[0]
    assert first.arrival_s.is_monotonic_increasing
    assert pd.testing.assert_frame_equal(first, jittered[1]) is None  # same seed, same trace
    assert not np.array_equal(first.arrival_s, jittered[2].arrival_s)
    # Every request lands within 3 s after its rounded time: match them back by their token counts and order.
    gaps = np.diff(np.sort(first.arrival_s.to_numpy()))
    assert (gaps == 0).mean() < 0.01 < (np.diff(seconds) == 0).mean()
    assert first.arrival_s.max() < seconds.max() + 3.0
    assert sorted(first.input_tokens) == sorted(raw.input_length)


BURST_V1 = ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
            "5,ChatGPT,472,18,490,Conversation log\n"
            "45,ChatGPT,1087,0,1087,Conversation log\n"
            "118,GPT-4,417,276,693,API log\n")
BURST_V2 = ("Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
            "19440110.0,a1,43,GPT-4,906,446,1352,Conversation log\n"
            "19440161.0,b2,2,ChatGPT,36,0,36,Conversation log\n"
            "19440192.5,a1,7,GPT-4,120,80,200,API log\n")


def test_burstgpt_v1_and_v2_keep_failed_requests_flagged(tmp_path):
    (tmp_path / "v1.csv").write_text(BURST_V1)
    (tmp_path / "v2.csv").write_text(BURST_V2)
    summary = import_trace(tmp_path / "v1.csv", "burstgpt", tmp_path / "v1.parquet")
    v1 = pd.read_parquet(tmp_path / "v1.parquet")
    assert v1.arrival_s.tolist() == [0, 40, 113]
    assert v1.workload.tolist() == ["chatgpt", "chatgpt", "gpt-4"]
    assert v1.failed_in_source.tolist() == [False, True, False] and summary.failed_in_source == 1
    import_trace(tmp_path / "v2.csv", "burstgpt", tmp_path / "v2.parquet", ImportOptions(workload_from="model+log_type"))
    v2 = pd.read_parquet(tmp_path / "v2.parquet")
    assert v2.arrival_s.tolist() == [0, 51, 82.5]
    assert v2.session_id.tolist() == ["a1", "b2", "a1"]
    assert v2.workload.tolist() == ["gpt-4/conversation", "chatgpt/conversation", "gpt-4/api"]
    assert len(read_trace(tmp_path / "v2.parquet")) == 3  # a routesim trace: the simulator reads it


def test_generic_tables_with_a_column_mapping(tmp_path):
    frame = pd.DataFrame({"ts_ms": [1000, 1500, 4000], "prompt": [10, 20, 30], "completion": [1, 2, 3],
                          "endpoint": ["chat", "code", "chat"], "gpt4_ok": [1, 0, 1]})
    frame.to_csv(tmp_path / "log.csv", index=False)
    frame.to_json(tmp_path / "log.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "log.parquet")
    options = ImportOptions(columns={"arrival_s": "ts_ms", "input_tokens": "prompt", "output_tokens": "completion",
                                     "workload": "endpoint", "quality.gpt-4": "gpt4_ok"}, time_unit="ms")
    for fmt in ("csv", "jsonl", "parquet"):
        import_trace(tmp_path / f"log.{fmt}", fmt, tmp_path / f"{fmt}.parquet", options)
        trace = read_trace(tmp_path / f"{fmt}.parquet")
        assert trace.arrival_s.tolist() == [0.0, 0.5, 3.0], fmt
        assert trace.input_tokens.tolist() == [10, 20, 30] and trace.workload_names().tolist() == ["chat", "code", "chat"]
        assert trace.quality_labels["gpt-4"].tolist() == [1, 0, 1]


@pytest.mark.parametrize("body, line, message", [
    ("2023-11-16 18:17:03.97,10,5\nnot-a-time,3,5\n", 3, "TIMESTAMP: not a date-time"),
    ("2023-11-16 18:17:03.97,10,5\n2023-11-16 18:17:04,-3,5\n", 3, "ContextTokens: must be a whole number"),
    ("2023-11-16 18:17:03.97,10,5\n2023-11-16 18:17:02,3,5\n", 3, "time goes back"),
])
def test_a_malformed_row_names_its_line_and_writes_nothing(tmp_path, cli, body, line, message):
    source = tmp_path / "AzureLLMInferenceTrace_x.csv"
    source.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + body * 3)  # the bad row comes early
    out = tmp_path / "out" / "t.parquet"
    result = cli("trace", "import", "--format", "azure", source, out)
    assert result.exit_code == 2
    assert f"{source}:{line}: {message}" in result.output
    assert "Traceback" not in result.output
    assert list((tmp_path / "out").iterdir()) == []  # neither the output nor a partial file


def test_a_missing_column_is_named(tmp_path):
    source = tmp_path / "t.csv"
    source.write_text("TIMESTAMP,Context\n2023-11-16 18:17:03.97,10\n")
    with pytest.raises(InputError, match="missing column 'ContextTokens'"):
        import_trace(source, "azure", tmp_path / "t.parquet")
    assert not (tmp_path / "t.parquet").exists()


def test_chunk_size_does_not_change_the_result(tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    pd.DataFrame({"arrival_s": np.sort(rng.uniform(0, 100, n)), "input_tokens": rng.integers(1, 100, n),
                  "output_tokens": rng.integers(0, 100, n)}).to_csv(tmp_path / "t.csv", index=False)
    frames = []
    for rows in (7, 1000, 100_000):
        import_trace(tmp_path / "t.csv", "csv", tmp_path / f"{rows}.parquet", ImportOptions(chunk_rows=rows))
        frames.append(pd.read_parquet(tmp_path / f"{rows}.parquet"))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    pd.testing.assert_frame_equal(frames[0], frames[2])
    assert frames[0].columns.tolist() == ["request_id", "arrival_s", "workload", "input_tokens", "output_tokens"]


def test_inspect_reports_rates_burstiness_and_percentiles(tmp_path, cli):
    source = AZURE / "AzureLLMInferenceTrace_conv.csv"
    if not source.exists():
        pytest.skip(f"Azure trace not found at {source}")
    import_trace(source, "azure", tmp_path / "conv.parquet")
    result = cli("trace", "inspect", tmp_path / "conv.parquet", "--png", tmp_path / "conv.png")
    assert result.exit_code == 0, result.output
    raw = pd.read_csv(source)
    t = pd.to_datetime(raw.TIMESTAMP)
    seconds = (t - t.iloc[0]).dt.total_seconds()
    gaps = seconds.diff().dropna()
    busiest = pd.Series(1.0, index=t).rolling("60s").count().max() / 60  # windows ending at each request
    assert f"mean rate: {len(raw) / seconds.iloc[-1]:.3f} req/s" in result.output
    assert f"inter-arrival CV: {gaps.std(ddof=0) / gaps.mean():.2f}" in result.output
    assert f"peak rate: {busiest:.3f} req/s" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("conv "))
    expected = [len(raw)] + [raw.ContextTokens.quantile(q) for q in (0.5, 0.9, 0.99)] + \
        [raw.GeneratedTokens.quantile(q) for q in (0.5, 0.9, 0.99)]
    assert [float(v.replace(",", "")) for v in row.split()[1:]] == pytest.approx([round(v) for v in expected], abs=0.51)
    assert (tmp_path / "conv.png").stat().st_size > 10_000
