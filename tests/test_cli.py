"""The command line: exit codes, no tracebacks, atomic output, the import contract."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pandas as pd

from conftest import ROOT, patience, scenario, write_scenario

DESIGN_METRICS = {"requests", "success_rate", "cost_usd", "cost_per_1k_requests_usd", "savings_vs_baseline",
                  "mean_quality", "quality_delta_vs_baseline", "latency_p50_s", "latency_p95_s", "latency_p99_s",
                  "fallback_rate", "attempts_per_request", "slo_attainment", "decision_us_p50", "decision_us_p99"}
REQUEST_COLUMNS = ["policy", "replication", "request_id", "arrival_s", "workload", "input_tokens", "output_tokens",
                   "status", "model", "attempts", "latency_s", "ttft_s", "cost_usd", "quality", "carbon_g"]
ATTEMPT_COLUMNS = ["policy", "replication", "request_id", "attempt", "model", "start_s", "end_s", "outcome", "cost_usd"]


def test_run_writes_every_output_with_the_design_names(cli, tmp_path):
    path = write_scenario(tmp_path, scenario())
    out = tmp_path / "out"
    result = cli("run", path, "--out", out)
    assert result.exit_code == 0, result.output
    assert "static-big *" in result.output  # the comparison table, baseline marked
    for name in ("requests.parquet", "attempts.parquet", "decisions.parquet", "summary.json", "summary.csv",
                 "report.md", "scenario.resolved.yaml", "cost_vs_quality.png", "latency_cdf.png"):
        assert (out / name).stat().st_size > 0, name
        assert name in result.output.rsplit("wrote ", 1)[1]  # the closing line names every file written
    requests = pd.read_parquet(out / "requests.parquet")
    # Success over time is drawn only when a request failed: a flat line at 1 says nothing.
    assert (out / "success_over_time.png").exists() == (requests.status != "ok").any()
    assert ("success_over_time.png" in result.output) == (requests.status != "ok").any()
    assert list(requests.columns[:len(REQUEST_COLUMNS)]) == REQUEST_COLUMNS
    assert list(pd.read_parquet(out / "attempts.parquet").columns[:len(ATTEMPT_COLUMNS)]) == ATTEMPT_COLUMNS
    summary = json.loads((out / "summary.json").read_text())
    assert {"scenario", "seed", "replications", "baseline", "policies"} <= set(summary)
    assert summary["replications"] == 2 and summary["baseline"] == "static-big"
    for metrics in summary["policies"].values():
        assert DESIGN_METRICS <= set(metrics)
        for value in metrics.values():
            assert set(value) == {"mean", "ci95"} and len(value["ci95"]) == 2
    csv = pd.read_csv(out / "summary.csv")
    assert list(csv.policy) == ["static-big", "static-small"]
    assert "savings_vs_baseline_ci95_lo" in csv.columns
    # Nothing is left behind but the output folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "scenario.yaml"]


def test_resolved_scenario_reruns_to_the_same_bytes(cli, tmp_path):
    trace = tmp_path / "trace.csv"
    pd.DataFrame({"arrival_s": [0.5, 1.0, 2.0, 3.5], "input_tokens": [10, 20, 30, 40],
                  "output_tokens": [5, 6, 7, 8]}).to_csv(trace, index=False)
    path = write_scenario(tmp_path, scenario(trace={"path": "trace.csv"}))
    assert cli("run", path, "--out", tmp_path / "first", "--seed", "9").exit_code == 0
    resolved = tmp_path / "first" / "scenario.resolved.yaml"
    assert cli("run", resolved, "--out", tmp_path / "second").exit_code == 0
    for table in ("requests.parquet", "attempts.parquet"):
        assert (tmp_path / "first" / table).read_bytes() == (tmp_path / "second" / table).read_bytes()


def test_bad_scenario_exits_2_and_writes_nothing(cli, tmp_path):
    data = scenario()
    data["models"]["big"]["price"]["input_per_mtok"] = -1
    path = write_scenario(tmp_path, data)
    out = tmp_path / "out"
    result = cli("run", path, "--out", out)
    assert result.exit_code == 2
    assert "models.big.price.input_per_mtok: must be >= 0" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenario.yaml"]


def test_bad_trace_exits_2_with_the_line_and_keeps_an_earlier_run(cli, tmp_path):
    good = tmp_path / "trace.csv"
    good.write_text("arrival_s,input_tokens,output_tokens\n0,1,1\n1,2,2\n")
    path = write_scenario(tmp_path, scenario(trace={"path": "trace.csv"}))
    out = tmp_path / "out"
    assert cli("run", path, "--out", out).exit_code == 0
    before = (out / "requests.parquet").read_bytes()
    good.write_text("arrival_s,input_tokens,output_tokens\n0,1,1\n1,-2,2\n")
    result = cli("run", path, "--out", out)
    assert result.exit_code == 2
    assert "trace.csv:3: input_tokens: must be a whole number from 0 to 10,000,000" in result.output
    assert (out / "requests.parquet").read_bytes() == before  # the earlier run is untouched


def test_refuses_to_replace_a_folder_that_is_not_a_run(cli, tmp_path):
    path = write_scenario(tmp_path, scenario())
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    result = cli("run", path, "--out", precious)
    assert result.exit_code == 2 and "is not a routesim run" in result.output
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert [p.name for p in precious.iterdir()] == ["thesis.tex"]


def _partials(out):
    return [p for p in out.iterdir() if p.name.startswith(".routesim-partial-")] if out.exists() else []


def _start_and_stop(path, out, stop) -> subprocess.Popen:
    """Start a run, wait until it is writing its partial folder, then ``stop`` it."""
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", str(path), "--out", str(out)],
                            cwd=path.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + patience(60)
    while time.monotonic() < deadline and not _partials(out):
        time.sleep(0.05)
    time.sleep(0.5)  # let it write some runs
    stop(proc)
    proc.wait(timeout=patience(60))
    return proc


def test_a_killed_run_leaves_no_report_that_looks_complete(cli, tmp_path):
    data = scenario(replications=200)  # long enough to be killed midway
    path = write_scenario(tmp_path, data)
    out = tmp_path / "out"
    proc = _start_and_stop(path, out, lambda p: p.send_signal(signal.SIGTERM))
    assert proc.returncode != 0
    assert not out.exists()  # it made the folder, and removed it again with its partial files
    # SIGKILL allows no clean-up: the partial folder stays, hidden, in an output folder without a summary.
    proc = _start_and_stop(path, out, lambda p: p.kill())
    partial = _partials(out)
    assert len(partial) == 1 and sorted(p.name for p in out.iterdir()) == [partial[0].name]
    assert not any((p / "summary.json").exists() or (p / "report.html").exists() for p in partial)
    # The next run into the folder removes the killed run's partial folder.
    path = write_scenario(tmp_path, scenario(replications=1))
    assert cli("run", path, "--out", out, "--no-report").exit_code == 0
    assert not _partials(out) and (out / "summary.json").exists()


def test_import_sim_policies_does_not_import_simpy():
    code = "import sys, sim.policies; print('simpy' in sys.modules, 'sim.core.engine' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_python_dash_m_sim_and_usage_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sim", "policies"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0
    for name in ("static", "manual", "weighted"):
        assert f"{name}:" in result.stdout
    result = subprocess.run([sys.executable, "-m", "sim", "run"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_trace_generate_and_inspect(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the current folder unasked
    path = write_scenario(tmp_path, scenario())
    out = tmp_path / "gen.parquet"
    result = cli("trace", "generate", path, "--out", out)
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert {"arrival_s", "input_tokens", "output_tokens", "workload", "request_id"} <= set(frame.columns)
    result = cli("trace", "inspect", out)
    assert result.exit_code == 0
    assert f"requests: {len(frame):,}" in result.output
    assert not list(tmp_path.glob("*.png"))  # no figure unless asked for
    result = cli("trace", "inspect", out, "--png", tmp_path / "figure.png")
    assert result.exit_code == 0 and (tmp_path / "figure.png").stat().st_size > 10_000
    result = cli("trace", "generate", path, "--out", tmp_path / "no-suffix")
    assert result.exit_code == 2 and "no-suffix: cannot tell the format" in result.output
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,input_tokens\n0,1\n")
    result = cli("trace", "inspect", bad)
    assert result.exit_code == 2 and "missing required column(s) output_tokens" in result.output


def test_example_scenarios_validate(cli):
    import yaml

    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        result = cli("validate", path)
        assert result.exit_code == 0, (path, result.output)
        data = yaml.safe_load(path.read_text())
        expected = (f"OK: {path}: {len(data['models'])} models, {len(data['policies'])} policies, "
                    f"{len(data.get('events', []))} events, trace of ")
        assert expected in result.output, (path, result.output)


def test_help_reads_as_usual(cli):
    """Flags without a type tag, arguments in capitals in the usage line (typer 0.27 showed
    '<bool>' on every flag and '{scenario}' in usage; pyproject.toml keeps it below 0.27)."""
    for args in (["--help"], ["run", "--help"], ["gate", "--help"], ["compare", "--help"]):
        result = cli(*args)
        assert result.exit_code == 0, args
        assert "<bool>" not in result.output and "{" not in result.output.split("\n\n", 1)[0], args
    assert "run [OPTIONS] SCENARIO" in " ".join(cli("run", "--help").output.split())


def test_every_option_of_every_command_says_what_it_does():
    """`--help` is where a newcomer reads what a flag means: no option without its text."""
    import click
    import typer.main

    from sim.cli.app import app

    silent = []

    def walk(command, name):
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                walk(sub, f"{name} {sub_name}")
        else:
            silent.extend(f"{name} {p.opts[0]}" for p in command.params
                          if isinstance(p, click.Option) and not (p.help or "").strip())

    walk(typer.main.get_command(app), "routesim")
    assert silent == []
