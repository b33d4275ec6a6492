"""Everything a report needs, read back from a finished run folder.

Reports are built from the files a run leaves (``summary.json``, the Parquet
tables, ``faults.csv``, ``scenario.resolved.yaml``), never from the simulator's
memory, so ``routesim report RUN_DIR`` rebuilds exactly what ``routesim run``
wrote. Per-request tables are read one policy at a time and reduced to series
over arrival time, so memory stays bounded by one policy's requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError, Problem
from sim.run.folder import read_run_files, scan_table
from sim.metrics.stats import mean_ci

TIME_BINS = 120  # bins of the series over arrival time
QUANTILE_POINTS = 201  # of the latency CDFs
DECISION_SAMPLE = 8  # requests shown per policy in the decision sample
_COLUMNS = ["replication", "arrival_s", "workload", "status", "model", "latency_s", "cost_usd", "quality"]


@dataclass
class PolicySeries:
    """One policy's series over arrival time, combined over replications."""

    latency_quantiles: np.ndarray  # mean over replications of the quantiles of successful latencies
    success_ok: np.ndarray  # per time bin, summed over replications
    success_total: np.ndarray
    served_by_model: dict[str, np.ndarray]  # per time bin, requests answered by each model, summed
    cumulative_cost: np.ndarray  # USD spent by the end of each bin, mean over replications
    workloads: pd.DataFrame  # per workload: requests, success_rate, mean_quality, cost_per_1k_usd (means),
    # quality_lo and quality_hi (the quality's 95% interval over replications; None with one)


@dataclass
class RunData:
    folder: Path
    scenario: str
    description: str | None
    seed: int
    replications: int
    baseline: str
    policies: list[str]
    kinds: dict[str, str]
    summary: dict[str, dict]  # policy -> metric -> {"mean", "ci95"}
    upper_bounds: list[str]
    knowledge: dict[str, dict[str, str]]  # per policy: quality, difficulty, feedback, exact_truth (words)
    comparisons: list[dict]
    decision_budget_ms: float
    horizon_s: float
    fault_windows: list[tuple[float, float, str, str]]
    price_changes: list[float]
    requests_per_replication: list[int]
    version: str
    resolved: dict
    series: dict[str, PolicySeries] = field(default_factory=dict)
    faults: pd.DataFrame | None = None
    decisions: pd.DataFrame | None = None  # a sample, with what happened to each request


def load_run(folder: Path) -> RunData:
    folder = Path(folder)
    doc, resolved = read_run_files(folder)
    summary_path = folder / "summary.json"
    run = doc.get("run")
    if run is None:
        raise InputError(Problem("summary.json has no 'run' block: made by an older routesim; run it again",
                                 file=str(summary_path)))
    data = RunData(
        folder=folder, scenario=doc["scenario"], description=resolved.get("description"), seed=doc["seed"],
        replications=doc["replications"], baseline=doc["baseline"], policies=list(doc["policies"]),
        kinds={name: spec["kind"] for name, spec in resolved["policies"].items()}, summary=doc["policies"],
        upper_bounds=doc.get("upper_bounds", []), knowledge=doc.get("knowledge", {}), comparisons=doc.get("comparisons", []),
        decision_budget_ms=run["decision_budget_ms"], horizon_s=run["horizon_s"],
        fault_windows=[tuple(w) for w in run["fault_windows"]], price_changes=run["price_changes_s"],
        requests_per_replication=run["requests_per_replication"], version=doc["routesim_version"], resolved=resolved)
    edges = np.linspace(0.0, max(data.horizon_s, 1e-9), TIME_BINS + 1)
    for name in data.policies:
        data.series[name] = _series(folder, name, edges)
    data.faults = _read_faults(folder / "faults.csv")
    data.decisions = _decision_sample(folder, data.policies)
    return data


