"""The benchmark scripts measure what they say (tiny sizes; timings are not checked here)."""

from __future__ import annotations

import sys

import pandas as pd
import yaml

from conftest import ROOT


def _benchmark(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def test_the_engine_benchmark_counts_the_requests_and_events_of_a_real_run(tmp_path):
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    engine_throughput = _benchmark("engine_throughput")
    seconds, requests, events = engine_throughput.routesim_run(3000, "dynamic")
    # The same scenario through the normal run: one event per arrival and one per attempt.
    data = yaml.safe_load((ROOT / "scenarios" / "compare.yaml").read_text())
    data["trace"]["synthetic"]["rate_per_s"] = 3000 / data["trace"]["synthetic"]["duration_s"]
    data["replications"] = 1
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(data))
    run_to_folder(load_scenario(path), tmp_path / "out", report=False)
    attempts = pd.read_parquet(tmp_path / "out" / "attempts.parquet")
    served = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    assert requests == (served.policy == "dynamic").sum()
    assert events == requests + (attempts.policy == "dynamic").sum()
    assert seconds > 0



def test_the_minimal_loop_serves_every_request_for_its_service_time():
    import numpy as np

    minimal_loop = _benchmark("minimal_loop")
    rng = np.random.default_rng(3)
    arrival = np.cumsum(rng.exponential(0.5, 500))
    service = rng.lognormal(0.0, 1.0, 500)
    seconds, end = minimal_loop.minimal_loop(arrival, service)
    assert np.allclose(end, arrival + service) and seconds > 0


def test_each_benchmark_case_simulates_its_policy_over_the_requests_asked_for():
    engine_throughput = _benchmark("engine_throughput")
    for case, models in (("static", {"gpt-5"}), ("weighted", None), ("faults", None)):
        data, policy = engine_throughput.case_scenario(case, 3000)
        assert list(data["policies"]) == [policy]
        if models:
            assert set(data["models"]) == models
        _, requests, events = engine_throughput.routesim_run(3000, case=case)
        assert abs(requests - 3000) <= 4 * 3000 ** 0.5  # Poisson arrivals at 3000 an hour
        assert events > requests


def test_the_import_benchmark_imports_every_row(tmp_path):
    import_memory = _benchmark("import_memory")
    csv = tmp_path / "a.csv"
    import_memory.write_azure_csv(csv, 2000)
    source = pd.read_csv(csv)
    assert len(source) == 2000
    seconds, peak = import_memory.measure(csv, tmp_path / "a.parquet", 500)
    imported = pd.read_parquet(tmp_path / "a.parquet")
    assert imported.input_tokens.tolist() == source.ContextTokens.tolist()
    assert imported.output_tokens.tolist() == source.GeneratedTokens.tolist()
    assert seconds > 0 and peak > 0


def test_the_end_to_end_benchmark_scales_compare_and_tells_tables_apart(tmp_path):
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    end_to_end = _benchmark("end_to_end")
    path = end_to_end.compare_scenario(tmp_path, 2000, 1, only_dynamic=True)
    data = yaml.safe_load(path.read_text())
    assert list(data["policies"]) == ["dynamic"] and data["trace"]["synthetic"]["rate_per_s"] * 3600 == 2000
    loaded = load_scenario(path)
    run_to_folder(loaded, tmp_path / "a", report=False)
    run_to_folder(loaded, tmp_path / "b", report=False)
    assert end_to_end.same_tables(tmp_path / "a", tmp_path / "b")
    other = load_scenario(end_to_end.compare_scenario(tmp_path, 2100, 1, only_dynamic=True))
    run_to_folder(other, tmp_path / "c", report=False)
    assert not end_to_end.same_tables(tmp_path / "a", tmp_path / "c")
