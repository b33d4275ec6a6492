"""What a LiteLLM proxy's logs say about each deployment, tallied chunk by chunk
(``ingest.spend_logs.read_spend_logs``) in bounded memory:

- prices: the spend of answered, uncached calls fitted as
  ``uncached input × input price + cached input × cached-input price +
  output_tokens × output price`` by least squares (the cached-input price only
  where the log has cached tokens, ``metadata.usage_object``)
  (sums only, so any number of rows), with the root-mean-square residual over the
  mean spend as the fit's quality: LiteLLM computes spend from a price table, so a
  fit that does not match to rounding means prices changed or something else is
  billed;
- price changes: the same sums are kept per minute, and the minutes are cut where
  one price pair stops explaining the spend: the cut (between two minutes, or
  around one minute with calls at both prices, which is then left out) that
  lowers the squared residual most, then again within each side, while a cut
  removes at least ``PRICE_CUT_GAIN`` of what is left and each side has at least
  ``MIN_PRICED_CALLS`` calls (so a change is found to the minute);
- error rate: failed calls / calls outside the fault windows below (cache hits
  left out: they never reach the deployment; timeouts too: they are slow calls,
  counted apart, whose latency the fit of answered calls does not see); how
  long a failure took to come back (its mean duration) is the deployment's
  ``fail_fast_s``;
- latency: time to first token (first token − start) and end-to-end (end − start)
  of answered calls that streamed (those with a first-token time), fitted with
  ``ingest.latency_fit.fit_latency`` (an empirical quantile table by default). At most
  ``LATENCY_SAMPLE`` calls are kept per deployment: beyond that every other one
  is dropped, then every other of those, and so on, which keeps an evenly spread
  sample over the whole period in a fixed amount of memory;
- fault windows: calls and failures are counted per wall-clock minute. A minute
  with at least ``MIN_BIN_CALLS`` calls is faulty when its failure share reaches
  ``FAULT_FACTOR`` times the deployment's usual share (that of its minutes
  failing under ``FAULT_MIN_SHARE``) and at least ``FAULT_MIN_SHARE``, and so many
  failures would happen by chance at the usual share less than ``FAULT_CHANCE``
  of the time (binomial); consecutive faulty minutes make one window. A
  window whose calls failed ``OUTAGE_SHARE`` of the time or more is an outage,
  otherwise a partial outage failing at the window's share over the usual one
  (status 429 when most of its failures were 429s: a rate-limit storm). Windows
  are as coarse as the minute.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .latency_fit import MIN_REQUESTS, Measurements, fit_latency

LATENCY_SAMPLE = 100_000  # calls kept per deployment for the latency fit
MIN_BIN_CALLS = 5  # a minute with fewer calls says nothing about faults
FAULT_FACTOR = 5.0
FAULT_MIN_SHARE = 0.2
OUTAGE_SHARE = 0.95
FAULT_CHANCE = 1e-4  # a faulty minute's failures are less likely than this at the usual share
#: The errors LiteLLM logs for a call that timed out (error_information's code, or its class).
TIMEOUT_ERRORS = ("408", "Timeout", "APITimeoutError")
PRICE_TOLERANCE = 1e-6  # RMS residual / mean spend under which one price pair explains a stretch (LiteLLM bills from a price table: only float rounding is left)
PRICE_CUT_GAIN = 0.9  # a cut must remove this share of the squared residual left
MIN_PRICED_CALLS = 20
MAX_PRICE_SEGMENTS = 8
#: Per-minute price sums of the regressors x = (u, c, o): uncached input, cached input and output
#: tokens, and y the spend: calls, the six products of XᵀX, the three of Xᵀy, Σy², Σy.
_SUMS = ("n", "uu", "uc", "uo", "cc", "co", "oo", "uy", "cy", "oy", "yy", "y")
_XX = ((1, 2, 3), (2, 4, 5), (3, 5, 6))  # positions in _SUMS of XᵀX's entries
_XY = (7, 8, 9)


def _fit(sums: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(input, cached input and output price per token, residual sum of squares) of one stretch's
    sums, or None when its calls do not tell the prices apart. Without cached tokens the cached
    price is NaN (not measured)."""
    used = [0, 1, 2] if sums[4] > 0 else [0, 2]
    xx = np.array([[sums[_XX[r][c]] for c in used] for r in used])
    if sums[0] < len(used) or abs(np.linalg.det(xx)) < 1e-9 * max(np.abs(xx).max(), 1.0) ** len(used):
        return None
    xy = np.array([sums[_XY[r]] for r in used])
    beta = np.linalg.solve(xx, xy)
    if (beta < 0).any():  # a provider never pays us: the best fit with no price below zero
        beta = _nonnegative_fit(xx, xy, sums[10])
    sse = _sse(beta, xx, xy, sums[10])
    prices = np.full(3, np.nan)
    prices[used] = beta
    return prices, sse


