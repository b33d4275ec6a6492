"""Issue 10: fuzzed scenarios and traces. Every generated input gives a whole run
(exit 0 with every output) or exit 2 with a message; never a traceback, another
exit code, or a partial output folder."""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli.app import app

# ROUTESIM_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz_inputs.py searches deeper than the default run.
FUZZ = settings(max_examples=int(os.environ.get("ROUTESIM_FUZZ_EXAMPLES", "80")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

BASE = {
    "name": "fuzz",
    "seed": 3,
    "replications": 1,
    "trace": {"synthetic": {"duration_s": 30, "rate_per_s": 1, "workloads": {"chat": 0.7, "code": 0.3},
                            "input_tokens": {"median": 300, "p95": 900},
                            "output_tokens": {"median": 50, "p95": 200}}},
    "workloads": {"chat": {"slo_s": 5}, "code": {"difficulty": {"mean": 0.5, "sd": 1.0}}},
    "models": {
        "big": {"provider": "pa", "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
                "latency": {"ttft_s": {"median": 0.5, "p95": 1.0}, "tokens_per_s": {"median": 100, "p5": 50}},
                "quality": {"default": 2.0}, "context_window": 8000, "error_rate": 0.01},
        "small": {"provider": "pb", "price": {"input_per_mtok": 0.2, "output_per_mtok": 0.8},
                  "latency": {"ttft_s": {"median": 0.3, "p95": 0.8}, "tokens_per_s": {"median": 150, "p5": 60}},
                  "quality": {"default": 0.5}, "rate_limit": {"rpm": 30}},
    },
    "events": [{"kind": "outage", "provider": "pa", "start_s": 10, "end_s": 20},
               {"kind": "price", "model": "small", "at_s": 15, "input_per_mtok": 0.1, "output_per_mtok": 0.4}],
    "router": {"timeout_s": 30, "max_attempts": 3, "default_model": "small",
               "retry": {"per_model": 1, "backoff": {"base_s": 0.1, "cap_s": 1.0}},
               "circuit_breaker": {"size": 10, "min_calls": 5}},
    "policies": {"static-big": {"kind": "static", "model": "big"},
                 "manual": {"kind": "manual", "routes": {"chat": "small", "code": "big"}},
                 "dynamic": {"kind": "weighted", "weights": {"cost": 0.5, "quality": 0.4, "latency": 0.1}}},
    "baseline": "static-big",
}

# Numbers that stay cheap to simulate when valid, plus the ones that broke things before.
NUMBERS = st.sampled_from([-1, 0, 0.001, 0.5, 1, 2, 7, 1e300, -1e300, 2**64, 99999999999999999999,
                           float("nan"), float("inf"), float("-inf")])
LEAVES = NUMBERS | st.booleans() | st.none() | st.sampled_from(["", "1.0", "big", "chat", "pa", "../x", "/abs",
                                                                "os:system", "static", "<script>"])
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["a", "big", "kind", "model", "chat"]), inner, max_size=3),
                      max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


@st.composite
def mutated_scenarios(draw):
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["tweak", "tweak", "replace", "delete", "add"]))
        if op == "tweak":  # a number for a number: mostly valid, often extreme
            if isinstance(parent[path[-1]], (int, float)) and not isinstance(parent[path[-1]], bool):
                parent[path[-1]] = draw(NUMBERS)
        elif op == "replace":
            parent[path[-1]] = draw(VALUES)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "kind", "model", "rate_per_s"]))] = draw(VALUES)
        if not isinstance(data, dict) or not data:
            break
    return data


def _check_outcome(result, out: Path) -> None:
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert (out / "summary.json").is_file() and (out / "requests.parquet").is_file()
        json.loads((out / "summary.json").read_text())
    else:
        assert "error: " in result.output
        assert not out.exists()  # nothing half-written, not even an empty folder
    if out.exists():
        assert not [p for p in out.iterdir() if p.name.startswith(".routesim-partial")]


def _run(folder: Path, scenario_path: Path):
    out = folder / "out"
    result = CliRunner().invoke(app, ["run", str(scenario_path), "--out", str(out), "--no-report"])
    event(f"exit {result.exit_code}")  # --hypothesis-show-statistics: both outcomes must be explored
    _check_outcome(result, out)
    return result