def _gather(frames, columns: list[str]) -> pd.DataFrame:
    """The frames a scan yields as one (with ``columns`` when it yields none)."""
    frames = list(frames)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _read_faults(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:  # pandas' parser and empty-data errors are ValueErrors
        raise InputError(Problem(f"damaged run file: {str(exc).splitlines()[0]}", file=str(path))) from None


class _ReplicationTally:
    """One replication's requests of one policy, reduced batch by batch."""

    def __init__(self, bins: int):
        self.ok_latency: list[np.ndarray] = []  # the only per-request values kept (for the quantiles)
        self.ok_total, self.all_total, self.cost = np.zeros(bins), np.zeros(bins), np.zeros(bins)
        self.served: dict[str, np.ndarray] = {}
        self.workloads: list[pd.DataFrame] = []  # per batch: requests, ok, quality and cost sums per workload

    def add(self, run: pd.DataFrame, edges: np.ndarray) -> None:
        ok = (run.status == "ok").to_numpy()
        arrival = run.arrival_s.to_numpy()
        self.ok_latency.append(run.latency_s.to_numpy()[ok])
        self.all_total += np.histogram(arrival, bins=edges)[0]
        self.ok_total += np.histogram(arrival[ok], bins=edges)[0]
        for model, rows in run[ok].groupby("model", sort=True):
            self.served[model] = self.served.get(model, 0) + np.histogram(rows.arrival_s.to_numpy(), bins=edges)[0]
        self.cost += np.histogram(arrival, bins=edges, weights=run.cost_usd.to_numpy())[0]
        self.workloads.append(run.assign(ok=ok).groupby("workload").agg(
            requests=("ok", "size"), ok=("ok", "sum"), quality=("quality", "sum"), cost_usd=("cost_usd", "sum")))

    def workload_table(self) -> pd.DataFrame:
        sums = pd.concat(self.workloads).groupby(level=0).sum()
        return pd.DataFrame({"requests": sums.requests, "success_rate": sums.ok / sums.requests,
                             "mean_quality": sums.quality / sums.requests, "cost_usd": sums.cost_usd})


def _series(folder: Path, policy: str, edges: np.ndarray) -> PolicySeries:
    """One policy's series, its requests read a row group at a time."""
    tallies: dict[int, _ReplicationTally] = {}
    for batch in scan_table(folder, "requests", _COLUMNS, filters=[("policy", "=", policy)]):
        for replication, run in batch.groupby("replication", sort=True):
            tallies.setdefault(int(replication), _ReplicationTally(len(edges) - 1)).add(run, edges)
    if not tallies:
        raise InputError(Problem(f"damaged run file: no requests of policy {policy!r}",
                                 file=str(folder / "requests.parquet")))
    quantiles, cumulative, per_workload = [], [], []
    served: dict[str, np.ndarray] = {}
    ok_total, all_total = 0, 0
    for _, tally in sorted(tallies.items()):
        latency = np.concatenate(tally.ok_latency)
        quantiles.append(np.quantile(latency, np.linspace(0, 1, QUANTILE_POINTS)) if len(latency)
                         else np.full(QUANTILE_POINTS, np.nan))
        ok_total, all_total = ok_total + tally.ok_total, all_total + tally.all_total
        for model, counts in tally.served.items():
            served[model] = served.get(model, 0) + counts
        cumulative.append(np.cumsum(tally.cost))
        per_workload.append(tally.workload_table())
    workloads = pd.concat(per_workload).groupby(level=0).mean()
    workloads["cost_per_1k_usd"] = workloads.cost_usd / workloads.requests * 1000.0
    # The quality's 95% interval over replications, per workload (the figure's error bars).
    intervals = {w: mean_ci(q.to_numpy(), bounds=(0.0, 1.0))["ci95"]
                 for w, q in pd.concat(per_workload).mean_quality.groupby(level=0)}
    workloads["quality_lo"] = [intervals[w][0] for w in workloads.index]
    workloads["quality_hi"] = [intervals[w][1] for w in workloads.index]
    # Replications without a successful request have no quantiles; the others are averaged.
    answered = [q for q in quantiles if not np.isnan(q).all()]
    mean_quantiles = np.mean(answered, axis=0) if answered else quantiles[0]
    return PolicySeries(mean_quantiles, ok_total, all_total, served, np.mean(cumulative, axis=0),
                        workloads.drop(columns="cost_usd"))


def _decision_sample(folder: Path, policies: list[str]) -> pd.DataFrame:
    """Evenly spaced requests of the first replication, for every policy: what was decided, why,
    and what happened. Only the sampled rows are kept: the tables are scanned a row group at a
    time, never read whole."""
    first = [("replication", "=", 0)]
    ids = _gather(scan_table(folder, "requests", ["request_id"], filters=first + [("policy", "=", policies[0])]),
                  ["request_id"]).request_id
    n = len(ids)
    picks = np.unique(np.linspace(0, max(n - 1, 0), min(DECISION_SAMPLE, n)).round().astype(int))
    sample = first + [("request_id", "in", list(ids.to_numpy()[picks]))]
    columns = ["policy", "request_id", "candidates", "reason", "policy_error"]
    decisions = _gather(scan_table(folder, "decisions", columns, filters=sample), columns)
    columns = ["policy", "request_id", "workload", "status", "model", "attempts", "cost_usd", "latency_s"]
    requests = _gather(scan_table(folder, "requests", columns, filters=sample), columns)
    merged = decisions.merge(requests, on=["policy", "request_id"])
    merged["policy"] = pd.Categorical(merged.policy, categories=policies, ordered=True)
    return merged.sort_values(["policy", "request_id"]).reset_index(drop=True)
