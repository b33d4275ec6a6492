"""Ground truth over time: outages, the price schedule, and what each attempt
would produce (latency, error draw, acceptable answer).

Only the engine and router read this; policies never do. Per-attempt truth is
computed vectorised per block of requests from the pre-drawn variates of
``rng.py`` and handed out as nested Python lists, which the router indexes
faster than numpy scalars.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .models import ModelTable
from sim.compact import compact
from sim.pricing.book import PriceBook
from sim.rng import BLOCK_SIZE, Stream, draw_block, generator, name_key
from sim.scenario.load import Scenario
from sim.scenario.schema.faults import LaunchEvent, OutageProcess, PriceEvent
from sim.traces.table import Trace

# Blocks kept: requests in flight (up to the longest deadline) must find theirs
# here; a miss is only a redraw of the same numbers, at a cost in time. ~2 MB each.
_CACHED_BLOCKS = 32


def draw_difficulty(scenario: Scenario, trace: Trace, seed: int, replication: int) -> np.ndarray:
    """Each request's true difficulty: the trace's, else N(mean, sd) of its workload."""
    if trace.difficulty is not None:
        return trace.difficulty
    rng = generator(seed, replication, Stream.DIFFICULTY)
    z = rng.standard_normal(len(trace))
    mean = np.array([scenario.workloads[w].difficulty.mean if w in scenario.workloads else 0.0 for w in trace.workloads])
    sd = np.array([scenario.workloads[w].difficulty.sd if w in scenario.workloads else 1.0 for w in trace.workloads])
    return mean[trace.workload] + sd[trace.workload] * z


def draw_incidents(process: OutageProcess, horizon_s: float, seed: int, replication: int,
                   provider: str) -> list[tuple[float, float, float]]:
    """(start, end, error rate) of a provider's random incidents over [0, horizon_s).

    An alternating renewal process: lognormal incident durations and
    exponential up-times between them, with mean ``mtbf_s - mean duration`` so
    that incidents start ``mtbf_s`` apart on average (MTBF = MTTF + MTTR). The
    stream of each provider is keyed by its name, so adding a provider does not
    change another's incidents.
    """
    mtbf, duration_spec, rate = process.resolved()
    duration = duration_spec.distribution()
    up_time = mtbf - duration.mean
    rng = generator(seed, replication, Stream.WORLD, name_key(provider))
    incidents, t = [], 0.0
    while True:
        t += rng.exponential(up_time)
        if t >= horizon_s:
            return incidents
        length = float(duration.from_normal(rng.standard_normal()))
        incidents.append((t, t + length, rate))
        t += length


class World:
    def __init__(self, scenario: Scenario, catalog: ModelTable, trace: Trace, difficulty: np.ndarray,
                 seed: int, replication: int, n_attempts: int):
        self.catalog = catalog
        self.trace = trace
        self.seed, self.replication, self.n_attempts = seed, replication, n_attempts
        self.difficulty = difficulty
        #: Input tokens each request reads from a prompt cache: the trace's, else its workload's share.
        if trace.cached_input_tokens is not None:
            self.cached_input_tokens = trace.cached_input_tokens
        else:
            share = np.array([scenario.workloads[w].cache_hit_share if w in scenario.workloads else 0.0
                              for w in trace.workloads])
            if share.any():
                self.cached_input_tokens = np.rint(trace.input_tokens * share[trace.workload]).astype(np.int64)
            else:  # np.zeros: pages the system gives only when written, which they never are
                self.cached_input_tokens = np.zeros(len(trace), dtype=np.int64)
        n_models = len(catalog.names)
        index = catalog.index
        # Fault windows per model, sorted by start: (start, end, down, error_rate, latency_x, rate_limited).
        self.faults: list[list[tuple[float, float, bool, float, float, bool]]] = [[] for _ in range(n_models)]
        #: Every fault window for reports: (start, end, kind, target).
        self.fault_windows: list[tuple[float, float, str, str]] = []
        #: The published prices over time (list prices and the scenario's price events).
        self.prices = PriceBook(catalog.prices)
        #: When each model becomes available (0: from the start).
        self.launch_at = [0.0] * n_models
        # Price events in time order: one that keeps the cached price keeps the one in force just before it.
        events = sorted(scenario.events, key=lambda e: e.at_s if isinstance(e, PriceEvent) else -1.0)
        for event in events:
            if isinstance(event, PriceEvent):
                m = index[event.model]
                before = self.prices.price(m, event.at_s)
                cached = before.cached_input_per_mtok if event.cached_input_per_mtok is None else event.cached_input_per_mtok
                self.prices.add(m, event.at_s, before._replace(input_per_mtok=event.input_per_mtok,
                                                               output_per_mtok=event.output_per_mtok,
                                                               cached_input_per_mtok=cached))
            elif isinstance(event, LaunchEvent):
                self.launch_at[index[event.model]] = event.at_s
            else:
                targets = [index[event.model]] if event.model else catalog.models_of_provider(event.provider)
                self._add_fault(targets, event.start_s, event.end_s, event.kind, event.model or event.provider,
                                down=event.kind == "outage", error_rate=getattr(event, "error_rate", 0.0),
                                latency_x=getattr(event, "latency_x", 1.0),
                                rate_limited=getattr(event, "status", 500) == 429)
        for provider, spec in scenario.providers.items():
            if spec.outages is not None:
                for start, end, rate in draw_incidents(spec.outages, trace.duration_s, seed, replication, provider):
                    self._add_fault(catalog.models_of_provider(provider), start, end,
                                    "outage" if rate >= 1.0 else "incident", provider,
                                    down=rate >= 1.0, error_rate=rate, latency_x=1.0)
        for windows in self.faults:
            windows.sort()
        self.fault_windows.sort()
        self.price_change_times = self.prices.change_times()
        # Per-request quality probability per model: labels where the trace has them.
        self._labels = [trace.quality_labels.get(name) for name in catalog.names]
        self._blocks: OrderedDict[int, list] = OrderedDict()

    def cache_hits(self, hit_share: float) -> np.ndarray:
        """Which requests a response cache answers (bool per request): the same requests for
        every policy of this replication, and a larger share keeps every hit of a smaller one."""
        u = generator(self.seed, self.replication, Stream.CACHE).random(len(self.trace))
        return u < hit_share

    def _add_fault(self, models: list[int], start: float, end: float, kind: str, target: str, *,
                   down: bool, error_rate: float, latency_x: float, rate_limited: bool = False) -> None:
        for m in models:
            self.faults[m].append((start, end, down, error_rate, latency_x, rate_limited))
        self.fault_windows.append((start, end, kind, target))

    # ------------------------------------------------------------------ over time
    def state(self, m: int, t: float) -> tuple[bool, float, float, float]:
        """(down, error rate, latency multiplier, 429 rate) of model ``m`` at ``t``.

        Overlapping faults combine as independent causes: error rates as
        1 - prod(1 - p), latency multipliers as a product. The 429 rate is the
        part of the error rate that rate-limit storms cause: an attempt whose
        error draw falls below it gets a 429, one between it and the error rate
        an error.
        """
        base = self.catalog.error_rate[m]
        down, survive, latency_x, unlimited = False, 1.0 - base, 1.0, 1.0
        for start, end, fault_down, error_rate, fault_latency_x, rate_limited in self.faults[m]:
            if start > t:
                break
            if t < end:
                down = down or fault_down
                survive *= 1.0 - error_rate
                latency_x *= fault_latency_x
                if rate_limited:
                    unlimited *= 1.0 - error_rate
        return down, 1.0 - survive, latency_x, 1.0 - unlimited

    # ------------------------------------------------------------------ per attempt
    def block(self, b: int) -> "Block":
        """Ground truth of every (request, model, attempt) in block ``b``."""
        cached = self._blocks.get(b)
        if cached is not None:
            return cached
        cached = self._compute_block(b)
        self._blocks[b] = cached
        if len(self._blocks) > _CACHED_BLOCKS:
            self._blocks.popitem(last=False)
        return cached

    def _compute_block(self, b: int) -> "Block":
        cat = self.catalog
        lo = b * BLOCK_SIZE
        hi = min(lo + BLOCK_SIZE, len(self.trace))
        n = hi - lo
        draws = draw_block(self.seed, self.replication, b, n, cat.names, self.n_attempts)
        # Extreme scenario values may overflow exp to inf: an endless answer (the attempt
        # times out) or a sure failure (sigmoid 0), which is the right limit in both cases.
        with np.errstate(over="ignore"):
            ttft = np.empty(draws.ttft_z.shape)
            tps = np.empty(draws.tps_z.shape)
            for m in range(len(cat.names)):
                # In double precision: the draws are float32 to keep blocks small, the latencies are not.
                ttft_z = draws.ttft_z[:, m, :].astype(np.float64)
                tps_z = draws.tps_z[:, m, :].astype(np.float64)
                rho = cat.speed_correlation[m]
                if rho:  # a Gaussian copula: the speed's normal score leans on the TTFT's
                    tps_z = rho * ttft_z + np.sqrt(1.0 - rho * rho) * tps_z
                ttft[:, m, :] = cat.ttft[m].from_normal(ttft_z)
                tps[:, m, :] = cat.tokens_per_s[m].from_normal(tps_z)
            if cat.prefill_s_per_token.any():  # TTFT grows with the prompt
                prompt = self.trace.input_tokens[lo:hi].astype(float)
                ttft += prompt[:, None, None] * cat.prefill_s_per_token[None, :, None]
            tps = np.maximum(tps, np.finfo(float).tiny)  # an underflow to 0 would make 0/0 latencies NaN
            output = self.trace.output_tokens[lo:hi].astype(float)
            latency = ttft + output[:, None, None] / tps
            ability = cat.ability[:, self.trace.workload[lo:hi]].T  # (requests, models)
            p_ok = 1.0 / (1.0 + np.exp(-(ability - self.difficulty[lo:hi, None])))
        for m, labels in enumerate(self._labels):
            if labels is not None:
                p_ok[:, m] = labels[lo:hi]
        accept = draws.quality_u < p_ok[:, :, None]
        # The uniforms stay float32 (read back as the same Python floats), acceptability too (0 or 1).
        return Block(*(compact(column.ravel()) for column in (
            ttft, tps, latency, draws.error_u, accept.astype(np.float32), draws.retry_u, draws.judge_u)))


class Block(NamedTuple):
    """Flat arrays over (request in block, model, attempt on that model), C order:
    the cell of (j, m, k) is at ``(j * models + m) * attempts + k``. They are
    memoryviews of numpy arrays (``compact``): an attempt reads a handful of
    single cells, and indexing one is four times faster than a numpy ``.item()``."""

    ttft_s: memoryview
    tokens_per_s: memoryview
    latency_s: memoryview  # ttft + output_tokens / tokens_per_s, before any slowdown
    error_u: memoryview  # uniform draw compared with the error rate in force
    accept: memoryview  # 1.0 when the answer would be acceptable
    retry_u: memoryview  # (request in block, retry number): jitter draws, at j * attempts + n
    judge_u: memoryview  # uniform draw behind a cascade judge's verdict on the answer