def _sse(beta: np.ndarray, xx: np.ndarray, xy: np.ndarray, yy: float) -> float:
    """Σ(y − Xβ)² from the sums: Σy² − 2βᵀXᵀy + βᵀXᵀXβ."""
    return max(yy - 2.0 * beta @ xy + beta @ xx @ beta, 0.0)


def _nonnegative_fit(xx: np.ndarray, xy: np.ndarray, yy: float) -> np.ndarray:
    """Least squares with every price >= 0, from the normal equations: with two or three prices
    the optimum is the unconstrained fit of some subset of them (the others at 0), so every
    subset is tried and the feasible one with the least residual kept."""
    size = len(xy)
    best, best_sse = np.zeros(size), _sse(np.zeros(size), xx, xy, yy)
    for count in range(1, size + 1):
        for kept in itertools.combinations(range(size), count):
            sub = list(kept)
            try:
                solved = np.linalg.solve(xx[np.ix_(sub, sub)], xy[sub])
            except np.linalg.LinAlgError:
                continue
            if (solved < 0).any():
                continue
            beta = np.zeros(size)
            beta[sub] = solved
            sse = _sse(beta, xx, xy, yy)
            if sse < best_sse:
                best, best_sse = beta, sse
    return best


def _relative_residual(sums: np.ndarray, sse: float) -> float:
    mean = sums[11] / sums[0]
    return float(np.sqrt(sse / sums[0]) / mean) if mean > 0 else 0.0


def _same_prices(stretch: "PriceStretch", beta: np.ndarray) -> bool:
    before = [stretch.input_per_mtok, np.nan if stretch.cached_input_per_mtok is None
              else stretch.cached_input_per_mtok, stretch.output_per_mtok]
    return bool(np.allclose(before, beta * 1e6, rtol=PRICE_TOLERANCE * 10, atol=1e-9, equal_nan=True))


@dataclass(frozen=True)
class PriceStretch:
    """A stretch of the log over which one price pair explains the spend."""

    from_s: float  # seconds since the epoch
    input_per_mtok: float
    output_per_mtok: float
    residual: float  # RMS residual / mean spend
    calls: int
    cached_input_per_mtok: float | None = None  # None: no cached tokens logged to measure it by