@FUZZ
@given(mutated_scenarios())
def test_fuzzed_scenarios_run_or_exit_2(data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "scenario.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        _run(folder, path)


# --------------------------------------------------------------------------- traces
CELLS = st.sampled_from([0, 1, 5, 2.5, -3, 1e30, 2**63 + 1, float("nan"), float("inf"), "", "x", "12", " 7 ",
                         True, None, "1e3"])


@st.composite
def trace_tables(draw):
    rows = draw(st.integers(1, 12))
    arrival = sorted(draw(st.lists(st.floats(0, 30, allow_nan=False), min_size=rows, max_size=rows)))
    table = {"arrival_s": arrival,
             "input_tokens": draw(st.lists(st.integers(0, 5000), min_size=rows, max_size=rows)),
             "output_tokens": draw(st.lists(st.integers(0, 500), min_size=rows, max_size=rows))}
    if draw(st.booleans()):
        table["workload"] = draw(st.lists(st.sampled_from(["chat", "code", "", "<b>"]), min_size=rows, max_size=rows))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):  # corrupt some cells
        column = draw(st.sampled_from(sorted(table)))
        table[column] = list(table[column])
        table[column][draw(st.integers(0, rows - 1))] = draw(CELLS)
    if draw(st.integers(0, 9)) == 0:
        table.pop(draw(st.sampled_from(sorted(table))))
    return table


def _write_trace(table: dict, path: Path, fmt: str, garbage: bytes, at: float) -> None:
    frame = pd.DataFrame(table)
    if fmt == "parquet":
        try:
            frame.to_parquet(path)
        except Exception:  # a column pyarrow cannot store with mixed types: store it as text
            frame.astype(str).to_parquet(path)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("\n".join(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                              for k, v in row.items()}) for row in frame.to_dict("records")) + "\n")
    if garbage:
        data = path.read_bytes()
        cut = int(len(data) * at)
        path.write_bytes(data[:cut] + garbage + data[cut:])


def _trace_fuzz(fmt: str):
    @FUZZ
    @given(trace_tables(), st.sampled_from([b""] * 3) | st.binary(min_size=1, max_size=6), st.floats(0, 1))
    def test(table, garbage, at):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            _write_trace(table, folder / f"trace.{fmt}", fmt, garbage, at)
            data = copy.deepcopy(BASE)
            data["trace"] = {"path": f"trace.{fmt}"}
            data["workloads"] = {}
            data["policies"]["manual"]["default"] = "small"  # a trace may have no workload column
            path = folder / "scenario.yaml"
            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            _run(folder, path)
    return test


test_fuzzed_csv_traces_run_or_exit_2 = _trace_fuzz("csv")
test_fuzzed_jsonl_traces_run_or_exit_2 = _trace_fuzz("jsonl")
test_fuzzed_parquet_traces_run_or_exit_2 = _trace_fuzz("parquet")


# --------------------------------------------------------------------------- sweeps, tune ranges, log rows (issue 25)
# These run a scenario per example: fewer examples by default, as deep as ROUTESIM_FUZZ_EXAMPLES asks.
FEW = settings(max_examples=max(10, int(os.environ.get("ROUTESIM_FUZZ_EXAMPLES", "80")) // 4), deadline=None,
               suppress_health_check=[HealthCheck.too_slow])
SWEEP = {"name": "fuzz-sweep", "base": "base.yaml", "seeds": [1, 2],
         "grid": {"models.big.error_rate": [0.0, 0.2]},
         "claim": {"policy": "dynamic", "min_savings": 0.1, "rivals": ["manual"]}}


@st.composite
def mutated_sweeps(draw):
    data = copy.deepcopy(SWEEP)
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(["name", "seeds", "grid", "cells", "claim", "replications", "base", "extra"]))
        plausible = st.sampled_from(["../../x", "ok-name", [2**70], [3], {"models.big.error_rate": [0.1]},
                                     {"policies.dynamic.weights.cost": [0.1, 0.9]},
                                     [{"models.small.error_rate": 0.5}], 1])
        data[key] = draw(st.one_of(plausible, plausible, VALUES))
    return data


