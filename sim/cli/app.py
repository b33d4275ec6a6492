"""The ``routesim`` command line: parses, delegates, reports. No simulation logic.

Exit codes: 0 ok, 1 a gate failed, 2 bad input (with file, line or field path,
and no traceback unless ``--debug``; also an installation without its dependencies),
3 a bug of ours, 130 interrupted.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from .dependencies import MISSING_DEPENDENCY, MISSING_EXIT, ensure

ensure()  # this Python has routesim's dependencies (or the command moves to the checkout's .venv, or exits 2)

import typer  # noqa: E402

from .common import state, user_errors, warn
from .trace import trace_app
from sim.errors import InputError, Problem
from sim.limits import MAX_REPLICATIONS, MAX_SEED

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate LLM routing policies on request traces before a rollout.")
app.add_typer(trace_app, name="trace")
catalog_app = typer.Typer(no_args_is_help=True, help="Model prices from the genai-prices catalog (the prices extra) "
                          "and latency blocks fitted from measurements.")
app.add_typer(catalog_app, name="catalog")
import_app = typer.Typer(no_args_is_help=True, help="Turn other tools' configs into scenarios.")
app.add_typer(import_app, name="import")



@app.callback()
def _global(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    state["debug"] = debug


def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def _progress_bar(enabled: bool, total: int | None = None, unit: str = "runs"):
    """A rich progress bar on a terminal (``total`` steps of ``unit`` when known, else a
    count); nothing in CI or pipes."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    count = TextColumn("{task.completed}/{task.total} " + unit if total is not None else "{task.completed} " + unit)
    with Progress(TextColumn("{task.description}"), BarColumn(), count, TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("starting", total=total)

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label)

        yield update


def _terminate_as_interrupt(signum, frame):  # pragma: no cover - exercised by a subprocess test
    raise KeyboardInterrupt  # so a killed run cleans up exactly as an interrupted one


@app.command()
def run(
    scenario: Path = typer.Argument(..., help="Scenario YAML file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default reports/<scenario name>/)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=MAX_SEED, help="Override the scenario's seed."),
    replications: Optional[int] = typer.Option(None, "--replications", "-r", min=1, max=MAX_REPLICATIONS,
                                               help="Override the replications."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip report.html/report.md and the figures "
                                   "(routesim report RUN_DIR draws them later)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, max=256,
                                       help="Processes running the (replication, policy) cells; the outputs are the "
                                            "same whatever the number. Default: the machine's cores for a run of "
                                            "200,000 simulated requests or more, else 1."),
) -> None:
    """Run every policy of SCENARIO and write the comparison."""
    from sim.scenario.load import load_scenario

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)  # clean up the partial output on kill
    with user_errors():
        loaded = load_scenario(scenario)  # first: a bad file fails before the heavy imports below
        result, out = _run_loaded(loaded, out, seed=seed, replications=replications, report=not no_report, jobs=jobs)
    _show_run(result, out)


@app.command()
def backtest(
    scenario: Path = typer.Argument(..., help="A scenario written by routesim import litellm-logs (with a "
                                    "backtest: block)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default reports/<scenario name>/)."),
    replications: Optional[int] = typer.Option(None, "--replications", "-r", min=1, max=MAX_REPLICATIONS,
                                               help="Override the replications."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, max=256, help="Processes, as for run."),
    candidates: list[Path] = typer.Option([], "--policy", "-p", help="A YAML file of candidate policies (name: "
                                          "{kind: ..., ...}) to compare on the calibrated world; repeatable. The "
                                          "scenario file is not changed."),
    require_match: bool = typer.Option(False, "--require-match", help="Exit 1 when a figure misses its target "
                                       "(for a pipeline that must not go on with an untrustworthy simulator)."),
) -> None:
    """Simulate production's policy on the world calibrated from its logs, set it against the logs (first in
    the report), and compare the scenario's other policies on that same world."""
    from sim.verdicts.backtest import read_backtest
    from sim.report.terminal import backtest_text
    from sim.scenario.load import load_with_candidates

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    with user_errors():
        loaded = load_with_candidates(scenario, candidates)
        if loaded.scenario.backtest is None:
            raise InputError(Problem("backtest: missing: write the scenario with routesim import litellm-logs, "
                                     "which measures the logged figures to set the simulation against",
                                     file=str(scenario)))
        result, out = _run_loaded(loaded, out, replications=replications, jobs=jobs)
    record = read_backtest(out)
    if record is None:  # never exit 0 without the outputs
        raise RuntimeError(f"the backtest finished but {out} lacks its backtest.json")
    _show_run(result, out, first=backtest_text(record, str(scenario)))
    if require_match and not record["matched"]:
        raise typer.Exit(1)