@dataclass
class DeploymentTally:
    name: str
    model_group: str
    provider: str
    calls: int = 0
    failures: int = 0
    cache_hits: int = 0
    # Sums of the least-squares normal equations of spend on (input, output) tokens, per minute.
    price_minutes: dict = field(default_factory=dict)  # minute since the epoch -> _SUMS
    failed_seconds: float = 0.0  # summed duration of failed calls
    latency: list = field(default_factory=list)  # (ttft_s, e2e_s, input, output) chunks
    kept: int = 0
    stride: int = 1  # keep every stride-th streamed answer
    seen_streamed: int = 0
    minutes: dict = field(default_factory=dict)  # minute since the epoch -> [calls, failures, 429s]
    timeouts: int = 0  # calls that timed out: slow, not failed (the latency fit's tail), counted apart

    def add(self, rows: pd.DataFrame) -> None:
        """One chunk's calls of this deployment."""
        self.calls += int((~rows.cache_hit).sum())
        self.cache_hits += int(rows.cache_hit.sum())
        timed_out = rows.error.isin(TIMEOUT_ERRORS) & ~rows.ok
        self.timeouts += int(timed_out.sum())
        self.failures += int((~rows.ok & ~rows.cache_hit & ~timed_out).sum())
        reached = rows[~rows.cache_hit & ~timed_out]
        minute = (reached.start - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(minutes=1)  # whatever the resolution
        counts = pd.DataFrame({"minute": minute.to_numpy(), "failed": (~reached.ok).to_numpy(),
                               "limited": (reached.error == "429").to_numpy()}).groupby("minute").agg(
            calls=("failed", "size"), failed=("failed", "sum"), limited=("limited", "sum"))
        for m, (calls, failed, limited) in zip(counts.index, counts.to_numpy()):
            bin_ = self.minutes.setdefault(int(m), [0, 0, 0])
            bin_[0] += int(calls)
            bin_[1] += int(failed)
            bin_[2] += int(limited)
        failed = reached[~reached.ok]
        self.failed_seconds += float((failed.end - failed.start).dt.total_seconds().sum())
        paid = rows[rows.ok & ~rows.cache_hit]
        c = paid.cached_tokens.to_numpy(dtype=float)
        u = paid.input_tokens.to_numpy(dtype=float) - c
        o = paid.output_tokens.to_numpy(dtype=float)
        y = paid.spend_usd.to_numpy(dtype=float)
        sums = pd.DataFrame({"minute": ((paid.start - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(minutes=1)).to_numpy(),
                             "n": 1.0, "uu": u * u, "uc": u * c, "uo": u * o, "cc": c * c, "co": c * o, "oo": o * o,
                             "uy": u * y, "cy": c * y, "oy": o * y, "yy": y * y, "y": y}).groupby("minute").sum()
        for m, row in zip(sums.index, sums.to_numpy()):
            before = self.price_minutes.get(int(m))
            self.price_minutes[int(m)] = row if before is None else before + row
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
        """(input, output USD per million tokens, RMS residual / mean spend) over the whole log,
        or None without enough answered calls of varied sizes to tell the two prices apart."""
        if not self.price_minutes:
            return None
        sums = np.sum(list(self.price_minutes.values()), axis=0)
        fitted = _fit(sums)
        if fitted is None:
            return None
        beta, sse = fitted
        return float(beta[0] * 1e6), float(beta[2] * 1e6), _relative_residual(sums, sse)

    def price_stretches(self) -> list[PriceStretch]:
        """The log cut where its prices changed (module docstring), in time order; empty when
        the prices cannot be told."""
        minutes = sorted(self.price_minutes)
        if not minutes:
            return []
        table = np.array([self.price_minutes[m] for m in minutes])
        before = np.vstack([np.zeros(len(_SUMS)), np.cumsum(table, axis=0)])  # sums of minutes [0, k)

        def sums(lo: int, hi: int) -> np.ndarray:
            return before[hi] - before[lo]

        def cut(lo: int, hi: int) -> list[tuple[int, int]]:
            whole = _fit(sums(lo, hi))
            if whole is None or _relative_residual(sums(lo, hi), whole[1]) <= PRICE_TOLERANCE:
                return [(lo, hi)]
            # A cut between minutes, or around one minute that holds calls at both prices.
            best, best_sse = None, whole[1]
            for k in range(lo + 1, hi):
                for skip in (0, 1):
                    left, right = sums(lo, k), sums(k + skip, hi)
                    if left[0] < MIN_PRICED_CALLS or right[0] < MIN_PRICED_CALLS:
                        continue
                    fits = _fit(left), _fit(right)
                    if fits[0] is None or fits[1] is None:
                        continue
                    if fits[0][1] + fits[1][1] < best_sse:
                        best, best_sse = (k, skip), fits[0][1] + fits[1][1]
            if best is None or best_sse > (1 - PRICE_CUT_GAIN) * whole[1]:
                return [(lo, hi)]
            k, skip = best
            return cut(lo, k) + ([(k, k + 1)] if skip else []) + cut(k + skip, hi)

        stretches = cut(0, len(minutes))
        if len(stretches) > MAX_PRICE_SEGMENTS:  # spend that no price table explains: one fit, its residual says so
            stretches = [(0, len(minutes))]
        found: list[PriceStretch] = []
        changed_within = None  # the minute the prices changed in, when it was left out
        for lo, hi in stretches:
            fitted = _fit(sums(lo, hi))
            if fitted is None:
                return []
            beta, sse = fitted
            residual = _relative_residual(sums(lo, hi), sse)
            if hi - lo == 1 and residual > PRICE_TOLERANCE and 0 < lo and hi < len(minutes):
                # One minute with calls at both prices: the change happened within it (to its middle).
                changed_within = minutes[lo]
                continue
            start = minutes[lo] * 60.0 if changed_within is None else changed_within * 60.0 + 30.0
            changed_within = None
            if found and _same_prices(found[-1], beta):  # a cut that changed nothing (float noise): undone
                last = found[-1]
                found[-1] = dataclasses.replace(last, residual=max(last.residual, residual),
                                                calls=last.calls + int(sums(lo, hi)[0]))
                continue
            found.append(PriceStretch(start, float(beta[0] * 1e6), float(beta[2] * 1e6), residual, int(sums(lo, hi)[0]),
                                      None if np.isnan(beta[1]) else float(beta[1] * 1e6)))
        return found

    def fail_fast_s(self) -> float | None:
        """How long a failed call took to come back, on average (None without failures)."""
        return self.failed_seconds / self.failures if self.failures else None

    def error_rate(self) -> float:
        """Failed calls / calls, the minutes of fault windows left out (they become events)."""
        faulty = set(self._faulty_minutes())
        calls = sum(c[0] for m, c in self.minutes.items() if m not in faulty)
        failed = sum(c[1] for m, c in self.minutes.items() if m not in faulty)
        return failed / calls if calls else 0.0

    def measurements(self) -> Measurements | None:
        if self.kept < MIN_REQUESTS:
            return None
        whole = np.concatenate(self.latency)
        usable = (whole[:, 1] > whole[:, 0]) & (whole[:, 3] > 0)  # a decode phase to measure
        whole = whole[usable]
        if len(whole) < MIN_REQUESTS:
            return None
        return Measurements(whole[:, 0], whole[:, 1], whole[:, 2], whole[:, 3], int((~usable).sum()))

    def _usual_share(self) -> float:
        """The failure share of the ordinary minutes (those failing less than FAULT_MIN_SHARE)."""
        ordinary = [c for c in self.minutes.values() if c[1] < FAULT_MIN_SHARE * c[0]]
        calls = sum(c[0] for c in ordinary)
        return sum(c[1] for c in ordinary) / calls if calls else 0.0

    def _faulty_minutes(self) -> list[int]:
        from scipy.stats import binom

        usual = self._usual_share()
        threshold = max(FAULT_FACTOR * usual, FAULT_MIN_SHARE)
        busy = sorted(m for m, c in self.minutes.items() if c[0] >= MIN_BIN_CALLS and c[1] >= threshold * c[0])
        # Failures that many in that many calls must be unlikely at the usual share, not chance.
        return [m for m in busy if binom.sf(self.minutes[m][1] - 1, self.minutes[m][0], usual) < FAULT_CHANCE]

    def fault_windows(self, origin: pd.Timestamp) -> list[dict]:
        """The deployment's fault windows as scenario events, in seconds since ``origin``."""
        usual = self._usual_share()
        runs: list[list[int]] = []
        for m in self._faulty_minutes():
            if runs and runs[-1][-1] == m - 1:
                runs[-1].append(m)
            else:
                runs.append([m])
        origin_s = origin.value / 1e9
        events = []
        for run in runs:
            calls, failed, limited = (sum(self.minutes[m][k] for m in run) for k in range(3))
            share = failed / calls
            window = {"model": self.name, "start_s": max(0.0, run[0] * 60 - origin_s),
                      "end_s": (run[-1] + 1) * 60 - origin_s}
            if share >= OUTAGE_SHARE:
                events.append({"kind": "outage", **window})
            else:
                events.append({"kind": "partial_outage", **window,
                               "error_rate": round((share - usual) / (1 - usual), 4),
                               "status": 429 if limited > failed / 2 else 500})
        return events

    def e2e_sample(self) -> np.ndarray:
        """End-to-end seconds of the answered streamed calls kept for the latency fit."""
        return np.concatenate(self.latency)[:, 1] if self.latency else np.zeros(0)

    def latency_block(self, kind: str = "quantiles") -> dict | None:
        measured = self.measurements()
        return None if measured is None else fit_latency(measured, kind)


def tally_chunk(tallies: dict[str, DeploymentTally], chunk: pd.DataFrame) -> None:
    """Add one chunk of the log to the deployments' tallies."""
    for name, rows in chunk.groupby("deployment", sort=False):
        t = tallies.get(name)
        if t is None:
            first = rows.iloc[0]
            t = tallies[name] = DeploymentTally(name, first.model_group, first.provider)
        t.add(rows)


def tally(chunks) -> dict[str, DeploymentTally]:
    """Every deployment's tally over the log's chunks."""
    tallies: dict[str, DeploymentTally] = {}
    for chunk in chunks:
        tally_chunk(tallies, chunk)
    return tallies
