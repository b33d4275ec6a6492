"""``routesim tune``: the cheapest setting of a policy's parameters that passes the
scenario's gates, found on a grid of candidates and checked on fresh seeds.

Every candidate is the scenario with the policy's parameters overridden, run
with the scenario's seed (common random numbers: candidates differ only by
their parameters) against the gate's baseline; the gate's checks are decided
on the 95% intervals over replications, as ``routesim gate`` decides them. The
chosen setting is the cheapest (mean cost per 1k requests) that passes every
check. Picking the best of many noisy candidates flatters it, so the choice is
run again on a seed no candidate saw, and both verdicts are reported.

Candidates run on the sweep executors (local processes or Dask), recorded as
they land, so a tuning run resumes where it stopped (``experiments/sweep.py``).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sim.errors import InputError, Problem
from sim.verdicts.gate import CHECKS, evaluate, gate_thresholds
from sim.files import atomic_file
from .sweep import (SweepCell, cell_rows, check_dask, checked_cell, claimed_folder, input_digests, metric_columns,
                    run_cells)

#: What tune.parquet keeps of each candidate's summary, beside its gate checks.
TUNE_METRICS = ("cost_per_1k_requests_usd", "savings_vs_baseline", "mean_quality", "quality_delta_vs_baseline",
                "success_rate")
MAX_CANDIDATES = 10_000
MAX_VALUES = 1_000  # values of one parameter
#: The fresh seed a choice is validated on: far from any seed a scenario is likely to use.
VALIDATION_SEED_OFFSET = 1_000_003


@dataclass
class TuneSetup:
    """What a tuning run checked before it started: the scenario, the tuned policy and its
    baseline, the gate's thresholds and the parameters' values or search spaces."""

    scenario_path: Path
    base: dict  # the scenario file's data
    policy: str
    baseline: str
    thresholds: dict[str, float]
    parameters: dict[str, list[Any]]  # path under policies.<policy> -> grid values (Optuna: the range's ends)
    seed: int
    replications: int
    spaces: dict[str, tuple] = field(default_factory=dict)  # path -> its Optuna search space (parse_space)
    inputs: dict[str, str] = field(default_factory=dict)  # the files the scenario reads -> their sha256

    def cells(self, seed: int | None = None) -> list[SweepCell]:
        """The grid's candidates, in order (the last parameter varies fastest)."""
        return [self.cell(k, values, seed) for k, values in enumerate(itertools.product(*self.parameters.values()))]

    def cell(self, number: int, values, seed: int | None = None) -> SweepCell:
        """The candidate with these parameter values (in ``parameters``' order)."""
        from sim.scenario.overrides import OverrideError, apply_overrides

        overrides = {f"policies.{self.policy}.{p}": v for p, v in zip(self.parameters, values)}
        try:
            data = apply_overrides(self._two_policies(), overrides)
        except OverrideError as exc:
            raise InputError(Problem(f"--param: {exc}", file=str(self.scenario_path))) from None
        return SweepCell(number, overrides, self.seed if seed is None else seed, data, self.replications, self.inputs)

    def _two_policies(self) -> dict:
        """The scenario with only the tuned policy and the baseline: nothing else is needed."""
        data = dict(self.base)
        data["policies"] = {name: spec for name, spec in self.base["policies"].items()
                            if name in (self.policy, self.baseline)}
        data["baseline"] = self.baseline
        if isinstance(data.get("gates"), dict):  # the candidate is the tuned policy, whichever the file names
            data["gates"] = {k: v for k, v in data["gates"].items() if k != "candidate"}
        return data


