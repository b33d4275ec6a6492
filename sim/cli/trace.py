"""``routesim trace ...``: generate, transform, merge, build from labels, import and
inspect request traces. Parses and delegates, like the main command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import user_errors
from sim.errors import InputError, Problem
from sim.limits import MAX_SEED

trace_app = typer.Typer(no_args_is_help=True, help="Generate and inspect request traces.")


@trace_app.command("generate")
def trace_generate(
    scenario: Path = typer.Argument(..., help="Scenario whose trace.synthetic block describes the traffic."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.csv, .jsonl or .parquet)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=MAX_SEED, help="Override the scenario's seed."),
    replication: int = typer.Option(0, "--replication", min=0, help="Which replication's trace to write."),
) -> None:
    """Write the synthetic trace a scenario would simulate."""
    from sim.run.runner import load_trace
    from sim.scenario.load import load_scenario
    from sim.traces.table import format_from_suffix

    with user_errors():
        loaded = load_scenario(scenario)
        if loaded.scenario.trace.synthetic is None:
            raise InputError(loaded.problem(("trace",), "has no 'synthetic' block to generate from"))
        format_from_suffix(out)  # before the work, so a bad name fails fast
        seed = loaded.scenario.seed if seed is None else seed
        _write_trace(load_trace(loaded, seed, replication), out)


def _write_trace(trace, out: Path) -> None:
    """Write through a temporary file, so a failure leaves nothing half-written."""
    from sim.files import atomic_file
    from sim.traces.table import format_from_suffix, write_trace

    fmt = format_from_suffix(out)
    with atomic_file(out, "trace") as tmp:
        write_trace(trace, tmp, fmt)
    names = trace.workloads
    mix = ", ".join(names) if len(names) <= 5 else f"{', '.join(names[:5])}, ... {len(names)} workloads"
    typer.echo(f"wrote {out}: {len(trace):,} requests over {trace.duration_s:,.0f} s ({mix})")


@trace_app.command("transform")
def trace_transform(
    source: Path = typer.Argument(..., help="A routesim trace (.csv, .jsonl, .parquet)."),
    out: Path = typer.Argument(..., help="Output trace."),
    window: Optional[str] = typer.Option(None, "--window", help="START:END seconds: keep those arrivals, "
                                         "shifted to start at 0 (applied first)."),
    sample: Optional[float] = typer.Option(None, "--sample", help="Keep each request with this probability (second)."),
    speedup: Optional[float] = typer.Option(None, "--speedup", help="Divide every gap by this (last)."),
    rate: Optional[float] = typer.Option(None, "--rate", help="Scale time to this mean rate, req/s (last)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the sampling."),
) -> None:
    """Replay a real trace at another scale, keeping its shape: window, sample, speed up."""
    from sim.traces import transforms
    from sim.rng import Stream, generator
    from sim.traces.table import format_from_suffix, read_trace

    with user_errors():
        if speedup is not None and rate is not None:
            raise InputError(Problem("give --speedup or --rate, not both"))
        window_s = None
        if window is not None:
            start, _, end = window.partition(":")
            try:
                window_s = (float(start), float(end))
            except ValueError:
                raise InputError(Problem(f"--window '{window}': give START:END in seconds, e.g. 600:1800")) from None
        format_from_suffix(out)
        trace = transforms.replay(read_trace(source), window_s, sample, generator(seed, 0, Stream.TRACE), speedup,
                                  rate)
        _write_trace(trace, out)


@trace_app.command("merge")
def trace_merge(
    out: Path = typer.Argument(..., help="Output trace."),
    sources: list[str] = typer.Argument(..., help="Traces as PATH or PATH=LABEL; the label (default: the file's "
                                        "name) becomes the workload of its requests."),
) -> None:
    """Put several traces on one clock, each as its own workload."""
    from sim.traces.transforms import merge
    from sim.traces.table import format_from_suffix, read_trace

    with user_errors():
        format_from_suffix(out)
        labelled = []
        for item in sources:
            path, _, label = item.partition("=")
            labelled.append((label or Path(path).stem, read_trace(Path(path))))
        _write_trace(merge(labelled), out)


@trace_app.command("labels")
def trace_labels(
    table: Path = typer.Argument(..., help="CSV of per-prompt correctness (e.g. RouteLLM's mmlu_labels.csv)."),
    out: Path = typer.Argument(..., help="Output trace."),
    model: list[str] = typer.Option(..., "--model", help="SCENARIO_MODEL=COLUMN: that model's 0/1 column "
                                    "(repeatable), e.g. --model gpt-4=gpt_4_1106_correct."),
    rate: float = typer.Option(1.0, "--rate", min=1e-9, help="Poisson arrival rate, req/s."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the arrivals."),
    chars_per_token: float = typer.Option(4.0, "--chars-per-token", min=0.1, help="For input tokens from prompt_chars."),
    output_tokens: int = typer.Option(1, "--output-tokens", min=0, help="Output tokens of every request."),
    workload_column: Optional[str] = typer.Option(None, "--workload-column", help="Column to use as the workload "
                                                  "(default: the table's file name)."),
) -> None:
    """Build a counterfactual-replay trace (quality.<model> columns) from per-prompt labels."""
    from sim.rng import Stream, generator
    from sim.traces.table import format_from_suffix
    from sim.traces.transforms import labels_trace

    with user_errors():
        format_from_suffix(out)
        models = {}
        for item in model:
            name, sep, column = item.partition("=")
            if not sep or not name or not column:
                raise InputError(Problem(f"--model '{item}': give SCENARIO_MODEL=COLUMN"))
            models[name] = column
        trace = labels_trace(table, models, rate, generator(seed, 0, Stream.TRACE), chars_per_token, output_tokens,
                             workload_column)
        _write_trace(trace, out)


@trace_app.command("import")
def trace_import(
    source: Path = typer.Argument(..., help="The source trace."),
    out: Path = typer.Argument(..., help="Output trace (.parquet, .csv or .jsonl)."),
    fmt: str = typer.Option(..., "--format", help="azure, mooncake, burstgpt, csv, jsonl or parquet."),
    column: list[str] = typer.Option([], "--column", help="Generic formats: ROUTESIM=SOURCE column mapping, "
                                     "e.g. --column arrival_s=ts --column input_tokens=prompt_tokens (repeatable)."),
    time_unit: str = typer.Option("s", "--time-unit", help="Generic formats: the arrival column's unit: "
                                  "s, ms, us, ns or datetime."),
    workload: Optional[str] = typer.Option(None, "--workload", help="One workload label for every request."),
    workload_from: str = typer.Option("model", "--workload-from", help="BurstGPT: model, log_type or model+log_type."),
    jitter_s: Optional[float] = typer.Option(None, "--jitter-s", min=0, help="Mooncake: spread rounded timestamps "
                                             "uniformly over this many seconds (3 matches its rounding)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the jitter."),
    chunk_rows: int = typer.Option(200_000, "--chunk-rows", min=1, help="Rows read at a time (bounds memory)."),
    sort: bool = typer.Option(False, "--sort", help="Sort by time (a source whose clock restarts, or unsorted rows): "
                              "in memory, up to 20 million rows."),
) -> None:
    """Convert a public or generic trace into routesim's trace format, in bounded memory."""
    from sim.traces.formats import ImportOptions, import_trace

    with user_errors():
        columns = {}
        for item in column:
            target, sep, src = item.partition("=")
            if not sep or not target or not src:
                raise InputError(Problem(f"--column '{item}': give ROUTESIM=SOURCE, e.g. arrival_s=timestamp"))
            columns[target.strip()] = src.strip()
        options = ImportOptions(columns, time_unit, workload, workload_from, jitter_s, seed, chunk_rows, sort)
        summary = import_trace(source, fmt, out, options)
    mix = ", ".join(f"{name} {count:,}" for name, count in sorted(summary.workloads.items()))
    failed = f"; {summary.failed_in_source:,} failed in the source (flagged in failed_in_source)" \
        if summary.failed_in_source else ""
    typer.echo(f"wrote {out}: {summary.requests:,} requests over {summary.duration_s:,.0f} s ({mix}){failed}")


@trace_app.command("inspect")
def trace_inspect(
    path: Path = typer.Argument(..., help="Trace file (.csv, .jsonl, .parquet)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv, jsonl or parquet (default: from the suffix)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also draw the trace's figure (arrival rate, token "
                                       "histograms per workload) into this file."),
    no_png: bool = typer.Option(False, "--no-png", hidden=True,
                                help="No figure (the default; kept so older scripts still run)."),
) -> None:
    """Print a trace's size, mean and peak rate, burstiness and token percentiles per workload; with --png, draw
    its figure."""
    from sim.files import check_writable
    from sim.traces.table import describe, read_trace

    with user_errors():
        if png is not None:
            check_writable(png, "figure")  # before reading a trace that may be large
        trace = read_trace(path, fmt)
    typer.echo(describe(trace))
    if png is not None and not no_png:
        from sim.report.trace_figure import trace_figure

        trace_figure(trace, png)
        typer.echo(f"\nwrote {png} (arrival rate over time, token histograms per workload)")