def _run_loaded(loaded, out: Path | None, *, seed: int | None = None, replications: int | None = None,
                report: bool = True, jobs: int | None = None):
    """(result, run folder) of a loaded scenario, with a progress bar on a terminal."""
    from sim.run.runner import run_to_folder

    out = out or Path("reports") / loaded.scenario.name
    runs = (replications or loaded.scenario.replications) * len(loaded.scenario.policies)
    with _progress_bar(_interactive(), total=runs) as progress:
        result = run_to_folder(loaded, out, seed=seed, replications=replications, progress=progress,
                               report=report, jobs=jobs)
    if not (out / "summary.json").is_file():  # never exit 0 without the outputs
        raise RuntimeError(f"the run finished but {out / 'summary.json'} is missing")
    return result, out


def _show_run(result, out: Path, first: str | None = None) -> None:
    """The run's warnings, ``first`` (the backtest's figures), the comparison table, what was
    written; then the index of runs."""
    from sim.report.terminal import comparison_table, gate_text

    warn(result.warnings)
    if first:
        typer.echo(first + "\n")
    typer.echo(comparison_table(result))
    gates = gate_text(out)
    if gates:
        typer.echo("\n" + gates)
    typer.echo(f"\nwrote {out}/: {', '.join(_written_files(out))}")
    _update_index(out)


def _update_index(out: Path) -> None:
    """The index of the folder holding the run (reports/, or one that has routesim's index);
    a failure here does not undo the run, it is a warning."""
    from sim.report.index_page import index_after_run

    try:
        index = index_after_run(out, Path("reports"))
    except InputError as exc:
        for problem in exc.problems:
            typer.echo(f"warning: the index of runs was not updated: {problem}", err=True)
        return
    if index is not None:
        typer.echo(f"updated {index}")


def _written_files(folder: Path) -> list[str]:
    """What routesim wrote into a run folder (its manifest), the report first."""
    from sim.run.folder import read_manifest

    first = ("report.html", "report.md", "summary.json", "summary.csv")
    files = [f for f in read_manifest(folder) or [] if (folder / f).is_file()]
    return [f for f in first if f in files] + sorted(f for f in files if f not in first)


@app.command()
def sweep(
    sweep_file: Path = typer.Argument(..., help="A sweep YAML: base scenario, grid: or cells:, optional seeds:."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Sweep folder (default reports/sweeps/<name>/); "
                                       "rerunning into it skips the cells already done."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, max=256,
                                          help="Local processes (default: the machine's cores)."),
    dask: Optional[str] = typer.Option(None, "--dask", help="Run the cells on Dask: 'local' (a LocalCluster of "
                                       "--workers processes) or a scheduler address tcp://HOST:8786 "
                                       "(the dask extra)."),
) -> None:
    """Run a scenario over a grid of overrides and seeds; write sweep.parquet, sweep.md and figures."""
    from sim.experiments.sweep import load_sweep, run_sweep

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    with user_errors():
        loaded = load_sweep(sweep_file)
        out = out or Path("reports") / "sweeps" / loaded.spec.name
        from sim.run.pools import cores

        workers = workers or cores()
        with _progress_bar(_interactive(), total=len(loaded.cells), unit="cells") as progress:
            ran, reused = run_sweep(loaded, out, workers=workers, dask=dask, progress=progress)
    if not (out / "sweep.parquet").is_file():  # never exit 0 without the outputs
        raise RuntimeError(f"the sweep finished but {out / 'sweep.parquet'} is missing")
    typer.echo(f"{len(loaded.cells)} run(s): {ran} now, {reused} reused from earlier")
    typer.echo(f"wrote {out}/ (sweep.html, sweep.md, sweep.parquet, sweep.json, figures; cells/ keeps each run's "
               "result)")
    from sim.report.index_page import index_after_sweep

    try:
        index = index_after_sweep(out, Path("reports"))
    except InputError as exc:  # the sweep stands; the index is a convenience
        for problem in exc.problems:
            typer.echo(f"warning: the index of runs was not updated: {problem}", err=True)
    else:
        if index is not None:
            typer.echo(f"updated {index}")


