"""Runs a scenario: every policy in every replication, then the outputs.

Data flows one way: scenario -> (trace, world, policies) -> engine + router ->
metrics -> stats -> report. Within a replication every policy faces the same
trace, world and per-attempt variates (common random numbers); each policy runs
in its own simpy environment, so one cannot disturb another.

Outputs are written through ``run.folder.new_run``: into a hidden partial folder,
moved into place only when complete, so an interrupted run never leaves a report
that looks whole, an earlier run in ``--out`` survives a failed one, and nothing
routesim did not write is ever replaced.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow.parquet as pq
import yaml

from sim import __version__
from sim.world.beliefs import SharedDraws
from sim.world.beliefs import describe as describe_knowledge
from sim.world.models import ModelTable, build_model_table
from sim.core.engine import Engine
from sim.errors import InputError, Problem
from .memory import release_memory
from sim.core.recorder import RunRecorder
from sim.metrics.per_run import run_columns, run_metrics
from .tables import TABLES, Sink, TableStream
from sim.policies.base import POLICY_FAILURES
from sim.policies.registry import PolicyConfigError, build, is_builtin, workload_problems
from sim.rng import Stream, generator, name_key, policy_seed
from sim.world.providers import Providers
from .folder import RUN_FILES, check_output_folder, new_run
from sim.metrics.resilience import fault_rows, resilience_metrics
from sim.core.router import Router
from sim.scenario.load import LoadedScenario
from sim.metrics.registry import SUMMARY_METRICS
from sim.traces.synthetic import generate
from sim.traces.table import Trace, read_trace
from sim.world.truth import GroundTruth
from sim.world.world import World, draw_difficulty

Progress = Callable[[int, int, str], None]


@dataclass
class PolicyResult:
    """What the report needs of one policy, over all replications."""

    runs: list[dict] = field(default_factory=list)  # run_metrics per replication
    faults: list[dict] = field(default_factory=list)  # one row per (replication, fault window)


@dataclass
class RunResult:
    scenario: str
    seed: int
    replications: int
    baseline: str
    policies: dict[str, PolicyResult]
    summary: dict
    horizon_s: float
    fault_windows: list[tuple[float, float, str, str]]  # (start, end, kind, target), all replications
    price_changes: list[float]
    requests_per_replication: list[int]
    decision_budget_ms: float = 100.0
    upper_bounds: list[str] = field(default_factory=list)  # policies that see the ground truth (the oracle)
    comparisons: list[dict] = field(default_factory=list)  # two-model research metrics (research.py)
    knowledge: dict[str, dict[str, str]] = field(default_factory=dict)  # per policy: what it knew, in words
    warnings: list[Problem] = field(default_factory=list)  # about the scenario, for the terminal


# --------------------------------------------------------------------------- inputs
def load_trace(loaded: LoadedScenario, seed: int, replication: int) -> Trace:
    """The trace of one replication: the file's (replayed as ``trace.replay`` says; the
    same every time unless it samples) or a fresh synthetic one."""
    spec = loaded.scenario.trace
    if spec.path is None:
        return generate(spec.synthetic, generator(seed, replication, Stream.TRACE))
    trace = read_trace(loaded.trace_path(), spec.format)
    replay = spec.replay
    if replay is None:
        return trace
    try:
        from sim.traces import transforms  # pandas: only a replayed trace file needs it

        return transforms.replay(trace, replay.window_s, replay.sample, generator(seed, replication, Stream.TRACE),
                                 replay.speedup, replay.rate_per_s)
    except InputError as exc:
        raise InputError([loaded.problem(("trace", "replay"), p.message) for p in exc.problems]) from None


def check_trace(loaded: LoadedScenario, trace: Trace) -> None:
    """Cross-checks between the trace and the scenario, all problems at once."""
    sc = loaded.scenario
    problems = []
    for model in trace.quality_labels:
        if model not in sc.models:
            problems.append(Problem(f"column quality.{model}: no model '{model}' in the scenario",
                                    file=str(loaded.trace_path() or "trace")))
    if sc.workloads:
        unknown = sorted(set(trace.workloads) - set(sc.workloads))
        if unknown:
            problems.append(loaded.problem(("workloads",), f"the trace has workload(s) {', '.join(unknown)} "
                                                            f"not declared here (declared: {', '.join(sc.workloads)})"))
    for name, spec in sc.policies.items():
        try:
            found = workload_problems(spec.kind, spec.all_params(), trace.workloads)
        except (PolicyConfigError, ValueError):
            continue  # reported by the scenario's own checks
        params_path = ("params",) if spec.params else ()
        problems += [loaded.problem(("policies", name) + params_path + path, message) for path, message in found]
    if problems:
        raise InputError(problems)
    build_model_table(loaded, trace.workloads, trace.duration_s)  # every model needs an ability for every workload


def preflight(loaded: LoadedScenario, seed: int | None = None) -> Trace:
    """Everything ``validate`` checks beyond the YAML: the trace and the policies."""
    seed = loaded.scenario.seed if seed is None else seed
    trace = load_trace(loaded, seed, 0)
    check_trace(loaded, trace)
    for name in loaded.scenario.policies:
        construct(loaded, name, seed=0)
    return trace


def event_warnings(loaded: LoadedScenario, trace: Trace) -> list[Problem]:
    """Events that can never apply: they begin after the trace's last arrival."""
    horizon = _horizon(loaded, trace)
    warnings = []
    for i, event in enumerate(loaded.scenario.events):
        start = getattr(event, "start_s", getattr(event, "at_s", 0.0))
        if start > horizon:
            warnings.append(loaded.problem(("events", i), f"{event.kind} at {start:g} s begins after the trace ends "
                                                          f"({horizon:g} s): it never applies"))
    return warnings