def parse_values(text: str) -> list[Any]:
    """``0.1,0.2,0.5`` or ``lo:hi:step`` (both ends included) into candidate values; ValueError
    naming what is wrong (not a number, not finite, too many values, YAML that does not parse)."""
    if text.count(":") == 2:
        lo, hi, step = _numbers(text)
        if step <= 0 or hi < lo:
            raise ValueError(f"'{text}': lo:hi:step needs lo <= hi and step > 0")
        steps = (hi - lo) / step
        if not math.isfinite(steps) or steps > MAX_VALUES:
            raise ValueError(f"'{text}': more than {MAX_VALUES:,} values")
        count = int(math.floor(steps + 1e-9)) + 1
        if count > MAX_VALUES:
            raise ValueError(f"'{text}': {count} values; at most {MAX_VALUES:,}")
        return [round(lo + k * step, 12) for k in range(count)]
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"'{text}': an empty value")
        try:
            value = yaml.safe_load(part)
        except yaml.YAMLError as exc:
            raise ValueError(f"'{part}': not a value ({str(exc).splitlines()[0]})") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"'{part}': not a finite number")
        values.append(value)
    if len(values) > MAX_VALUES:
        raise ValueError(f"'{text}': {len(values):,} values; at most {MAX_VALUES:,}")
    return values


