"""What a LiteLLM proxy's logs say about each deployment, tallied chunk by chunk
(``spend_logs.read_spend_logs``) in bounded memory:

- prices: the spend of answered, uncached calls fitted as
  ``input_tokens × input price + output_tokens × output price`` by least squares
  (sums only, so any number of rows), with the root-mean-square residual over the
  mean spend as the fit's quality: LiteLLM computes spend from a price table, so a
  fit that does not match to rounding means prices changed or something else is
  billed;
- error rate: failed calls / calls (cache hits left out: they never reach the
  deployment);
- latency: time to first token (first token − start) and end-to-end (end − start)
  of answered calls that streamed (those with a first-token time), fitted with
  ``latency_fit.fit_latency`` (an empirical quantile table by default). At most
  ``LATENCY_SAMPLE`` calls are kept per deployment: beyond that every other one
  is dropped, then every other of those, and so on, which keeps an evenly spread
  sample over the whole period in a fixed amount of memory;
- fault windows: calls and failures are counted per wall-clock minute. A minute
  with at least ``MIN_BIN_CALLS`` calls is faulty when its failure share reaches
  ``FAULT_FACTOR`` times the deployment's usual share (the median minute's) and
  at least ``FAULT_MIN_SHARE``; consecutive faulty minutes make one window. A
  window whose calls failed ``OUTAGE_SHARE`` of the time or more is an outage,
  otherwise a partial outage failing at the window's share over the usual one
  (status 429 when most of its failures were 429s: a rate-limit storm). Windows
  are as coarse as the minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .latency_fit import MIN_REQUESTS, Measurements, fit_latency

LATENCY_SAMPLE = 100_000  # calls kept per deployment for the latency fit
MIN_BIN_CALLS = 5  # a minute with fewer calls says nothing about faults
FAULT_FACTOR = 5.0
FAULT_MIN_SHARE = 0.2
OUTAGE_SHARE = 0.95


@dataclass
class DeploymentTally:
    name: str
    model_group: str
    provider: str
    calls: int = 0
    failures: int = 0
    cache_hits: int = 0
    # Sums of the least-squares normal equations of spend on (input, output) tokens.
    xx: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    xy: np.ndarray = field(default_factory=lambda: np.zeros(2))
    yy: float = 0.0
    y: float = 0.0
    priced: int = 0
    latency: list = field(default_factory=list)  # (ttft_s, e2e_s, input, output) chunks
    kept: int = 0
    stride: int = 1  # keep every stride-th streamed answer
    seen_streamed: int = 0
    minutes: dict = field(default_factory=dict)  # minute since the epoch -> [calls, failures, 429s]

    def add(self, rows: pd.DataFrame) -> None:
        """One chunk's calls of this deployment."""
        self.calls += int((~rows.cache_hit).sum())
        self.cache_hits += int(rows.cache_hit.sum())
        self.failures += int((~rows.ok & ~rows.cache_hit).sum())
        reached = rows[~rows.cache_hit]
        minute = (reached.start - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(minutes=1)  # whatever the resolution
        counts = pd.DataFrame({"minute": minute.to_numpy(), "failed": (~reached.ok).to_numpy(),
                               "limited": (reached.error == "429").to_numpy()}).groupby("minute").agg(
            calls=("failed", "size"), failed=("failed", "sum"), limited=("limited", "sum"))
        for m, (calls, failed, limited) in zip(counts.index, counts.to_numpy()):
            bin_ = self.minutes.setdefault(int(m), [0, 0, 0])
            bin_[0] += int(calls)
            bin_[1] += int(failed)
            bin_[2] += int(limited)
        paid = rows[rows.ok & ~rows.cache_hit]
        x = paid[["input_tokens", "output_tokens"]].to_numpy(dtype=float)
        y = paid.spend_usd.to_numpy(dtype=float)
        self.xx += x.T @ x
        self.xy += x.T @ y
        self.yy += float(y @ y)
        self.y += float(y.sum())
        self.priced += len(paid)
        streamed = paid[paid.first_token.notna()]
        if len(streamed):
            ttft = (streamed.first_token - streamed.start).dt.total_seconds().to_numpy()
            e2e = (streamed.end - streamed.start).dt.total_seconds().to_numpy()
            block = np.column_stack([ttft, e2e, streamed.input_tokens.to_numpy(float),
                                     streamed.output_tokens.to_numpy(float)])
            # Rows whose position in the deployment's stream of answers is a multiple of the stride.
            positions = self.seen_streamed + np.arange(len(block))
            self.seen_streamed += len(block)
            self.latency.append(block[positions % self.stride == 0])
            self.kept += len(self.latency[-1])
            while self.kept > LATENCY_SAMPLE:  # halve: keep every other of what is kept
                whole = np.concatenate(self.latency)
                self.latency, self.stride = [whole[::2]], self.stride * 2
                self.kept = len(self.latency[0])

    # ------------------------------------------------------------------ what it says
    def prices(self) -> tuple[float, float, float] | None:
        """(input, output USD per million tokens, RMS residual / mean spend), or None without
        enough answered calls of varied sizes to tell the two prices apart."""
        if self.priced < 2 or abs(np.linalg.det(self.xx)) < 1e-9 * max(np.abs(self.xx).max(), 1.0) ** 2:
            return None
        beta = np.linalg.solve(self.xx, self.xy)
        # Σ(y − Xβ)² from the sums: Σy² − 2βᵀXᵀy + βᵀXᵀXβ.
        squared = max(self.yy - 2.0 * beta @ self.xy + beta @ self.xx @ beta, 0.0)
        mean = self.y / self.priced
        residual = float(np.sqrt(squared / self.priced) / mean) if mean > 0 else 0.0
        return float(beta[0] * 1e6), float(beta[1] * 1e6), residual

    def error_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0

    def measurements(self) -> Measurements | None:
        if self.kept < MIN_REQUESTS:
            return None
        whole = np.concatenate(self.latency)
        usable = (whole[:, 1] > whole[:, 0]) & (whole[:, 3] > 0)  # a decode phase to measure
        whole = whole[usable]
        if len(whole) < MIN_REQUESTS:
            return None
        return Measurements(whole[:, 0], whole[:, 1], whole[:, 2], whole[:, 3], int((~usable).sum()))

    def fault_windows(self, origin: pd.Timestamp) -> list[dict]:
        """The deployment's fault windows as scenario events, in seconds since ``origin``."""
        bins = sorted((m, c) for m, c in self.minutes.items() if c[0] >= MIN_BIN_CALLS)
        if not bins:
            return []
        usual = float(np.median([c[1] / c[0] for _, c in bins]))
        threshold = max(FAULT_FACTOR * usual, FAULT_MIN_SHARE)
        runs: list[list[tuple[int, list[int]]]] = []
        for m, c in bins:
            if c[1] / c[0] >= threshold:
                if runs and runs[-1][-1][0] == m - 1:
                    runs[-1].append((m, c))
                else:
                    runs.append([(m, c)])
        origin_s = origin.value / 1e9
        events = []
        for run in runs:
            calls, failed, limited = (sum(c[k] for _, c in run) for k in range(3))
            share = failed / calls
            window = {"model": self.name, "start_s": max(0.0, run[0][0] * 60 - origin_s),
                      "end_s": (run[-1][0] + 1) * 60 - origin_s}
            if share >= OUTAGE_SHARE:
                events.append({"kind": "outage", **window})
            else:
                events.append({"kind": "partial_outage", **window,
                               "error_rate": round((share - usual) / (1 - usual), 4),
                               "status": 429 if limited > failed / 2 else 500})
        return events

    def latency_block(self, kind: str = "quantiles") -> dict | None:
        measured = self.measurements()
        return None if measured is None else fit_latency(measured, kind)


def tally(chunks) -> dict[str, DeploymentTally]:
    """Every deployment's tally over the log's chunks."""
    tallies: dict[str, DeploymentTally] = {}
    for chunk in chunks:
        for name, rows in chunk.groupby("deployment", sort=False):
            t = tallies.get(name)
            if t is None:
                first = rows.iloc[0]
                t = tallies[name] = DeploymentTally(name, first.model_group, first.provider)
            t.add(rows)
    return tallies