def construct(loaded: LoadedScenario, name: str, seed: int):
    """Policy ``name`` built from its own deep copy of the parameters; its constructor's
    failure (even SystemExit) is bad input naming the policy, not a crash."""
    spec = loaded.scenario.policies[name]
    try:
        return build(spec.kind, spec.all_params(), seed=seed)
    except PolicyConfigError as exc:
        raise InputError([loaded.problem(("policies", name), m) for _, m in exc.problems]) from None
    except POLICY_FAILURES as exc:
        if is_builtin(spec.kind):
            raise  # its parameters were validated: a crash in a built-in policy is our bug (exit 3)
        raise InputError(loaded.problem(("policies", name), f"cannot construct the policy: {type(exc).__name__}: {exc}")) from None


# --------------------------------------------------------------------------- one run
def simulate(loaded: LoadedScenario, policy_name: str, world: World, catalog: ModelTable,
             shared: SharedDraws, seed: int, replication: int, sink: Sink | None = None) -> tuple[RunRecorder, float]:
    """One policy through one replication; returns its records and its breakers' total open time.
    With a ``sink`` its tables go there slice by slice as the run goes on (``run_tables``)."""
    policy = construct(loaded, policy_name, policy_seed(seed, replication, policy_name))
    router_spec = loaded.scenario.router_for(policy_name)
    if getattr(policy, "upper_bound", False):  # only an upper bound may see the ground truth
        policy.bind_ground_truth(GroundTruth(world, catalog, router_spec))
    recorder = RunRecorder(len(world.trace))
    recorder.d_latency = decision_latency(loaded, policy_name, len(world.trace), seed, replication)  # drawn up front
    engine = Engine()
    router = Router(policy, world, catalog, router_spec, engine.schedule, recorder,
                    Providers(loaded.scenario, catalog), shared.beliefs_of(policy_name), recorder.d_latency)
    stream = None if sink is None else TableStream(recorder, policy_name, replication, world.trace, catalog.names,
                                                   sink, router.feedback_delay_s)
    # The run allocates millions of short-lived objects and creates no reference
    # cycles, so the cyclic collector only costs time here (a quarter of a
    # million-request run); reference counting still frees everything.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        engine.run(router.arrival_s, router.on_arrival)
    finally:
        if gc_was_enabled:
            gc.enable()
    if stream is not None:
        stream.close()
    breakers = router.known.breakers or []
    return recorder, sum(b.open_time_until(engine.now) for b in breakers)