def _numbers(text: str) -> list[float]:
    """The ``:``-separated finite numbers of a range."""
    numbers = []
    for part in text.split(":"):
        try:
            number = float(part)
        except ValueError:
            raise ValueError(f"'{text}': '{part.strip()}' is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"'{text}': '{part.strip()}' is not a finite number")
        numbers.append(number)
    return numbers


def parse_space(text: str) -> tuple:
    """A parameter's search space for Optuna: ``lo:hi`` (any number between), ``lo:hi:step``
    (a step grid) or a list (one of its values)."""
    if text.count(":") == 1:
        lo, hi = _numbers(text)
        if hi <= lo:
            raise ValueError(f"'{text}': lo:hi needs lo < hi")
        return ("float", lo, hi)
    if text.count(":") == 2:
        lo, hi, step = _numbers(text)
        parse_values(text)  # the same checks as the grid's
        return ("step", lo, hi, step)
    return ("choice", parse_values(text))


def _ends(space: tuple) -> list[Any]:
    """The values that bound a space (checked before a search starts)."""
    if space[0] == "choice":
        return list(space[1])
    return [space[1], space[2]]


def setup(scenario_path: Path, policy: str, params: list[str], search: str = "grid") -> TuneSetup:
    """Check the scenario, the policy, the gates and every candidate before anything runs."""
    from sim.scenario.load import load_scenario
    from sim.scenario.yamlio import load_yaml

    loaded = load_scenario(scenario_path)
    sc = loaded.scenario
    if policy not in sc.policies:
        raise InputError(Problem(f"--policy: no policy '{policy}' (policies: {', '.join(sc.policies)})",
                                 file=str(scenario_path)))
    gates = sc.gates
    thresholds = gate_thresholds(gates)
    if not thresholds:
        raise InputError(Problem("tuning needs the checks to pass: give the scenario a gates: section "
                                 "(min_savings, max_quality_drop, min_success_rate, ...)", file=str(scenario_path)))
    baseline = gates.baseline or sc.baseline_policy
    if baseline == policy:
        raise InputError(Problem(f"--policy {policy} is the gate's baseline; tune another policy",
                                 file=str(scenario_path)))
    parameters: dict[str, list[Any]] = {}
    spaces: dict[str, tuple] = {}
    for text in params:
        path, sep, values = text.partition("=")
        if not sep or not path.strip():
            raise InputError(Problem(f"--param '{text}': write PATH=VALUES, e.g. weights.cost=0:1:0.1"))
        try:
            if search == "optuna":
                spaces[path.strip()] = parse_space(values)
                parameters[path.strip()] = _ends(spaces[path.strip()])
            elif values.count(":") == 1:
                raise ValueError(f"'{values}': a grid needs lo:hi:step or a list (lo:hi is for --search optuna)")
            else:
                parameters[path.strip()] = parse_values(values)
        except ValueError as exc:
            raise InputError(Problem(f"--param {path.strip()}: {exc}")) from None
    if not parameters:
        raise InputError(Problem("give at least one --param PATH=VALUES (a path under the policy, e.g. weights.cost)"))
    base, _ = load_yaml(scenario_path)
    count = math.prod(len(values) for values in parameters.values())  # counted before any is built
    if count > MAX_CANDIDATES:
        raise InputError(Problem(f"{count:,} candidates: at most {MAX_CANDIDATES:,}; narrow the ranges"))
    tune = TuneSetup(Path(scenario_path), base, policy, baseline, thresholds, parameters, sc.seed, sc.replications,
                     spaces, input_digests(loaded))
    for cell in tune.cells():  # every candidate is a valid scenario (for Optuna: every combination of the ends)
        _, problems = checked_cell(cell.data, tune.scenario_path, "candidate {overrides}", cell.overrides, "")
        if problems:
            raise InputError(problems)
    return tune


# --------------------------------------------------------------------------- one candidate
def gate_cell(data: dict, base_path: str, seed: int, replications: int) -> list[dict]:
    """Run one candidate and check the scenario's gates on it: one row."""
    from sim.run.runner import run_in_scratch

    loaded, result = run_in_scratch(data, Path(base_path), seed, replications)
    sc = loaded.scenario
    thresholds = gate_thresholds(sc.gates)
    policy = next(name for name in sc.policies if name != sc.baseline_policy)
    runs = dict(enumerate(result.policies[policy].runs))
    base = dict(enumerate(result.policies[sc.baseline_policy].runs))
    checks = evaluate(thresholds, runs, base)
    row: dict[str, Any] = {"policy": policy, "passed": all(c.passed for c in checks),
                           **metric_columns(result.summary[policy], TUNE_METRICS)}
    for name in thresholds:  # a threshold checked on two measures (the quality drop): the worse decides
        mine = [c for c in checks if c.name == name]
        decided = [c.decided_on for c in mine if c.decided_on is not None]
        worse = min if CHECKS[name].direction == "min" else max
        row[f"{name}_decided_on"] = worse(decided) if len(decided) == len(mine) else None
        row[f"{name}_passed"] = all(c.passed for c in mine)
    return [row]


# --------------------------------------------------------------------------- the search
def run_tune(tune: TuneSetup, out: Path, workers: int = 1, dask: str | None = None, progress=None,
             trials: int | None = None) -> dict:
    """Evaluate the candidates (those not recorded yet): the grid, or ``trials`` chosen by
    Optuna; choose, validate the choice on a fresh seed, and write tune.parquet, tune.md and
    chosen.yaml. Returns what was found."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    check_dask(dask)
    with claimed_folder(out, f"tune {tune.policy}", tune.scenario_path):
        names = [f"policies.{tune.policy}.{p}" for p in tune.parameters]
        if trials is None:
            cells = tune.cells()
            ran, reused = run_cells(cells, tune.scenario_path, out, gate_cell, workers, dask, progress)
        else:
            cells, ran, reused = _optuna_search(tune, out, names, trials, workers, dask, progress)
        rows = cell_rows(cells, names, out)
        passing = [r for r in rows if r["passed"] and r["cost_per_1k_requests_usd_mean"] is not None]
        chosen = min(passing, key=lambda r: (r["cost_per_1k_requests_usd_mean"], r["cell"])) if passing else None
        validation = None
        if chosen is not None:
            fresh = tune.seed + VALIDATION_SEED_OFFSET
            picked = cells[chosen["cell"]]
            cell = tune.cell(picked.number, list(picked.overrides.values()), seed=fresh)
            run_cells([cell], tune.scenario_path, out, gate_cell, 1, None, None)
            validation = cell_rows([cell], names, out)[0]
        table = pa.table({c: [r.get(c) for r in rows] for c in rows[0]})
        with atomic_file(out / "tune.parquet", "tuning table") as tmp:
            pq.write_table(table, tmp)
        fragment = _fragment(tune, chosen)
        with atomic_file(out / "chosen.yaml", "chosen setting") as tmp:
            tmp.write_text(fragment, encoding="utf-8")
        edges = at_the_edge(tune, chosen)
        with atomic_file(out / "tune.md", "tuning report") as tmp:
            tmp.write_text(_markdown(tune, rows, names, chosen, validation, edges), encoding="utf-8")
    return {"ran": ran, "reused": reused, "candidates": len(rows), "passing": len(passing), "chosen": chosen,
            "validation": validation, "parameters": names, "edges": edges}


def at_the_edge(tune: TuneSetup, chosen: dict | None) -> list[str]:
    """The chosen numbers that sit at an end of the values searched (a grid's first or last, an
    Optuna range's bound), each in words: the cheapest passing setting may lie beyond."""
    if chosen is None:
        return []
    said = []
    for parameter, values in tune.parameters.items():
        value = chosen.get(f"policies.{tune.policy}.{parameter}")
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(set(numbers)) < 2 or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        end = "lowest" if value <= min(numbers) else "highest" if value >= max(numbers) else None
        if end:
            said.append(f"{parameter} = {value:g} is the {end} value searched: the cheapest passing setting may "
                        "lie beyond it; widen the range to see")
    return said


#: Optuna proposes candidates in batches of this many, whatever the number of workers, so the
#: search (and its outputs) do not depend on how many processes ran it.
OPTUNA_BATCH = 4
#: Added to a failing candidate's cost: the search minimises cost among passing candidates.
FAILING_PENALTY = 1e6


def _optuna_search(tune: TuneSetup, out: Path, names: list[str], trials: int, workers: int, dask: str | None,
                   progress) -> tuple[list[SweepCell], int, int]:
    """``trials`` candidates proposed by Optuna's TPE sampler (seeded with the scenario's seed),
    each run and recorded like a grid's; returns (the candidates in trial order, run, reused)."""
    try:
        import optuna
    except ImportError:
        raise InputError(Problem("--search optuna needs Optuna: pip install 'routesim[tune]'")) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=tune.seed))
    cells: list[SweepCell] = []
    ran = reused = 0
    while len(cells) < trials:
        batch = [study.ask() for _ in range(min(OPTUNA_BATCH, trials - len(cells)))]
        new = [tune.cell(len(cells) + k, [_suggest(t, path, space) for path, space in tune.spaces.items()])
               for k, t in enumerate(batch)]
        now, before = run_cells(new, tune.scenario_path, out, gate_cell, workers, dask, None)
        ran, reused = ran + now, reused + before
        for trial, row in zip(batch, cell_rows(new, names, out)):
            cost = row["cost_per_1k_requests_usd_mean"]
            study.tell(trial, (cost or 0.0) + (0.0 if row["passed"] and cost is not None else FAILING_PENALTY))
        cells += new
        if progress:
            progress(len(cells), trials, f"trial {len(cells)}")
    return cells, ran, reused