def _tune_folder(scenario_name: str, policy: str) -> Path:
    """reports/tune/<scenario>-<policy>/, refused when that is not one plain folder name (a policy
    may be named like a path: the default folder must stay under reports/)."""
    from sim.scenario.schema.common import SAFE_NAME, SAFE_NAME_RULE

    name = f"{scenario_name}-{policy}"
    if not SAFE_NAME.fullmatch(name):
        raise InputError(Problem(f"--policy {policy!r}: the default folder reports/tune/<scenario>-<policy>/ must be "
                                 f"one plain folder name ({SAFE_NAME_RULE}; got {name!r}): give --out"))
    return Path("reports") / "tune" / name


@app.command()
def tune(
    scenario: Path = typer.Argument(..., help="The scenario, with a gates: section (the checks to pass)."),
    policy: str = typer.Option(..., "--policy", "-p", help="The policy whose parameters to tune."),
    param: list[str] = typer.Option(..., "--param", help="PATH=VALUES under the policy: weights.cost=0:1:0.1 "
                                    "(lo:hi:step) or weights.cost=0.1,0.3,0.5; repeat for more (a grid)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder (default reports/tune/<scenario>-<policy>/); "
                                       "rerunning into it skips the candidates already run."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, max=256,
                                          help="Local processes (default: the machine's cores)."),
    dask: Optional[str] = typer.Option(None, "--dask", help="'local' or a scheduler address (the dask extra)."),
    search: str = typer.Option("grid", "--search", help="grid (every combination) or optuna (--trials candidates "
                               "proposed by Optuna's TPE sampler; lo:hi ranges allowed; the tune extra)."),
    trials: int = typer.Option(40, "--trials", min=1, max=10_000, help="Candidates to run with --search optuna."),
) -> None:
    """The cheapest setting of a policy's parameters that passes the scenario's gates, checked on a fresh seed.
    Exit 0 when one passes there too, 1 (as the gate) when none passes or the choice fails on the fresh seed."""
    from sim.experiments.tune import run_tune, setup

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    with user_errors():
        if search not in ("grid", "optuna"):
            raise InputError(Problem(f"--search {search}: grid or optuna"))
        found = setup(scenario, policy, param, search)
        out = out or _tune_folder(found.base.get("name", scenario.stem), policy)
        from sim.run.pools import cores

        with _progress_bar(_interactive(), unit="candidates") as progress:
            result = run_tune(found, out, workers=workers or cores(), dask=dask, progress=progress,
                              trials=trials if search == "optuna" else None)
    if not (out / "tune.md").is_file():
        raise RuntimeError(f"tuning finished but {out / 'tune.md'} is missing")
    typer.echo(f"{result['candidates']} candidate(s): {result['ran']} run now, {result['reused']} reused; "
               f"{result['passing']} passed every check")
    chosen = result["chosen"]
    if chosen is None:
        typer.echo("no candidate passed every check: nothing chosen")
    else:
        setting = ", ".join(f"{n.split('.', 2)[2]}={chosen[n]:.6g}" if isinstance(chosen[n], float)
                            else f"{n.split('.', 2)[2]}={chosen[n]}" for n in result["parameters"])
        validation = result["validation"]
        typer.echo(f"chosen: {setting} (cost per 1k requests {chosen['cost_per_1k_requests_usd_mean']:.4g} USD)")
        typer.echo("on a fresh seed: " + ("passes every check" if validation["passed"] else
                                          "FAILS a check - the choice was picked on noise; see tune.md"))
        for edge in result["edges"]:
            typer.echo(f"note: {edge}")
    typer.echo(f"wrote {out}/ (tune.md, tune.parquet, chosen.yaml)")
    if chosen is None or not result["validation"]["passed"]:
        raise typer.Exit(1)  # as the gate: no setting to roll out


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A folder written by routesim run.")) -> None:
    """Rebuild report.html, report.md and the figures of a finished run from its files."""
    from sim.report import rebuild_report

    with user_errors():
        rebuild_report(run_dir)
    typer.echo(f"wrote {run_dir}/report.html and report.md")