def decision_latency(loaded: LoadedScenario, policy_name: str, n: int, seed: int, replication: int):
    """The policy's modelled decision latency of each request (None when it has none): drawn
    from a stream keyed by the policy's name, so no other policy's draws move."""
    spec = loaded.scenario.policies[policy_name].decision_latency_s
    if spec is None:
        return None
    rng = generator(seed, replication, Stream.DECISION, name_key(policy_name))
    return spec.distribution().sample(rng, n).tolist()


#: Text columns with few distinct values, dictionary-encoded in the Parquet files. The others
#: (request ids, numbers) are not: trying a dictionary on a million distinct ids first and
#: giving it up doubled the time spent writing the tables.
_REPEATING_TEXT = frozenset({"policy", "workload", "status", "model", "outcome", "verdict", "candidates", "reason",
                             "policy_error"})


class _TableSinks:
    """One Parquet file per table; each (policy, replication) run adds its slices as row groups."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, name: str, slices) -> None:
        """Write a run's table, given as Arrow table slices (a row group each)."""
        for table in slices:
            writer = self.writers.get(name)
            if writer is None:
                writer = self.writers[name] = pq.ParquetWriter(
                    self.folder / f"{name}.parquet", table.schema, store_schema=False,
                    use_dictionary=[c for c in table.column_names if c in _REPEATING_TEXT])
            writer.write_table(table)

    def write_slice(self, tables: dict[str, Any]) -> None:
        """One slice of a run's tables (a ``run.tables.Sink``)."""
        for name, table in tables.items():
            self.write(name, [table])

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


@dataclass
class Replication:
    """What every policy of one replication faces (common random numbers)."""

    r: int
    trace: Trace
    catalog: ModelTable
    world: World
    shared: SharedDraws
    slo: np.ndarray
    horizon_s: float

    def facts(self) -> tuple:
        """What the run's summary needs of it: (fault windows, price change times, horizon, requests)."""
        return self.world.fault_windows, self.world.price_change_times, self.horizon_s, len(self.trace)


def replication(loaded: LoadedScenario, seed: int, r: int, first_trace: Trace | None = None) -> Replication:
    """Replication ``r``'s trace, world and shared draws (``first_trace``: replication 0's
    trace when the caller already made and checked it)."""
    sc = loaded.scenario
    if r == 0 and first_trace is not None:
        trace = first_trace  # made and checked by the preflight: a large trace is not made twice
    else:
        trace = load_trace(loaded, seed, r)
        check_trace(loaded, trace)
    catalog = build_model_table(loaded, trace.workloads, _horizon(loaded, trace))
    difficulty = draw_difficulty(sc, trace, seed, r)
    world = World(sc, catalog, trace, difficulty, seed, r, sc.max_attempts())
    slo = np.array([(sc.workloads[w].slo_s if w in sc.workloads else None) or np.inf for w in trace.workloads])
    return Replication(r, trace, catalog, world, SharedDraws(sc, catalog, difficulty, seed, r), slo,
                       _horizon(loaded, trace))


@dataclass
class Cell:
    """One policy's run through one replication, as the outputs need it."""

    metrics: dict
    faults: list[dict]
    tables: dict[str, Any]  # requests, attempts, decisions: each a list of Arrow table slices (none when sent
    # to a sink as the cell ran)


