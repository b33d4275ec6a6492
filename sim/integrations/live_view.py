"""A live router's own observations of its deployments, and the ``RouterView``
snapshots a policy is handed, with the simulator's semantics (``sim/core/observed.py``):
calls, failures, in-flight counts, moving averages with the same weight
(``EWMA_ALPHA``) of latency, time to first token, output speed and error rate,
consecutive failures and the last failure's time. Health comes from the live
router (its cooldowns), not from a rule of ours.

Plain Python and the policy interface only: no simulator, no simpy, no numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from sim.policies.base import EWMA_ALPHA, ModelStatus, RouterView


@dataclass(frozen=True)
class PublishedFacts:
    """What is known of a deployment before any call: where it runs, its price, its limits and
    the priors the team gives it (the same figures its scenario uses)."""

    provider: str
    input_per_mtok: float
    output_per_mtok: float
    context_window: int = 128_000
    quality_prior: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({"default": 0.0}))
    ttft_prior_s: float = 1.0
    tokens_per_s_prior: float = 50.0
    carbon_g_per_mtok: float | None = None


@dataclass
class _Observed:
    calls: int = 0
    failures: int = 0
    in_flight: int = 0
    latency: float | None = None
    ttft: float | None = None
    speed: float | None = None
    error_ewma: float = 0.0
    consecutive: int = 0
    last_failure: float | None = None


def _ewma(previous: float | None, value: float) -> float:
    return value if previous is None else previous + EWMA_ALPHA * (value - previous)


class LiveObservations:
    """Observations of named deployments; ``view(now, healthy)`` is the policy's snapshot."""

    def __init__(self, facts: Mapping[str, PublishedFacts]):
        self.facts = dict(facts)
        self.names = list(facts)
        self.positions = MappingProxyType({name: k for k, name in enumerate(self.names)})
        self.observed = {name: _Observed() for name in self.names}

    def started(self, name: str) -> None:
        self.observed[name].in_flight += 1

    def finished(self, name: str, ok: bool, duration_s: float, end_s: float, ttft_s: float | None = None,
                 output_tokens: int = 0) -> None:
        """One call ended: answered (``ok``) or failed, as the simulated router records it."""
        o = self.observed[name]
        o.in_flight = max(0, o.in_flight - 1)
        o.calls += 1
        if ok:
            o.latency = _ewma(o.latency, duration_s)
            if ttft_s is not None:
                o.ttft = _ewma(o.ttft, ttft_s)
                if output_tokens > 0 and duration_s > ttft_s:
                    o.speed = _ewma(o.speed, output_tokens / (duration_s - ttft_s))
            o.error_ewma *= 1.0 - EWMA_ALPHA
            o.consecutive = 0
            return
        o.failures += 1
        o.error_ewma += EWMA_ALPHA * (1.0 - o.error_ewma)
        o.consecutive += 1
        o.last_failure = end_s

    def status(self, name: str, healthy: bool) -> ModelStatus:
        f, o = self.facts[name], self.observed[name]
        return ModelStatus(name, f.provider, f.input_per_mtok, f.output_per_mtok, f.context_window,
                           MappingProxyType(dict(f.quality_prior)), f.ttft_prior_s, f.tokens_per_s_prior,
                           f.carbon_g_per_mtok, o.calls, o.failures, o.in_flight, o.latency, o.ttft, o.speed,
                           o.error_ewma, o.consecutive, o.last_failure, healthy)

    def view(self, now_s: float, unhealthy: frozenset[str] = frozenset()) -> RouterView:
        return RouterView(now_s, tuple(self.status(n, n not in unhealthy) for n in self.names), self.positions)
