"""Fault ground truth: partial outages, brownouts, latency spikes, overlaps, and
random incidents, against formulas evaluated here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.scenario.schema.faults import OUTAGE_PRESETS, OutageProcess
from sim.world.world import draw_incidents

from conftest import read, scenario
from test_world import model, one_model_run, trace_file


def test_partial_outage_fails_its_share_inside_the_window_only(tmp_path):
    trace_file(tmp_path, 8000, output_tokens=10, gap=0.1)  # 800 s
    out = one_model_run(tmp_path, model(error_rate=0.02),
                        events=[{"kind": "partial_outage", "model": "m", "start_s": 200, "end_s": 600, "error_rate": 0.3}])
    requests = read(out)
    inside = requests.arrival_s.between(200, 600, inclusive="left")
    expected_inside = 1 - (1 - 0.02) * (1 - 0.3)
    for mask, p in ((inside, expected_inside), (~inside, 0.02)):
        failed = (requests.status[mask] == "failed").mean()
        assert abs(failed - p) < 4 * math.sqrt(p * (1 - p) / mask.sum()), (p, failed)


def test_a_rate_limit_storm_answers_429_for_its_share_and_errors_stay_errors(tmp_path):
    """A partial outage with status 429: its share of first attempts is rate_limited, the
    model's base errors stay errors (independent causes: P(error) = 0.02 x (1 - 0.3))."""
    trace_file(tmp_path, 8000, output_tokens=10, gap=0.1)
    out = one_model_run(tmp_path, model(error_rate=0.02), router={"timeout_s": 1e6, "max_attempts": 1},
                        events=[{"kind": "partial_outage", "model": "m", "start_s": 200, "end_s": 600,
                                 "error_rate": 0.3, "status": 429}])
    attempts = read(out, "attempts")
    inside = attempts.start_s.between(200, 600, inclusive="left")
    for mask, limited, errors in ((inside, 0.3, 0.02 * 0.7), (~inside, 0.0, 0.02)):
        n = mask.sum()
        for outcome, p in (("rate_limited", limited), ("error", errors)):
            share = (attempts.outcome[mask] == outcome).mean()
            assert abs(share - p) <= 4 * math.sqrt(max(p * (1 - p), 1e-9) / n), (outcome, p, share)


@pytest.mark.parametrize("event", [
    {"kind": "brownout", "latency_x": 4.0},
    {"kind": "latency_spike", "latency_x": 10.0},
])
def test_slowdowns_multiply_the_same_requests_latency(tmp_path, event):
    trace_file(tmp_path, 600, output_tokens=50, gap=1.0)
    (tmp_path / "calm").mkdir(), (tmp_path / "slow").mkdir()
    for folder in ("calm", "slow"):
        (tmp_path / folder / "trace.csv").write_text((tmp_path / "trace.csv").read_text())
    calm = read(one_model_run(tmp_path / "calm", model()))
    slow = read(one_model_run(tmp_path / "slow", model(),
                              events=[{**event, "model": "m", "start_s": 100, "end_s": 300}]))
    inside = slow.arrival_s.between(100, 300, inclusive="left")
    # Common random numbers: the same draws, scaled by the multiplier inside the window.
    np.testing.assert_allclose(slow.latency_s[inside], calm.latency_s[inside] * event["latency_x"], rtol=1e-9)
    np.testing.assert_allclose(slow.ttft_s[inside], calm.ttft_s[inside] * event["latency_x"], rtol=1e-9)
    np.testing.assert_allclose(slow.latency_s[~inside], calm.latency_s[~inside], rtol=1e-12)
    assert (slow.quality == calm.quality).all()


def test_overlapping_faults_combine_as_independent_causes(tmp_path):
    trace_file(tmp_path, 6000, output_tokens=10, gap=0.1)
    events = [{"kind": "partial_outage", "provider": "p", "start_s": 0, "end_s": 600, "error_rate": 0.3},
              {"kind": "brownout", "model": "m", "start_s": 0, "end_s": 600, "latency_x": 2.0, "error_rate": 0.2}]
    failed = (read(one_model_run(tmp_path, model(), events=events)).status == "failed").mean()
    p = 1 - 0.7 * 0.8
    assert abs(failed - p) < 4 * math.sqrt(p * (1 - p) / 6000)


