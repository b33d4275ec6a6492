"""Synthetic traffic: the traces a scenario's ``trace.synthetic`` block describes
(Poisson, diurnal or bursty arrivals, spikes, a workload mix, lognormal token
counts), drawn vectorised from one named random stream."""

from __future__ import annotations

import numpy as np

from sim.errors import InputError, Problem
from sim.limits import MAX_TOKENS
from sim.scenario.schema.traffic import SyntheticTrace, TokenCounts
from .table import Trace, default_request_ids


def token_counts(rng: np.random.Generator, spec: TokenCounts, n: int) -> np.ndarray:
    values = np.rint(spec.distribution().sample(rng, n))
    values = np.clip(values, 1, MAX_TOKENS if spec.max is None else spec.max)  # also before the int cast overflows
    return values.astype(np.int64)


def generate(spec: SyntheticTrace, rng: np.random.Generator) -> Trace:
    """Poisson arrivals over ``duration_s`` (plus spikes) with a workload mix and lognormal tokens.

    The count is Poisson(rate x duration) and, given the count, the arrival
    times are sorted uniforms: that is a homogeneous Poisson process, drawn
    without a per-request loop.
    """
    # Spikes superpose more Poisson arrivals on their windows: the sum of Poisson
    # processes is the Poisson process of the summed rate.
    if spec.arrival == "poisson":
        segments = [(0.0, spec.duration_s, spec.rate_per_s)]
        base = []
    else:
        segments = []
        base = [diurnal_arrivals(spec, rng) if spec.arrival == "diurnal" else bursty_arrivals(spec, rng)]
    segments += [(sp.start_s, min(sp.end_s, spec.duration_s), sp.rate_per_s) for sp in spec.spikes
                 if sp.start_s < spec.duration_s]
    parts = base + [rng.uniform(lo, hi, int(rng.poisson(rate * (hi - lo)))) for lo, hi, rate in segments]
    arrival = np.sort(np.concatenate(parts))
    n = len(arrival)
    if n == 0:
        raise InputError(Problem("the synthetic trace has no requests (rate_per_s x duration_s too small)",
                                 path="trace.synthetic"))
    mix = spec.mix()
    names = sorted(mix)
    shares = np.array([mix[w].share for w in names], dtype=float)
    workload = rng.choice(len(names), size=n, p=shares / shares.sum()).astype(np.int32)
    input_tokens = np.empty(n, dtype=np.int64)
    output_tokens = np.empty(n, dtype=np.int64)
    for code, name in enumerate(names):
        rows = np.flatnonzero(workload == code)
        input_tokens[rows] = token_counts(rng, mix[name].input_tokens or spec.input_tokens, len(rows))
        output_tokens[rows] = token_counts(rng, mix[name].output_tokens or spec.output_tokens, len(rows))
    return Trace(arrival, input_tokens, output_tokens, default_request_ids(n), workload, names)


def diurnal_arrivals(spec: SyntheticTrace, rng: np.random.Generator) -> np.ndarray:
    """A non-homogeneous Poisson process with a sinusoidal rate, by thinning: Poisson
    arrivals at the peak rate, each kept with probability rate(t) / peak rate."""
    d = spec.diurnal
    peak = spec.rate_per_s * (1.0 + d.amplitude)
    candidates = rng.uniform(0.0, spec.duration_s, int(rng.poisson(peak * spec.duration_s)))
    rate = spec.rate_per_s * (1.0 + d.amplitude * np.cos(2 * np.pi * (candidates - d.peak_s) / d.period_s))
    return candidates[rng.random(len(candidates)) * peak < rate]


def bursty_arrivals(spec: SyntheticTrace, rng: np.random.Generator) -> np.ndarray:
    """An interrupted Poisson process: busy periods with Poisson arrivals at
    rate / busy_share alternate with silent ones, both exponential in length.

    Its inter-arrival times are hyperexponential with squared CV
    1 + 2 lam a / (a + b)^2 (a: busy->silent rate, b: silent->busy, lam: busy
    rate; Fischer and Meier-Hellstern, "The MMPP cookbook"); with a = (1 - p) s,
    b = p s, lam = r / p for busy share p and mean rate r, the switching speed
    s = 2 r (1 - p) / (p (cv^2 - 1)) gives the target cv.
    """
    b, r, p = spec.bursty, spec.rate_per_s, spec.bursty.busy_share
    if b.cv == 1.0:
        return rng.uniform(0.0, spec.duration_s, int(rng.poisson(r * spec.duration_s)))
    s = 2.0 * r * (1.0 - p) / (p * (b.cv ** 2 - 1.0))
    to_silent, to_busy, busy_rate = (1.0 - p) * s, p * s, r / p
    parts, t, busy = [], 0.0, bool(rng.random() < p)  # start in the stationary state
    while t < spec.duration_s:
        n = 4096  # periods drawn at a time: busy and silent alternate
        first_busy = np.arange(n) % 2 == 0
        is_busy = first_busy if busy else ~first_busy
        lengths = rng.exponential(1.0 / np.where(is_busy, to_silent, to_busy))
        ends = t + np.cumsum(lengths)
        starts = ends - lengths
        lo, hi = starts[is_busy], np.minimum(ends[is_busy], spec.duration_s)
        lo, hi = lo[lo < spec.duration_s], hi[lo < spec.duration_s]
        counts = rng.poisson(busy_rate * (hi - lo))
        parts.append(np.repeat(lo, counts) + rng.random(int(counts.sum())) * np.repeat(hi - lo, counts))
        t = float(ends[-1])
    arrival = np.concatenate(parts)
    return arrival[arrival < spec.duration_s]
