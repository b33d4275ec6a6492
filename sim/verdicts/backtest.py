"""The backtest: production's policy simulated on the world calibrated from its
logs, set against what the logs measured (``backtest.logged`` in the scenario,
written by ``routesim import litellm-logs``).

Each figure is computed per replication from the run's tables, then reported
as the mean with its 95% interval beside the logged value, its error and
whether the error is within the target:

- spend, in total and per model group (the group of the deployment each
  attempt went to): relative error, target ``SPEND_TARGET``;
- success rate and failover rate (requests that tried more than one
  deployment): error in points, target ``SHARE_TARGET``;
- p50, p95 and p99 latency of each deployment's answered calls (attempt start
  to end; a response-cache answer, free, is no call): relative error, target
  ``LATENCY_TARGET``.

A figure off its target is a MISS, unless the simulation's own spread is wider
than the target and the logged value lies inside its 95% interval: then it is
"too noisy" to judge (a p99 over a few hundred calls moves by more than 10%
between replications), said as such, and does not count against the match.

The result is ``backtest.json`` in the run folder; the report shows it first
(``report.format.backtest_cells`` writes its cells).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sim.files import atomic_file
from sim.scenario.schema.backtest import BacktestSpec
from sim.metrics.stats import mean_ci

SPEND_TARGET = 0.01  # relative
SHARE_TARGET = 0.005  # points of a share (0.5 percentage points)
LATENCY_TARGET = 0.10  # relative
FILE = "backtest.json"


@dataclass
class BacktestRow:
    figure: str
    unit: str  # usd | share | seconds
    logged: float
    simulated: float  # mean over replications
    ci95: tuple[float, float]
    error: float  # relative (simulated / logged − 1) for usd and seconds, points (simulated − logged) for shares
    target: float
    within: bool  # |error| <= target
    verdict: str  # ok | noisy (off target, but within the simulation's spread, which is wider) | miss


def backtest_rows(folder: Path, spec: BacktestSpec) -> list[BacktestRow]:
    """The figures of the run in ``folder`` for the backtest's policy, against the logged ones."""
    from sim.run.folder import read_table

    policy = [("policy", "=", spec.policy)]
    requests = read_table(folder, "requests", ["replication", "status", "cost_usd"], policy)
    attempts = read_table(folder, "attempts", ["replication", "request_id", "model", "start_s", "end_s", "outcome",
                                               "cost_usd"], policy)
    attempts["group"] = attempts.model.map(spec.groups).fillna("(not in the log)")
    replications = sorted(requests.replication.unique())
    per_rep: dict[str, list[float]] = {}

    def add(figure: str, value: float) -> None:
        per_rep.setdefault(figure, []).append(float(value))

    for r in replications:
        mine, tried = requests[requests.replication == r], attempts[attempts.replication == r]
        add("spend", mine.cost_usd.sum())
        spent = tried.groupby("group").cost_usd.sum()
        for group in spec.logged.spend_by_group:
            add(f"spend {group}", spent.get(group, 0.0))
        add("success", (mine.status == "ok").mean())
        models_per_request = tried.groupby("request_id").model.nunique()
        add("failover", (models_per_request > 1).sum() / len(mine))
        answered = tried[(tried.outcome == "ok") & (tried.cost_usd > 0)]  # a response-cache answer is free: no call
        seconds = (answered.end_s - answered.start_s).groupby(answered.model)
        for deployment in spec.logged.latency:
            values = seconds.get_group(deployment).to_numpy() if deployment in seconds.groups else np.zeros(0)
            for q in (50, 95, 99):
                add(f"p{q} {deployment}", np.quantile(values, q / 100) if len(values) else np.nan)

    logged = spec.logged
    rows = [_row("total spend", "usd", logged.spend_usd, per_rep["spend"])]
    rows += [_row(f"spend, model group {g}", "usd", v, per_rep[f"spend {g}"]) for g, v in logged.spend_by_group.items()]
    rows.append(_row("success rate", "share", logged.success_rate, per_rep["success"]))
    rows.append(_row("failover rate", "share", logged.failover_rate, per_rep["failover"]))
    for deployment, figures in logged.latency.items():
        for q in (50, 95, 99):
            rows.append(_row(f"p{q} latency, {deployment}", "seconds", getattr(figures, f"p{q}_s"),
                             per_rep[f"p{q} {deployment}"]))
    return rows


def _row(figure: str, unit: str, logged: float, values: list[float]) -> BacktestRow:
    finite = [v for v in values if v == v]
    if not finite:
        return BacktestRow(figure, unit, logged, float("nan"), (float("nan"), float("nan")), float("nan"),
                           SHARE_TARGET if unit == "share" else SPEND_TARGET if unit == "usd" else LATENCY_TARGET, False,
                           "miss")
    summary = mean_ci(finite)
    mean, (lo, hi) = summary["mean"], summary["ci95"]
    if lo is None or hi is None:  # one replication: no interval, so never "too noisy to judge"
        lo = hi = float("nan")
    if unit == "share":
        error, target = mean - logged, SHARE_TARGET
    else:
        error = mean / logged - 1.0 if logged > 0 else (0.0 if mean == 0 else float("inf"))
        target = SPEND_TARGET if unit == "usd" else LATENCY_TARGET
    within = bool(abs(error) <= target)
    # The interval's half-width in the error's own terms: points for shares, relative otherwise.
    spread = (hi - lo) / 2 if unit == "share" else ((hi - lo) / 2 / logged if logged > 0 else float("inf"))
    noisy = not within and lo <= logged <= hi and spread > target  # False when there is no interval (NaN)
    return BacktestRow(figure, unit, float(logged), float(mean), (float(lo), float(hi)), float(error), target,
                       within, "ok" if within else "noisy" if noisy else "miss")


def write_backtest(folder: Path, spec: BacktestSpec, rows: list[BacktestRow]) -> None:
    record = {"policy": spec.policy, "since": spec.logged.since.isoformat(), "until": spec.logged.until.isoformat(),
              "logged_requests": spec.logged.requests, "logged_rows": spec.logged.rows,
              "matched": all(r.verdict != "miss" for r in rows), "rows": [asdict(r) for r in rows]}
    with atomic_file(Path(folder) / FILE, "backtest") as tmp:
        tmp.write_text(json.dumps(record, indent=2, allow_nan=True) + "\n", encoding="utf-8")


def read_backtest(folder: Path) -> dict | None:
    """The run's backtest record, or None when it has none (a plain run)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