def run_cell(loaded: LoadedScenario, rep: Replication, name: str, seed: int, sink: Sink | None = None) -> Cell:
    """One policy through one replication. Its tables go to ``sink`` slice by slice as it runs,
    or, without one, into the Cell."""
    kept: dict[str, list] = {table: [] for table in TABLES}

    def keep(tables: dict) -> None:
        for table, data in tables.items():
            kept[table].append(data)

    rec, breaker_open_s = simulate(loaded, name, rep.world, rep.catalog, rep.shared, seed, rep.r, sink or keep)
    trace = rep.trace
    cols = run_columns(rec, len(trace))
    windows = fault_rows(cols, trace.arrival_s, rep.world.fault_windows)
    metrics = {**run_metrics(cols, trace.workload, rep.slo),
               **resilience_metrics(cols, trace.arrival_s, windows, breaker_open_s,
                                    loaded.scenario.slo.availability)}
    return Cell(metrics, [{"policy": name, "replication": rep.r, **row} for row in windows],
                {} if sink is not None else kept)


def run_scenario(loaded: LoadedScenario, folder: Path, seed: int | None = None, replications: int | None = None,
                 progress: Progress | None = None, first_trace: Trace | None = None, jobs: int = 1) -> RunResult:
    """Simulate everything and write the Parquet tables into ``folder``; with ``jobs`` > 1 the
    (replication, policy) cells run in that many processes, the outputs written in the same
    order as one process writes them."""
    sc = loaded.scenario
    seed = sc.seed if seed is None else seed
    replications = sc.replications if replications is None else replications
    results = {name: PolicyResult() for name in sc.policies}
    total_runs, done = replications * len(sc.policies), 0
    horizon, sizes = 0.0, []
    fault_windows: set = set()  # over all replications (random incidents differ between them)
    price_changes: list = []
    sinks = _TableSinks(folder)
    try:
        for (r, name), world_facts, cell in _cells(loaded, seed, replications, first_trace, jobs, sinks.write_slice):
            if world_facts is not None:  # the replication's first cell
                windows, price_changes, rep_horizon, size = world_facts
                fault_windows.update(windows)
                horizon = max(horizon, rep_horizon)
                sizes.append(size)
            if progress:
                progress(done, total_runs, f"replication {r + 1}/{replications}: {name}")
            res = results[name]
            res.faults += cell.faults
            res.runs.append(cell.metrics)
            for table, data in cell.tables.items():
                sinks.write(table, data)
            done += 1
    finally:
        sinks.close()
    if progress:
        progress(done, total_runs, "done")
    # Imported here, not at the top: a --jobs worker imports this module to run cells and needs
    # neither pandas nor scipy (a third of its start-up).
    from sim.metrics.research import comparisons
    from sim.metrics.stats import summarize

    summary = summarize({n: res.runs for n, res in results.items()}, sc.baseline_policy)
    upper_bounds = [name for name in sc.policies if sc.is_upper_bound(name)]
    static_models = {name: spec.all_params()["model"] for name, spec in sc.policies.items() if spec.kind == "static"}
    return RunResult(sc.name, seed, replications, sc.baseline_policy, results, summary, horizon,
                     sorted(fault_windows), list(price_changes), sizes, sc.slo.decision_p99_ms, upper_bounds,
                     comparisons(folder, static_models, upper_bounds),
                     knowledge={name: describe_knowledge(sc, name) for name in sc.policies})


def _cells(loaded: LoadedScenario, seed: int, replications: int, first_trace: Trace | None, jobs: int, sink: Sink):
    """((replication, policy), the replication's world facts on its first cell else None, Cell),
    in replication-then-policy order, computed here (their tables sent to ``sink`` as they run)
    or in ``jobs`` processes (their tables in the Cells)."""
    names = list(loaded.scenario.policies)
    keys = [(r, name) for r in range(replications) for name in names]
    if jobs <= 1 or len(keys) <= 1:
        for r in range(replications):
            rep = replication(loaded, seed, r, first_trace)
            for k, name in enumerate(names):
                yield (r, name), rep.facts() if k == 0 else None, run_cell(loaded, rep, name, seed, sink)
            del rep
        return
    from .pools import in_order_longest_first, worker_pool

    workers = min(jobs, len(keys))
    with worker_pool(workers, _worker_init, (loaded, seed)) as pool:
        # Cells of a replication or two ahead may start early; the policy is what sets a cell's time.
        cells = in_order_longest_first(pool, workers, _worker_cell, keys, kind=lambda key: key[1],
                                       window=2 * len(names) + workers)
        for key, (facts, cell) in cells:
            yield key, facts if key[1] == names[0] else None, cell