def test_brownout_must_do_something(cli, tmp_path):
    from conftest import write_scenario

    data = scenario(events=[{"kind": "brownout", "model": "big", "start_s": 0, "end_s": 10}])
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2 and "a brownout needs latency_x > 1 or error_rate > 0" in result.output
    data = scenario(events=[{"kind": "partial_outage", "model": "big", "start_s": 0, "end_s": 10, "error_rate": 1.5}])
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2 and "events[0].error_rate: must be <= 1" in result.output


def test_random_incidents_follow_the_process():
    process = OutageProcess(mtbf_s=1000.0, duration_s={"median": 100.0, "p90": 300.0}, error_rate=1.0)
    incidents = draw_incidents(process, 5_000_000.0, seed=3, replication=0, provider="p")
    starts = np.array([s for s, _, _ in incidents])
    lengths = np.array([e - s for s, e, _ in incidents])
    up_times = starts[1:] - (starts[:-1] + lengths[:-1])
    assert len(incidents) > 3000
    assert np.diff(starts).mean() == pytest.approx(1000.0, rel=0.05)  # MTBF: start to start
    assert np.median(lengths) == pytest.approx(100.0, rel=0.06)
    assert np.percentile(lengths, 90) == pytest.approx(300.0, rel=0.08)
    assert (up_times > 0).all()


def test_incident_streams_are_per_provider_and_seeded():
    process = OutageProcess(preset="openai-2024")
    one = draw_incidents(process, 1e8, seed=1, replication=0, provider="openai")
    assert one == draw_incidents(process, 1e8, seed=1, replication=0, provider="openai")
    assert one != draw_incidents(process, 1e8, seed=1, replication=1, provider="openai")
    assert one != draw_incidents(process, 1e8, seed=1, replication=0, provider="anthropic")


@pytest.mark.parametrize("preset", sorted(OUTAGE_PRESETS))
def test_presets_reproduce_the_published_availability(preset):
    """Over many simulated years the share of failed time matches the status page."""
    process = OutageProcess(preset=preset)
    horizon = 400 * 365 * 86400.0
    incidents = draw_incidents(process, horizon, seed=7, replication=0, provider=preset)
    unavailable = sum((e - s) * rate for s, e, rate in incidents) / horizon
    assert unavailable == pytest.approx(1 - OUTAGE_PRESETS[preset]["availability"], rel=0.1)
    per_month = len(incidents) / (horizon / (30.4375 * 86400))
    assert per_month == pytest.approx({"openai-2024": 17.4, "anthropic-2024": 13.9}[preset], rel=0.05)


def test_random_incidents_reach_the_run(tmp_path):
    trace_file(tmp_path, 3000, output_tokens=10, gap=1.0)
    out = one_model_run(tmp_path, model(), replications=3,
                        providers={"p": {"outages": {"mtbf_s": 600, "duration_s": {"median": 60, "p90": 120}}}})
    requests = read(out)
    windows = pd.read_csv(out / "faults.csv")
    # One model, an incident is a full outage: exactly the requests arriving inside an incident fail.
    for r, rep in requests.groupby("replication"):
        mine = windows[windows.replication == r]
        inside = np.zeros(len(rep), dtype=bool)
        for start, end in zip(mine.start_s, mine.end_s):
            inside |= (rep.arrival_s.to_numpy() >= start) & (rep.arrival_s.to_numpy() < end)
        assert np.array_equal(inside, (rep.status == "failed").to_numpy()), r
    assert (requests.status == "failed").mean() > 0.02  # about 69/600 of the time is down
    per_rep = windows.groupby("replication").start_s.apply(tuple)
    assert per_rep.nunique() == 3  # each replication draws its own incidents


def test_mtbf_must_exceed_the_mean_duration(cli, tmp_path):
    from conftest import write_scenario

    data = scenario(providers={"pa": {"outages": {"mtbf_s": 100, "duration_s": {"median": 100, "p90": 300}}}})
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2 and "providers.pa.outages: mtbf_s (100) must exceed the mean incident duration" in result.output
    data = scenario(providers={"nobody": {"outages": {"preset": "openai-2024"}}})
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2 and "providers.nobody: unknown provider 'nobody'" in result.output
