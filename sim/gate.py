"""The rollout gate: a candidate policy against a baseline, on a finished run.

Every check is decided on the 95% confidence interval over replications, not
only on the mean: a minimum passes only if the interval's lower bound reaches
it, a maximum only if the upper bound stays within it. With one replication
there is no interval and the mean decides (the output says so). Paired checks
(savings, quality drop, latency ratios) are computed per replication from
``requests.parquet``, so any two policies of the run can be compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, Problem
from .run_folder import read_run_files, read_table
from .scenario import Gates
from .stats import mean_ci

#: threshold -> (what is measured, "min" or "max", unit for display)
CHECKS = {
    "min_savings": ("savings vs baseline", "min", "pct"),
    "max_quality_drop": ("quality drop vs baseline", "max", "ratio"),
    "min_success_rate": ("success rate", "min", "pct"),
    "min_fault_success_rate": ("success rate during faults", "min", "pct"),
    "max_p95_latency_ratio": ("p95 latency / baseline's", "max", "ratio"),
    "max_p99_latency_ratio": ("p99 latency / baseline's", "max", "ratio"),
    "max_decision_p99_us": ("decision time p99 (us)", "max", "us"),
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


def _per_replication(folder: Path, policy: str) -> dict[int, dict[str, float]]:
    table = read_table(folder, "requests", ["replication", "status", "latency_s", "cost_usd", "quality"],
                       filters=[("policy", "=", policy)])
    out = {}
    for r, run in table.groupby("replication"):
        ok = run.latency_s[run.status == "ok"].to_numpy()
        out[int(r)] = {"cost": float(run.cost_usd.sum()), "quality": float(run.quality.mean()),
                       "p95": float(np.percentile(ok, 95)) if len(ok) else np.nan,
                       "p99": float(np.percentile(ok, 99)) if len(ok) else np.nan}
    return out


def _paired(candidate: dict, baseline: dict, metric) -> list[float]:
    return [metric(candidate[r], baseline[r]) for r in sorted(candidate) if r in baseline]


def measure(folder: Path, summary: dict, candidate: str, baseline: str, name: str) -> dict:
    """``{"mean", "ci95"}`` of what threshold ``name`` is about."""
    s = summary["policies"][candidate]
    if name == "min_success_rate":
        return s["success_rate"]
    if name == "min_fault_success_rate":
        return s["fault_success_rate"]
    if name == "max_decision_p99_us":
        return s["decision_us_p99"]
    c, b = _per_replication(folder, candidate), _per_replication(folder, baseline)
    if name == "min_savings":
        values = _paired(c, b, lambda x, y: 1.0 - x["cost"] / y["cost"] if y["cost"] > 0 else np.nan)
    elif name == "max_quality_drop":
        values = _paired(c, b, lambda x, y: y["quality"] - x["quality"])
    else:
        q = "p95" if name == "max_p95_latency_ratio" else "p99"
        values = _paired(c, b, lambda x, y: x[q] / y[q] if y[q] > 0 else np.nan)
    return mean_ci(values)


def run_gate(folder: Path, candidate: str | None, baseline: str | None, overrides: dict[str, float]) -> tuple[list[Check], str, str]:
    """The checks, and the candidate and baseline they compared; thresholds from ``overrides`` else the scenario's ``gates``."""
    folder = Path(folder)
    summary, resolved = read_run_files(folder)
    gates = Gates.model_validate(resolved.get("gates") or {})
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
    thresholds = {k: v for k, v in gates.model_dump().items() if k in CHECKS and v is not None}
    thresholds.update({k: v for k, v in overrides.items() if v is not None})
    problems = threshold_problems(overrides, lambda name: "--" + name.replace("_", "-"))
    problems += threshold_problems(gates.model_dump(), lambda name: f"gates.{name}",
                                   str(folder / "scenario.resolved.yaml"))
    if problems:
        raise InputError(problems)
    if not thresholds:
        raise InputError(Problem("nothing to check: give thresholds such as --min-savings 0.2 "
                                 "(or a gates: section in the scenario)"))
    checks = []
    for name, threshold in thresholds.items():
        what, direction, _ = CHECKS[name]
        m = measure(folder, summary, candidate, baseline, name)
        lo, hi = m["ci95"]
        if m["mean"] is None:
            decided, basis = None, "not measured in this run"
        elif lo is None:
            decided, basis = m["mean"], "mean (one replication: no interval)"
        else:
            decided, basis = (lo, "lower 95% bound") if direction == "min" else (hi, "upper 95% bound")
        passed = decided is not None and (decided >= threshold if direction == "min" else decided <= threshold)
        checks.append(Check(name, what, threshold, m["mean"], lo, hi, decided, basis, passed))
    return checks, candidate, baseline


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


def gate_table(checks: list[Check], candidate: str, baseline: str) -> str:
    def fmt(name, x):
        if x is None:
            return "n/a"
        unit = CHECKS[name][2]
        return f"{x * 100:.2f}%" if unit == "pct" else f"{x:,.1f}" if unit == "us" else f"{x:.4f}"

    rows = [["check", "rule", "measured mean [95% CI]", "decided on", "result"]]
    for c in checks:
        rule = f"{'≥' if CHECKS[c.name][1] == 'min' else '≤'} {fmt(c.name, c.threshold)}"
        ci = f" [{fmt(c.name, c.lo)}, {fmt(c.name, c.hi)}]" if c.lo is not None else ""
        rows.append([f"{c.name} ({c.measured})", rule, fmt(c.name, c.mean) + ci,
                     f"{fmt(c.name, c.decided_on)} ({c.basis})", "PASS" if c.passed else "FAIL"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = [c.name for c in checks if not c.passed]
    lines.append("")
    lines.append(f"candidate {candidate} vs baseline {baseline}: "
                 + ("PASS" if not failed else f"FAIL ({', '.join(failed)})"))
    lines.append("A minimum passes only if the lower bound of the 95% confidence interval over replications reaches "
                 "it; a maximum only if the upper bound stays within it.")
    return "\n".join(lines)