def _suggest(trial, path: str, space: tuple) -> Any:
    if space[0] == "float":
        return trial.suggest_float(path, space[1], space[2])
    if space[0] == "step":
        return trial.suggest_float(path, space[1], space[2], step=space[3])
    return space[1][trial.suggest_categorical(path, list(range(len(space[1]))))]


def _fragment(tune: TuneSetup, chosen: dict | None) -> str:
    if chosen is None:
        return "# No candidate passed every check of the scenario's gates: nothing to choose.\n"
    from sim.scenario.overrides import apply_overrides

    overrides = {f"policies.{tune.policy}.{p}": _value(chosen[f"policies.{tune.policy}.{p}"]) for p in tune.parameters}
    spec = apply_overrides(tune.base, overrides)["policies"][tune.policy]
    head = (f"# Chosen by routesim tune: the cheapest setting of '{tune.policy}' that passed every gate check\n"
            f"# (cost per 1k requests {chosen['cost_per_1k_requests_usd_mean']:.4g} USD); paste it into the scenario.\n")
    return head + yaml.safe_dump({"policies": {tune.policy: spec}}, sort_keys=False)


def _value(cell: Any) -> Any:
    """A parameter back from its table cell (JSON text for lists and mappings)."""
    if isinstance(cell, str) and cell[:1] in "[{":
        return json.loads(cell)
    return cell


