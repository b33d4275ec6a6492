"""The rollout gate: a candidate policy against a baseline, on a finished run.

Every check is decided on the 95% confidence interval over replications, not
only on the mean: a minimum passes only if the interval's lower bound reaches
it, a maximum only if the upper bound stays within it. With one replication
there is no interval and the mean decides (the output says so). Checks against the
baseline (savings, quality drop, latency ratios) pair the two policies'
per-replication metrics from ``replications.parquet`` with the registry's rules
(metric_registry.py), as the summary does, so any two policies of the run can be
compared.

The quality drop is checked twice, and both must hold: over all requests
(failures count 0) and on the answers given. Over all requests alone, a
baseline that fails a quarter of its requests makes any candidate that answers
look better, however much worse its answers are; on the answers alone, a
candidate that fails more would hide it. The table shows both rows, so the one
that decided is the one that failed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from sim.errors import InputError, Problem

from sim.errors import describe_error
from sim.metrics.registry import BY_NAME
from sim.run.folder import read_run_files, read_table
from sim.scenario.schema.routing import Gates
from sim.metrics.stats import PER_RUN, mean_ci


@dataclass(frozen=True)
class Threshold:
    """A gate check: a metric of metric_registry.py, taken as it is, against the
    baseline (its paired rule), or as a ratio to the baseline's value."""

    metric: str
    measured: str  # what the output calls it
    direction: str  # "min" or "max"
    against_baseline: str = ""  # "", "paired", "negated paired" (a drop) or "ratio"
    also: tuple["Threshold", ...] = ()  # further measures the same threshold must hold on

    @property
    def unit(self) -> str:
        return "ratio" if self.against_baseline in ("ratio", "negated paired") else BY_NAME[self.metric].unit


CHECKS = {
    "min_savings": Threshold("savings_vs_baseline", "savings vs baseline", "min", "paired"),
    "max_quality_drop": Threshold(
        "quality_delta_vs_baseline", "quality drop vs baseline, all requests, failures as 0", "max", "negated paired",
        also=(Threshold("answered_quality_delta_vs_baseline", "quality drop vs baseline, answered requests only",
                        "max", "negated paired"),)),
    "min_success_rate": Threshold("success_rate", "success rate", "min"),
    "min_fault_success_rate": Threshold("fault_success_rate", "success rate during faults", "min"),
    "max_p95_latency_ratio": Threshold("latency_p95_s", "p95 latency / baseline's", "max", "ratio"),
    "max_p99_latency_ratio": Threshold("latency_p99_s", "p99 latency / baseline's", "max", "ratio"),
    "max_decision_p99_us": Threshold("decision_us_p99", "decision time p99 (us)", "max"),
}


@dataclass
class Check:
    name: str
    measured: str
    threshold: float
    mean: float | None
    lo: float | None
    hi: float | None
    decided_on: float | None
    basis: str  # which bound decided
    passed: bool


def policy_runs(folder: Path, policy: str) -> dict[int, dict[str, float]]:
    """Every metric of each of ``policy``'s replications (``replications.parquet``)."""
    table = read_table(folder, "replications", ["replication", *PER_RUN], filters=[("policy", "=", policy)])
    return {int(row.pop("replication")): row for row in table.to_dict("records")}


def measure(runs: dict[int, dict], base: dict[int, dict], check: Threshold) -> dict:
    """``{"mean", "ci95"}`` of what ``check`` is about, over the replications both the
    candidate (``runs``) and the baseline (``base``) ran: computed as the summary computes it
    (metric_registry.py)."""
    metric = BY_NAME[check.metric]
    both = [r for r in sorted(runs) if r in base]
    if not check.against_baseline:
        return mean_ci([runs[r][metric.name] for r in both], bounds=metric.bounds)
    if check.against_baseline == "ratio":
        values = [runs[r][metric.name] / base[r][metric.name] if base[r][metric.name] > 0 else math.nan
                  for r in both]
        return mean_ci(values)
    values = [metric.paired(runs[r], base[r]) for r in both]
    return mean_ci([-v for v in values] if check.against_baseline == "negated paired" else values)


def run_gate(folder: Path, candidate: str | None, baseline: str | None, overrides: dict[str, float]) -> tuple[list[Check], str, str]:
    """The checks, and the candidate and baseline they compared; thresholds from ``overrides`` else the scenario's ``gates``."""
    folder = Path(folder)
    summary, resolved = read_run_files(folder)
    try:
        gates = Gates.model_validate(resolved.get("gates") or {})
    except ValidationError as exc:
        where = str(folder / "scenario.resolved.yaml")
        raise InputError([Problem(f"damaged run file: gates: {describe_error(e)}", file=where)
                          for e in exc.errors()]) from None
    candidate = candidate or gates.candidate
    baseline = baseline or gates.baseline or summary["baseline"]
    policies = list(summary["policies"])
    for role, name in (("candidate", candidate), ("baseline", baseline)):
        if name is None:
            raise InputError(Problem(f"no {role}: give --{role} NAME (or gates.{role} in the scenario)"))
        if name not in policies:
            raise InputError(Problem(f"unknown {role} policy '{name}' (policies in this run: {', '.join(policies)})"))
    if candidate in summary.get("upper_bounds", []):
        raise InputError(Problem(f"'{candidate}' is an upper bound that sees the ground truth; it cannot be rolled out"))
    thresholds = gate_thresholds(gates)
    thresholds.update({k: v for k, v in overrides.items() if v is not None})
    problems = threshold_problems(overrides, lambda name: "--" + name.replace("_", "-"))
    problems += threshold_problems(gates.model_dump(), lambda name: f"gates.{name}",
                                   str(folder / "scenario.resolved.yaml"))
    if problems:
        raise InputError(problems)
    if not thresholds:
        raise InputError(Problem("nothing to check: give thresholds such as --min-savings 0.2 "
                                 "(or a gates: section in the scenario)"))
    return evaluate(thresholds, policy_runs(folder, candidate), policy_runs(folder, baseline)), candidate, baseline


