"""The report's first section: the rollout decision.

Its checks are those of the last ``routesim gate`` on the run (``gate.json``,
with the command that ran them) or else the scenario's ``gates:``, computed as
the gate computes them (gate.py: decided on the 95% interval). A scenario with
thresholds but no candidate has them checked for every deployable policy but
the baseline. Without either, the section says how to get one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.verdicts.gate import Check, check_cells, evaluate, failed_names, gate_thresholds, policy_runs, read_gate
from sim.scenario.schema.routing import Gates


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
    failed: list[str]  # the thresholds that failed, each once


@dataclass
class Decision:
    command: str | None  # the `routesim gate` command the checks come from (None: the scenario's gates:)
    results: list[GateResult]
    max_quality_drop: float | None  # the quality gate the workload flags use


def _rows(checks: list[Check]) -> list[GateRow]:
    return [GateRow(*check_cells(c)[:4], c.passed) for c in checks]


def decision(run) -> Decision:
    return decision_for(run.folder, run.resolved, run.baseline, run.policies, run.upper_bounds)


def decision_for(folder, resolved: dict, run_baseline: str, policies: list[str],
                 upper_bounds: list[str]) -> Decision:
    """The decision of the run in ``folder`` (its resolved scenario, baseline, policies and upper
    bounds given): what ``decision`` reads from a loaded run, for callers that have not loaded one."""
    recorded = read_gate(folder)
    if recorded is not None:
        checks = recorded.checks
        drop = next((c.threshold for c in checks if c.name == "max_quality_drop"), None)
        result = GateResult(recorded.candidate, recorded.baseline, _rows(checks), recorded.passed,
                            failed_names(checks))
        return Decision(recorded.command, [result], drop)
    gates = Gates.model_validate(resolved.get("gates") or {})
    thresholds = gate_thresholds(gates)
    if not thresholds:
        return Decision(None, [], None)
    baseline = gates.baseline or run_baseline
    candidates = [gates.candidate] if gates.candidate else [
        p for p in policies if p != baseline and p not in upper_bounds]
    base_runs = policy_runs(folder, baseline)
    results = []
    for candidate in candidates:
        checks = evaluate(thresholds, policy_runs(folder, candidate), base_runs)
        results.append(GateResult(candidate, baseline, _rows(checks), all(c.passed for c in checks),
                                  failed_names(checks)))
    return Decision(None, results, thresholds.get("max_quality_drop"))
