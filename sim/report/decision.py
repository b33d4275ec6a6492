"""The report's first section: the rollout decision.

Its checks are those of the last ``routesim gate`` on the run (``gate.json``,
with the command that ran them) or else the scenario's ``gates:``, computed as
the gate computes them (gate.py: decided on the 95% interval). A scenario with
thresholds but no candidate has them checked for every deployable policy but
the baseline. Without either, the section says how to get one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..gate import Check, check_cells, evaluate, gate_thresholds, policy_runs, read_gate
from ..schema.routing import Gates


@dataclass
class GateRow:
    check: str
    rule: str
    measured: str
    decided_on: str
    passed: bool


@dataclass
class GateResult:
    candidate: str
    baseline: str
    rows: list[GateRow]
    passed: bool


@dataclass
class Decision:
    command: str | None  # the `routesim gate` command the checks come from (None: the scenario's gates:)
    results: list[GateResult]
    max_quality_drop: float | None  # the quality gate the workload flags use


def _rows(checks: list[Check]) -> list[GateRow]:
    return [GateRow(*check_cells(c)[:4], c.passed) for c in checks]


def decision(run) -> Decision:
    recorded = read_gate(run.folder)
    if recorded is not None:
        checks = recorded.checks
        drop = next((c.threshold for c in checks if c.name == "max_quality_drop"), None)
        result = GateResult(recorded.candidate, recorded.baseline, _rows(checks), recorded.passed)
        return Decision(recorded.command, [result], drop)
    gates = Gates.model_validate(run.resolved.get("gates") or {})
    thresholds = gate_thresholds(gates)
    if not thresholds:
        return Decision(None, [], None)
    baseline = gates.baseline or run.baseline
    candidates = [gates.candidate] if gates.candidate else [
        p for p in run.policies if p != baseline and p not in run.upper_bounds]
    base_runs = policy_runs(run.folder, baseline)
    results = []
    for candidate in candidates:
        checks = evaluate(thresholds, policy_runs(run.folder, candidate), base_runs)
        results.append(GateResult(candidate, baseline, _rows(checks), all(c.passed for c in checks)))
    return Decision(None, results, thresholds.get("max_quality_drop"))