@FEW
@given(mutated_sweeps())
def test_fuzzed_sweep_files_run_or_exit_2(data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "base.yaml").write_text(yaml.safe_dump(BASE, sort_keys=False), encoding="utf-8")
        (folder / "sweep.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        out = folder / "out"
        result = CliRunner().invoke(app, ["sweep", str(folder / "sweep.yaml"), "--out", str(out), "-w", "1"])
        event(f"exit {result.exit_code}")
        assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
        assert "Traceback" not in result.output
        if result.exit_code == 0:
            assert (out / "sweep.parquet").is_file() and (out / "sweep.md").is_file()
        else:
            assert "error: " in result.output and not out.exists()
        inputs = {folder / "base.yaml", folder / "sweep.yaml"}  # whatever the name, nothing lands beside --out
        assert [p for p in folder.iterdir() if p not in inputs and p != out] == []


RANGE_TEXT = st.lists(st.sampled_from(["0", "0.5", "1", "-1", ":", ",", "inf", "1e400", "nan", "[", "]", "{a: 1}",
                                       "0.25", "''", "*", "&"]), min_size=1, max_size=5).map("".join)


@FEW
@given(RANGE_TEXT, st.sampled_from(["weights.cost", "weights.quality", "nope", "weights"]))
def test_fuzzed_tune_ranges_run_or_exit_2(text, parameter):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = copy.deepcopy(BASE)
        data["gates"] = {"min_success_rate": 0.5}
        data["policies"] = {"static-big": BASE["policies"]["static-big"], "dynamic": BASE["policies"]["dynamic"]}
        (folder / "tune.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        out = folder / "out"
        result = CliRunner().invoke(app, ["tune", str(folder / "tune.yaml"), "--policy", "dynamic", "--param",
                                          f"{parameter}={text}", "--out", str(out), "-w", "1"])
        event(f"exit {result.exit_code}")
        assert result.exit_code in (0, 1, 2), (result.exit_code, result.output, result.exception)
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            assert "error: " in result.output and not out.exists()
        else:
            assert (out / "tune.md").is_file()


LOG_CELLS = st.sampled_from([0, 1, -1, 2**63, 1e30, float("nan"), "", "x", "2025-06-01T00:00:00", "2300-01-01",
                             1748736000, 1748736000000, "{", "[]", '{"litellm_call_id": "c"}', None, True])
LOG_COLUMNS = ["request_id", "startTime", "endTime", "completionStartTime", "prompt_tokens", "completion_tokens",
               "spend", "metadata", "request_tags", "model_id", "status", "cache_hit"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(LOG_COLUMNS), st.integers(0, 5), LOG_CELLS), max_size=3),
       st.sampled_from(["csv", "jsonl", "parquet"]), st.booleans())
def test_fuzzed_log_rows_import_or_exit_2(edits, fmt, drop_a_column):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_spend_logs import logged_calls

    calls = logged_calls().astype(object)
    for column, row, cell in edits:
        calls.at[row, column] = cell
    if drop_a_column:
        calls = calls.drop(columns=[edits[0][0] if edits else "completionStartTime"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        export = folder / f"export.{fmt}"
        try:
            if fmt == "csv":
                calls.to_csv(export, index=False)
            elif fmt == "jsonl":
                calls.to_json(export, orient="records", lines=True, date_format="iso", default_handler=str)
            else:
                calls.to_parquet(export)
        except Exception:  # noqa: BLE001 - a mixed column pyarrow cannot store: store it as text
            calls.astype(str).to_parquet(export)
        result = CliRunner().invoke(app, ["import", "litellm-logs", str(export), "-o", str(folder / "s.yaml"),
                                          "--trace", str(folder / "t.parquet")])
        event(f"exit {result.exit_code}")
        assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
        assert "Traceback" not in result.output
        written = [(folder / "s.yaml").exists(), (folder / "t.parquet").exists()]
        assert written == ([True, True] if result.exit_code == 0 else [False, False]), result.output
        if result.exit_code == 0:  # what it wrote is a valid scenario and trace
            check = CliRunner().invoke(app, ["validate", str(folder / "s.yaml")])
            assert check.exit_code == 0, check.output