@app.command()
def gate(
    run_dir: Path = typer.Argument(..., help="A folder written by routesim run."),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="The policy to roll out (or gates.candidate)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="What it replaces (default: the run's baseline)."),
    # Ranges are checked in gate.threshold_problems: one message for the command line and the scenario.
    min_savings: Optional[float] = typer.Option(None, "--min-savings", help="Fraction, e.g. 0.2 for 20%."),
    max_quality_drop: Optional[float] = typer.Option(
        None, "--max-quality-drop", help="Largest allowed fall in quality, e.g. 0.02; checked over all requests "
        "(failures count 0) and on the answered requests alone: both must hold."),
    min_success_rate: Optional[float] = typer.Option(None, "--min-success-rate", help="Fraction, e.g. 0.999."),
    min_fault_success_rate: Optional[float] = typer.Option(
        None, "--min-fault-success-rate", help="Fraction of the requests arriving during faults answered, e.g. 0.95."),
    max_p95_latency_ratio: Optional[float] = typer.Option(
        None, "--max-p95-latency-ratio", help="Largest allowed p95 latency over the baseline's, e.g. 1.2."),
    max_p99_latency_ratio: Optional[float] = typer.Option(
        None, "--max-p99-latency-ratio", help="Largest allowed p99 latency over the baseline's, e.g. 1.5."),
    max_decision_p99_us: Optional[float] = typer.Option(
        None, "--max-decision-p99-us", help="Largest allowed p99 of the policy's decision time, in microseconds."),
) -> None:
    """Go/no-go for a rollout: exit 0 when every check passes on its 95% interval, 1 when one fails.
    The result is recorded in the run folder (gate.json) and its report, which then opens with it."""
    import shlex

    from sim.verdicts.gate import gate_record, gate_table, run_gate
    from sim.report import record_gate

    overrides = {"min_savings": min_savings, "max_quality_drop": max_quality_drop,
                 "min_success_rate": min_success_rate, "min_fault_success_rate": min_fault_success_rate,
                 "max_p95_latency_ratio": max_p95_latency_ratio, "max_p99_latency_ratio": max_p99_latency_ratio,
                 "max_decision_p99_us": max_decision_p99_us}
    with user_errors():
        checks, candidate, baseline = run_gate(run_dir, candidate, baseline, overrides)
    typer.echo(gate_table(checks, candidate, baseline))
    given = [("--candidate", candidate), ("--baseline", baseline)] + [
        ("--" + name.replace("_", "-"), value) for name, value in overrides.items() if value is not None]
    command = shlex.join(["routesim", "gate", str(run_dir)] + [
        word for flag, value in given if value is not None
        for word in (flag, f"{value:g}" if isinstance(value, float) else str(value))])
    try:  # the verdict above stands (and sets the exit code) even when it cannot be recorded
        record_gate(run_dir, gate_record(checks, candidate, baseline, command))
        typer.echo(f"recorded in {Path(run_dir) / 'gate.json'}"
                   + (" and the report" if (Path(run_dir) / "report.html").is_file() else ""))
    except InputError as exc:
        for problem in exc.problems:
            typer.echo(f"warning: the gate's result was not recorded: {problem}", err=True)
    else:
        _update_index(run_dir)  # the index shows each run's gate result
    if not all(c.passed for c in checks):
        raise typer.Exit(1)


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="A finished run folder (before)."),
    run_b: Path = typer.Argument(..., help="Another (after): a price change, a new policy version, a new seed."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the comparison as a self-contained page "
                                        "here (replaced only if routesim compare wrote it)."),
) -> None:
    """What changed between two runs (scenario, seed, version) and every headline metric of the policies they
    share, with the difference and its 95% interval."""
    from sim.verdicts.compare import compare_runs, terminal_text, write_html

    with user_errors():
        comparison = compare_runs(run_a, run_b)
        if html is not None:
            write_html(comparison, html)
    typer.echo(terminal_text(comparison))
    if html is not None:
        typer.echo(f"\nwrote {html}")


@app.command()
def index(folder: Path = typer.Argument(Path("reports"), help="A folder of run folders (default reports/).")) -> None:
    """Write FOLDER/index.html: its runs, newest first, with scenario, seed, replications, gate result and links."""
    from sim.report.index_page import write_index

    with user_errors():
        path = write_index(folder)
    typer.echo(f"wrote {path}")


@app.command()
def validate(scenario: Path = typer.Argument(..., help="Scenario YAML file.")) -> None:
    """Check SCENARIO (and its trace and policies) without running it."""
    from sim.scenario.load import load_scenario

    with user_errors():
        loaded = load_scenario(scenario)  # first: a bad file fails before the heavy imports below
        from sim.run.runner import event_warnings, preflight

        trace = preflight(loaded)
    warn(event_warnings(loaded, trace))
    sc = loaded.scenario
    typer.echo(f"OK: {scenario}: {len(sc.models)} models, {len(sc.policies)} policies, {len(sc.events)} events, "
               f"trace of {len(trace):,} requests over {trace.duration_s:,.0f} s")