# --------------------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}


def _worker_init(loaded: LoadedScenario, seed: int) -> None:
    _WORKER.update(loaded=loaded, seed=seed, rep=None)


def _worker_cell(key: tuple[int, str]):
    """One cell in a worker process; the replication is kept for the worker's next cell
    (cells arrive in replication order, so it is rebuilt once per replication and worker)."""
    r, name = key
    loaded, seed, rep = _WORKER["loaded"], _WORKER["seed"], _WORKER["rep"]
    if rep is None or rep.r != r:
        rep = _WORKER["rep"] = None  # free the previous one first
        rep = _WORKER["rep"] = replication(loaded, seed, r)
    return rep.facts(), run_cell(loaded, rep, name, seed)  # its tables in the Cell, to send them back


def run_in_scratch(data: dict, base_path: Path, seed: int, replications: int) -> tuple[LoadedScenario, RunResult]:
    """Validate ``data`` (a scenario, as if read from ``base_path``) and run it, its tables in a
    folder removed afterwards: what a sweep's cell or a tuning candidate needs."""
    import tempfile

    from sim.scenario.load import scenario_from_data

    loaded = scenario_from_data(data, Path(base_path))
    first_trace = preflight(loaded, seed)
    with tempfile.TemporaryDirectory(prefix="routesim-cell-") as folder:
        return loaded, run_scenario(loaded, Path(folder), seed, replications, first_trace=first_trace)


def _horizon(loaded: LoadedScenario, trace: Trace) -> float:
    synthetic = loaded.scenario.trace.synthetic
    return synthetic.duration_s if synthetic is not None else trace.duration_s


# --------------------------------------------------------------------------- outputs
def summary_document(result: RunResult) -> dict:
    return {
        "scenario": result.scenario,
        "seed": result.seed,
        "replications": result.replications,
        "baseline": result.baseline,
        "upper_bounds": result.upper_bounds,
        "knowledge": result.knowledge,
        "routesim_version": __version__,
        # What the report needs beyond the metrics, so `routesim report` can rebuild it from the folder.
        "run": {"horizon_s": result.horizon_s, "requests_per_replication": result.requests_per_replication,
                "fault_windows": [list(w) for w in result.fault_windows], "price_changes_s": result.price_changes,
                "decision_budget_ms": result.decision_budget_ms},
        "policies": {name: {m: metrics[m] for m in SUMMARY_METRICS} for name, metrics in result.summary.items()},
        "comparisons": result.comparisons,
    }


def write_faults(result: RunResult, folder: Path) -> None:
    """faults.csv: per policy, replication and fault window, what happened."""
    import pandas as pd

    rows = [row for res in result.policies.values() for row in res.faults]
    columns = ["policy", "replication", "start_s", "end_s", "kind", "target", "requests", "failed", "success_rate",
               "extra_latency_s", "time_to_failover_s", "recovered"]
    pd.DataFrame(rows, columns=columns).to_csv(folder / "faults.csv", index=False)


def write_replications(result: RunResult, folder: Path) -> None:
    """replications.parquet: every per-run and paired metric of each (policy, replication),
    the values the summary's intervals are made of (and that the gate pairs)."""
    import pyarrow as pa

    from sim.metrics.stats import paired

    baseline_runs = result.policies[result.baseline].runs
    rows: dict[str, list] = {"policy": [], "replication": []}
    for name, res in result.policies.items():
        paired_values = paired(res.runs, baseline_runs)
        for r, run in enumerate(res.runs):
            rows["policy"].append(name)
            rows["replication"].append(r)
            for metric in SUMMARY_METRICS:
                value = paired_values[metric][r] if metric in paired_values else run[metric]
                rows.setdefault(metric, []).append(value)
    pq.write_table(pa.table(rows), folder / "replications.parquet")


