"""The benchmark scripts still run (tiny sizes; timings are not checked here)."""

from __future__ import annotations

import sys

from conftest import ROOT


def test_engine_benchmark_runs_at_a_tiny_size():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import engine_throughput
    finally:
        sys.path.pop(0)
    seconds, requests, events = engine_throughput.routesim_run(3000, "dynamic")
    assert requests > 2500 and events >= 2 * requests and seconds > 0
    assert engine_throughput.bare_simpy_loop(1000) > 0


def test_import_memory_benchmark_runs_at_a_tiny_size(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import import_memory
    finally:
        sys.path.pop(0)
    csv = tmp_path / "a.csv"
    import_memory.write_azure_csv(csv, 2000)
    assert len(csv.read_text().splitlines()) == 2001
    seconds, peak = import_memory.measure(csv, tmp_path / "a.parquet", 500)
    assert seconds > 0 and peak > 0 and (tmp_path / "a.parquet").exists()