@app.command()
def policies() -> None:
    """List the available policies and their parameters."""
    from sim.policies.registry import available

    found, broken = available()
    for name, why in sorted(broken.items()):
        typer.echo(f"warning: installed plug-in '{name}' cannot be used: {why}", err=True)
    for name, cls in sorted(found.items()):
        description = getattr(cls, "description", "") or (cls.__doc__ or "").strip().splitlines()[0:1]
        typer.echo(f"{name}: {description if isinstance(description, str) else ' '.join(description)}")
        params = getattr(cls, "Params", None)
        if params is not None:
            for field_name, info in params.model_fields.items():
                value = None if info.is_required() else info.get_default(call_default_factory=True)
                value = value.model_dump() if hasattr(value, "model_dump") else value
                default = "required" if info.is_required() else f"default {value!r}"
                typer.echo(f"    {field_name}: {_type_name(info.annotation)} ({default})")


def _type_name(annotation) -> str:
    """``dict[str, str | list[str]]`` as written; a nested parameter model as its fields."""
    fields = getattr(annotation, "model_fields", None)
    if fields is not None:
        return "{" + ", ".join(f"{n}: {_type_name(f.annotation)}" for n, f in fields.items()) + "}"
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(annotation))  # drop module paths


@catalog_app.command("show")
def catalog_show(
    models: list[str] = typer.Argument(..., help="Model names as the catalog knows them, e.g. gpt-5 deepseek-chat."),
    provider: Optional[str] = typer.Option(None, "--provider", help="Catalog provider id (default: the first "
                                           "provider that has the model)."),
    at: Optional[str] = typer.Option(None, "--at", help="Instant of the prices, ISO 8601 (default: now)."),
) -> None:
    """Print catalog prices: input, output, cached input, tiers, dated and time-of-day prices."""
    from sim.pricing.catalog import describe_model

    with user_errors():
        when = None if at is None else _instant(at, "--at")
        texts = [describe_model(provider, model, when) for model in models]
    typer.echo("\n\n".join(texts))