def write_summary(result: RunResult, folder: Path) -> None:
    doc = summary_document(result)
    # allow_nan=False: a non-finite number here is a bug of ours, not a value a reader should meet.
    (folder / "summary.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    header = ["policy"] + [f"{m}_{part}" for m in SUMMARY_METRICS for part in ("mean", "ci95_lo", "ci95_hi")]
    lines = [",".join(header)]
    for name, metrics in doc["policies"].items():
        row = [name]
        for m in SUMMARY_METRICS:
            value = metrics[m]
            row += ["" if v is None else repr(float(v)) for v in (value["mean"], *value["ci95"])]
        lines.append(",".join(row))
    (folder / "summary.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def resolved_scenario(loaded: LoadedScenario, seed: int, replications: int) -> dict:
    """The scenario with every default filled in, runnable from anywhere."""
    sc = loaded.scenario
    doc = sc.model_dump(mode="json", exclude_none=True)
    doc["routesim_version"] = __version__
    doc["seed"], doc["replications"] = seed, replications
    if sc.trace.path is not None:
        doc["trace"]["path"] = str(loaded.trace_path().resolve())
    doc["policies"] = {}
    for name, spec in sc.policies.items():
        entry = {"kind": spec.kind, "params": spec.all_params()}
        if spec.router:
            entry["router"] = spec.router
        if spec.decision_latency_s is not None:
            entry["decision_latency_s"] = spec.decision_latency_s.model_dump()
        doc["policies"][name] = entry
    doc["baseline"] = sc.baseline_policy
    return doc


def run_to_folder(loaded: LoadedScenario, out: Path, seed: int | None = None, replications: int | None = None,
                  progress: Progress | None = None, report: bool = True, jobs: int | None = 1) -> RunResult:
    """Run the scenario and write every output into ``out`` atomically (the
    report too unless ``report`` is False; ``routesim report`` can add it later);
    ``jobs`` processes run the (replication, policy) cells (None: ``default_jobs``)."""
    sc = loaded.scenario
    seed = sc.seed if seed is None else seed
    replications = sc.replications if replications is None else replications
    will_write = list(RUN_FILES)
    if sc.backtest is not None:
        from sim.verdicts.backtest import FILE as BACKTEST_FILE

        will_write.append(BACKTEST_FILE)
    if report:
        from sim.report import report_files, write_report  # figures load matplotlib: only when reporting

        will_write += report_files()
    check_output_folder(out, will_write)
    first_trace = preflight(loaded, seed)  # bad input fails before anything is written
    warnings = event_warnings(loaded, first_trace)
    if jobs is None:
        from .pools import default_jobs

        jobs = default_jobs(len(first_trace) * len(sc.policies) * replications)
    with new_run(out, will_write) as folder:
        result = run_scenario(loaded, folder, seed, replications, progress, first_trace, jobs)
        result.warnings = warnings
        resolved = resolved_scenario(loaded, seed, replications)
        (folder / "scenario.resolved.yaml").write_text(
            f"# Resolved by routesim {__version__}: every default filled in. Rerun with\n"
            f"#   routesim run scenario.resolved.yaml\n" + yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
        write_faults(result, folder)
        write_replications(result, folder)
        write_summary(result, folder)
        if sc.backtest is not None:  # the simulation of production against its logs, before the report shows it
            from sim.verdicts.backtest import backtest_rows, write_backtest

            write_backtest(folder, sc.backtest, backtest_rows(folder, sc.backtest))
        if report:
            if progress:
                total = replications * len(sc.policies)
                progress(total, total, "drawing the figures and writing the report")
            release_memory()  # the run's, before the report's: the peak is the larger of the two, not their sum
            write_report(folder)  # from the files just written, as `routesim report` would
    return result