def _shown(value: Any) -> str:
    """A parameter value for people: floats to six significant digits (chosen.yaml has them whole)."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _verdict(row: dict, tune: TuneSetup) -> str:
    parts = []
    for name, threshold in tune.thresholds.items():
        decided = row.get(f"{name}_decided_on")
        mark = "pass" if row.get(f"{name}_passed") else "FAIL"
        parts.append(f"{name} {threshold:g}: {'n/a' if decided is None else f'{decided:.4g}'} {mark}")
    return "; ".join(parts)


def _markdown(tune: TuneSetup, rows: list[dict], names: list[str], chosen: dict | None,
              validation: dict | None, edges: list[str]) -> str:
    out = [f"# Tuning `{tune.policy}` on {tune.scenario_path.name}", "",
           f"{len(rows)} candidate(s) against the baseline `{tune.baseline}`, seed {tune.seed}, "
           f"{tune.replications} replication(s) each (common random numbers). Gate checks, decided on the 95% "
           "interval as `routesim gate` decides them: "
           + ", ".join(f"{k} {v:g}" for k, v in tune.thresholds.items()) + ".", ""]
    if chosen is None:
        out += ["**No candidate passed every check.** Widen the ranges, or relax the gates.", ""]
    else:
        setting = ", ".join(f"`{n.split('.', 2)[2]}` = {_shown(chosen[n])}" for n in names)
        out += [f"**Chosen: {setting}** — the cheapest passing candidate, "
                f"{chosen['cost_per_1k_requests_usd_mean']:.4g} USD per 1k requests.", "",
                f"- in tuning (seed {tune.seed}): {_verdict(chosen, tune)}",
                f"- on a fresh seed ({tune.seed + VALIDATION_SEED_OFFSET}): {_verdict(validation, tune)}"
                + ("" if validation["passed"] else " — **the choice does not hold on fresh traffic: it was "
                   "picked on noise; add replications or keep a margin**"), ""]
        out += [f"- {edge}" for edge in edges] + ([""] if edges else [])
    checks = list(tune.thresholds)
    out += ["Every candidate, cheapest first; each check's column is the bound it was decided on.", "",
            "| " + " | ".join(n.split(".", 2)[2] for n in names) + " | cost / 1k | savings | quality change | "
            + " | ".join(f"{c} {tune.thresholds[c]:g}" for c in checks) + " | passed |",
            "|---" * (len(names) + len(checks) + 4) + "|"]
    for r in sorted(rows, key=lambda r: (r["cost_per_1k_requests_usd_mean"] or math.inf)):
        savings, delta = r["savings_vs_baseline_mean"], r["quality_delta_vs_baseline_mean"]
        decided = [r.get(f"{c}_decided_on") for c in checks]
        out.append("| " + " | ".join(_shown(r[n]) for n in names)
                   + f" | {r['cost_per_1k_requests_usd_mean']:.4g} | "
                   + ("n/a" if savings is None else f"{100 * savings:.1f}%") + " | "
                   + ("n/a" if delta is None else f"{delta:+.4f}") + " | "
                   + " | ".join("n/a" if d is None else f"{d:.4g}" + ("" if r[f"{c}_passed"] else " ✗")
                                for c, d in zip(checks, decided))
                   + f" | {'yes' if r['passed'] else 'no'} |")
    return "\n".join(out) + "\n"