def gate_thresholds(gates: Gates) -> dict[str, float]:
    """The checks a scenario's ``gates:`` section sets (threshold name -> value)."""
    return {k: v for k, v in gates.model_dump().items() if k in CHECKS and v is not None}


def evaluate(thresholds: dict[str, float], runs: dict[int, dict], base: dict[int, dict]) -> list[Check]:
    """Each threshold checked on the interval of what it measures, over the replications of the
    candidate (``runs``) and the baseline (``base``), as ``routesim gate`` decides."""
    checks = []
    for name, threshold in thresholds.items():
        for check in (CHECKS[name], *CHECKS[name].also):
            checks.append(_checked(name, check, threshold, measure(runs, base, check)))
    return checks


def _checked(name: str, check: Threshold, threshold: float, m: dict) -> Check:
    lo, hi = m["ci95"]
    if m["mean"] is None:
        decided, basis = None, "not measured in this run"
    elif lo is None:
        decided, basis = m["mean"], "mean (one replication: no interval)"
    else:
        decided, basis = (lo, "lower 95% bound") if check.direction == "min" else (hi, "upper 95% bound")
    passed = decided is not None and (decided >= threshold if check.direction == "min" else decided <= threshold)
    return Check(name, check.measured, threshold, m["mean"], lo, hi, decided, basis, passed)


#: Thresholds that are fractions: a value beyond 1 is a percent given by mistake.
FRACTIONS = ("min_savings", "max_quality_drop", "min_success_rate", "min_fault_success_rate")


def threshold_problems(thresholds: dict, label, file: str = "") -> list[Problem]:
    """Thresholds that cannot mean what the user wants: NaN or infinite, or a percent where a fraction goes."""
    problems = []
    for name, value in thresholds.items():
        if value is None or name not in CHECKS:
            continue
        if not math.isfinite(value):
            problems.append(Problem(f"{label(name)} {value}: must be a finite number", file=file))
        elif name in FRACTIONS and abs(value) > 1:
            problems.append(Problem(f"{label(name)} {value:g}: thresholds are fractions, e.g. 0.2 for 20%", file=file))
        elif value < 0 and name != "min_savings":  # only savings may be negative: a cost rise you accept
            problems.append(Problem(f"{label(name)} {value:g}: must be >= 0", file=file))
    return problems


def format_check_value(name: str, x: float | None) -> str:
    """A check's measured value or threshold, in its unit."""
    if x is None:
        return "n/a"
    unit = CHECKS[name].unit
    return f"{x * 100:.2f}%" if unit == "pct" else f"{x:,.1f}" if unit == "us" else f"{x:.4f}"


def check_cells(c: Check) -> list[str]:
    """(check, rule, measured mean [95% CI], decided on, result) as the gate prints them."""
    fmt = format_check_value
    rule = f"{'≥' if CHECKS[c.name].direction == 'min' else '≤'} {fmt(c.name, c.threshold)}"
    ci = f" [{fmt(c.name, c.lo)}, {fmt(c.name, c.hi)}]" if c.lo is not None else ""
    return [f"{c.name} ({c.measured})", rule, fmt(c.name, c.mean) + ci, f"{fmt(c.name, c.decided_on)} ({c.basis})",
            "PASS" if c.passed else "FAIL"]


def failed_names(checks: list[Check]) -> list[str]:
    """The thresholds that failed, each once (the quality drop is checked on two measures)."""
    return list(dict.fromkeys(c.name for c in checks if not c.passed))


def gate_table(checks: list[Check], candidate: str, baseline: str) -> str:
    rows = [["check", "rule", "measured mean [95% CI]", "decided on", "result"]]
    rows += [check_cells(c) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = failed_names(checks)
    lines.append("")
    lines.append(f"candidate {candidate} vs baseline {baseline}: "
                 + ("PASS" if not failed else f"FAIL ({', '.join(failed)})"))
    lines.append("A minimum passes only if the lower bound of the 95% confidence interval over replications reaches "
                 "it; a maximum only if the upper bound stays within it.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the gate's record in the run folder
#: Written into the run folder by ``routesim gate``: the report opens with it.
GATE_FILE = "gate.json"


class GateRecord(BaseModel):
    """gate.json: what the last ``routesim gate`` on this run checked, and its result."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    command: str
    candidate: str
    baseline: str
    checks: list[Check]  # pydantic checks the dataclass's fields
    passed: bool


def gate_record(checks: list[Check], candidate: str, baseline: str, command: str) -> GateRecord:
    return GateRecord(command=command, candidate=candidate, baseline=baseline, checks=checks,
                      passed=all(c.passed for c in checks))


def write_gate_file(folder: Path, record: GateRecord) -> None:
    """Write gate.json into the run folder (the caller holds the folder's lock:
    report.record_gate, which also rewrites the report)."""
    from sim.files import atomic_file

    with atomic_file(Path(folder) / GATE_FILE, "gate") as tmp:
        tmp.write_text(json.dumps(record.model_dump(), indent=2) + "\n", encoding="utf-8")


def read_gate(folder: Path) -> GateRecord | None:
    """The run's gate.json, or None when no gate ran on it; a damaged one is an input error."""
    path = Path(folder) / GATE_FILE
    if not path.is_file():
        return None
    try:
        return GateRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Problem(f"cannot read: {exc}", file=str(path))) from None
    except ValidationError as exc:
        raise InputError([Problem(f"damaged run file: {describe_error(e)}", file=str(path))
                          for e in exc.errors()]) from None