@catalog_app.command("fit-latency")
def catalog_fit_latency(
    measurements: Path = typer.Argument(..., help="Per-request measurements: llmperf's .json, or a .csv/.parquet "
                                        "with ttft_s, end_to_end_latency_s, input_tokens, output_tokens."),
    fit: str = typer.Option("quantiles", "--fit", help="quantiles (an empirical table) or lognormal."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the YAML here instead of printing it."),
    check: bool = typer.Option(False, "--check", help="Replay the measured requests through the fit and say how "
                               "close the simulated end-to-end latencies come (percentiles, KS statistic)."),
) -> None:
    """Fit a model's latency block (TTFT, decode speed, their correlation, a prefill rate
    where TTFT grows with the input) from per-request measurements."""
    from sim.report.latency_text import describe_fit

    with user_errors():
        text = describe_fit(measurements, fit, check)
        if out is None:
            typer.echo(text, nl=False)
            return
        from sim.files import atomic_file

        with atomic_file(out, "latency block") as tmp:
            tmp.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")


@import_app.command("litellm")
def import_litellm_config(
    config: Path = typer.Argument(..., help="A LiteLLM proxy config.yaml (model_list, router_settings)."),
    out: Path = typer.Option(..., "--out", "-o", help="The scenario YAML to write."),
    start: Optional[str] = typer.Option(None, "--start", help="When the simulated traffic begins, ISO 8601 "
                                        "(default: today 00:00 UTC)."),
    trace: Optional[Path] = typer.Option(None, "--trace", help="Simulate this trace (its workloads are the model "
                                         "groups asked for; wildcard routes serve the names it asks for) "
                                         "instead of synthetic traffic."),
    cache_hit_share: Optional[float] = typer.Option(None, "--cache-hit-share", min=0.0, max=1.0,
                                                    help="With LiteLLM's response cache on (cache: true): the share "
                                                         "of requests it answers, from your logs "
                                                         "(LiteLLM_SpendLogs.cache_hit). Default 0."),
) -> None:
    """Write a scenario whose models, rate limits, router defences and policy reproduce a LiteLLM proxy config."""
    from sim.ingest.litellm_config import import_litellm

    with user_errors():
        when = _instant(start, "--start") if start else None
        deployments, groups, todo, notes = import_litellm(config, out, when, trace, cache_hit_share)
    typer.echo(f"wrote {out}: {deployments} deployment(s) in {groups} model group(s)")
    for note in notes:  # also written at the top of the scenario
        typer.echo(f"note: {note}")
    if todo:
        from sim.pricing.catalog import catalog_installed

        why = ("unknown to genai-prices" if catalog_installed() else
               "not looked up: the genai-prices catalog is not installed (pip install -e '.[prices]' and import "
               "again)")
        typer.echo(f"TODO: prices {why} for {', '.join(todo)}: fill them in {out}; "
                   "routesim validate refuses the scenario until then")
    typer.echo("TODO: latency and quality are placeholders" + ("" if trace else ", and the trace is synthetic")
               + ": see the comments at the top")


@import_app.command("litellm-logs")
def import_litellm_logs_command(
    source: str = typer.Argument(..., help="A LiteLLM proxy's database (postgresql://...; read-only queries on "
                                 "LiteLLM_SpendLogs) or an export of that table (.csv, .parquet, .jsonl)."),
    out: Path = typer.Option(..., "--out", "-o", help="The scenario YAML to write."),
    trace: Path = typer.Option(..., "--trace", help="The trace to write (Parquet): one row per client request."),
    config: Optional[Path] = typer.Option(None, "--config", help="The proxy's config.yaml: adds its routing as a "
                                          "litellm-router policy (deployments matched by model_info.id)."),
    since: Optional[str] = typer.Option(None, "--since", help="Only calls that started at or after this "
                                        "instant, ISO 8601."),
    until: Optional[str] = typer.Option(None, "--until", help="Only calls that started before this instant."),
    workload: str = typer.Option("model_group", "--workload", help="What a request's workload is: model_group "
                                 "(the group asked for), team, end_user or tag (the first of its request_tags)."),
    latency: str = typer.Option("quantiles", "--latency", help="The latency fit: quantiles (empirical, "
                                "default) or lognormal."),
) -> None:
    """Calibrate a scenario on a LiteLLM proxy's logs and write the trace it replays (then: routesim backtest)."""
    from sim.ingest.litellm_logs import import_litellm_logs
    from sim.ingest.spend_logs import Window

    with user_errors():
        window = Window(_instant(since, "--since") if since else None, _instant(until, "--until") if until else None)
        done = import_litellm_logs(source, out, trace, window, workload, latency, config)
    logged = done.trace
    typer.echo(f"wrote {trace}: {logged.requests:,} requests from {logged.rows:,} logged calls "
               f"({logged.grouped:,} grouped retries/fallbacks)")
    typer.echo(f"wrote {out}: {done.deployments} deployment(s), {done.events} event(s) found in the logs")
    for note in done.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"next: routesim backtest {out}")


def _instant(text: str, option: str):
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(Problem(f"{option} '{text}': not an ISO 8601 date-time (e.g. 2025-06-01T14:00:00Z)")) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C (or SIGTERM)


def main() -> None:
    """Exit codes: 0 ok, 1 a gate failed, 2 bad input, 3 a bug of ours, 130 interrupted."""
    debug = "--debug" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)  # typer returns Ctrl-C as 130 and typer.Exit(n) as n
    except (KeyboardInterrupt, typer.Abort):
        code = INTERRUPTED
    except ModuleNotFoundError as missing:  # a dependency imported lazily by a command
        if (missing.name or "sim").split(".")[0] == "sim":
            _internal_error(debug)  # a module of ours: a bug
        typer.echo(MISSING_DEPENDENCY.format(missing.name), err=True)
        sys.exit(MISSING_EXIT)
    except Exception as exc:
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # a usage error (unknown option, value out of range): typer's message, exit 2
            sys.exit(exc.exit_code)
        _internal_error(debug)
    if code == INTERRUPTED:
        typer.echo("interrupted: nothing was written (an earlier run in the output folder is as it was)", err=True)
    sys.exit(code or 0)


def _internal_error(debug: bool) -> None:
    """Exit 3 for a bug of ours (the exception being handled), its traceback under --debug."""
    if debug:
        traceback.print_exc()
    typer.echo("internal error: this is a bug in routesim; please report it with the command you ran"
               + ("" if debug else " and the traceback that --debug prints"), err=True)
    sys.exit(3)


if __name__ == "__main__":  # pragma: no cover
    main()
