"""What the router knows about each model: its own observations and its
defences' state, the published prices and launch dates, what the scenario says
it believes (quality), and the ``RouterView`` snapshots policies receive. It
holds nothing else of the world.

Snapshots are rebuilt only for models whose state changed, and all of them when
a price changes or a cooldown, breaker wait or health hold ends.
"""

from __future__ import annotations

from collections import deque
from types import MappingProxyType
from typing import Mapping, Sequence

from sim.world.models import ModelTable
from .defences import OPEN, CircuitBreaker, Cooldown
from .outcomes import ATTEMPT_CANCELLED, ATTEMPT_CONTEXT_OVERFLOW, ATTEMPT_OK, ATTEMPT_RATE_LIMITED
from sim.policies.base import EWMA_ALPHA, ModelStatus, RouterView
from sim.pricing.book import PriceBook
from sim.scenario.schema.routing import RouterSpec

RECENT = 200  # successful latencies kept per model, for percentiles (hedging)
MIN_FOR_PERCENTILE = 20
INF = float("inf")
_tuple_new = tuple.__new__
assert len(ModelStatus._fields) == 20, "keep _status in step with ModelStatus"


def _ewma(previous: float | None, value: float) -> float:
    return value if previous is None else previous + EWMA_ALPHA * (value - previous)


class Observations:
    def __init__(self, catalog: ModelTable, spec: RouterSpec, prices: PriceBook, launch_at: Sequence[float],
                 quality_beliefs: Sequence[Mapping[str, float]]):
        self.prices = prices
        self.spec = spec
        n = len(catalog.names)
        self.names = catalog.names
        self.positions = MappingProxyType(dict(catalog.index))  # shared by every view: never changes
        self.calls = [0] * n
        self.failures = [0] * n
        self.in_flight = [0] * n
        self.latency = [None] * n
        self.ttft = [None] * n
        self.speed = [None] * n
        self.error_ewma = [0.0] * n
        self.consecutive = [0] * n
        self.last_failure = [None] * n
        self.held_until = [0.0] * n  # the simple health hold (router.health)
        # Latencies of the last successful attempts: only percentile hedging reads them.
        wanted = spec.hedge is not None and spec.hedge.after_percentile is not None
        self.recent = [deque(maxlen=RECENT) for _ in range(n)] if wanted else None
        self._percentiles: dict[tuple[int, float], tuple[int, float]] = {}
        self.breakers = None if spec.circuit_breaker is None else [CircuitBreaker(spec.circuit_breaker) for _ in range(n)]
        self.cooldowns = None if spec.cooldown is None else [Cooldown(spec.cooldown, name) for name in catalog.names]
        # Published facts that do not change, as the head of every ModelStatus.
        self._facts = [(catalog.names[m], catalog.providers[m]) for m in range(n)]
        self._priors = [(catalog.context_window[m], quality_beliefs[m], catalog.ttft_median_s[m],
                         catalog.tps_median[m], catalog.carbon_g_per_mtok[m]) for m in range(n)]
        self._statuses: list[ModelStatus] = [None] * n  # type: ignore[list-item]
        self.dirty = set(range(n))
        self._view: RouterView | None = None
        self._price_changes = prices.change_times()
        self._next_refresh = self._price_changes[0] if self._price_changes else INF
        # (input, output) list prices in force now, as policies see them; updated by _refresh.
        self._prices = [prices.price(m, 0.0)[:2] for m in range(n)]
        self.launch_at = list(launch_at)
        self._launches = sorted(t for t in launch_at if t > 0)  # the view changes at each
        self._launch_positions: dict[tuple, MappingProxyType] = {}
        if self._launches:
            self.change_at(self._launches[0])

    # ------------------------------------------------------------------ snapshots
    def view(self, now: float) -> RouterView:
        if now >= self._next_refresh:
            self._refresh(now)
        if self.dirty or self._view is None:
            statuses = self._statuses
            for m in self.dirty:
                statuses[m] = self._status(m, now)
            self.dirty.clear()
            if self._launches:
                self._view = self._launched_view(now, statuses)
            else:
                self._view = _tuple_new(RouterView, (now, tuple(statuses), self.positions))
            return self._view
        return self._view._replace(now_s=now)

    def _launched_view(self, now: float, statuses: list[ModelStatus]) -> RouterView:
        """Only the models launched by ``now``; positions follow the shorter tuple."""
        launched = tuple(m for m in range(len(statuses)) if self.launch_at[m] <= now)
        positions = self._launch_positions.get(launched)
        if positions is None:
            positions = self._launch_positions[launched] = MappingProxyType(
                {self.names[m]: k for k, m in enumerate(launched)})
        return RouterView(now, tuple(statuses[m] for m in launched), positions)

    def launched(self, m: int, now: float) -> bool:
        return self.launch_at[m] <= now

    def change_at(self, t: float) -> None:
        """Something about the models changes by itself at ``t``: refresh then."""
        if t < self._next_refresh:
            self._next_refresh = t

    def _refresh(self, now: float) -> None:
        self.dirty.update(range(len(self.names)))
        self._prices = [self.prices.price(m, now)[:2] for m in range(len(self.names))]
        while self._price_changes and self._price_changes[0] <= now:
            self._price_changes.pop(0)
        pending = [u for u in self.held_until if u > now] + self._price_changes[:1] + self._launches
        if self.breakers is not None:
            pending += [b.opened_at + b.spec.open_s for b in self.breakers if b.state == OPEN]
        if self.cooldowns is not None:
            pending += [c.until for c in self.cooldowns if c.until > now]
        pending = [t for t in pending if t > now]
        self._next_refresh = min(pending) if pending else INF

    def _status(self, m: int, now: float) -> ModelStatus:
        price_in, price_out = self._prices[m]
        context, prior, ttft, tps, carbon = self._priors[m]
        if self.breakers is None and self.cooldowns is None:
            healthy = now >= self.held_until[m]  # would_send, without the defences it checks
        else:
            healthy = self.would_send(m, now)
        name, provider = self._facts[m]
        # tuple.__new__ with the fields in order: a third faster than ModelStatus(...),
        # which matters because a snapshot is rebuilt for every request.
        return _tuple_new(ModelStatus, (name, provider, price_in, price_out, context, prior, ttft, tps, carbon,
                                        self.calls[m], self.failures[m], self.in_flight[m], self.latency[m],
                                        self.ttft[m], self.speed[m], self.error_ewma[m], self.consecutive[m],
                                        self.last_failure[m], healthy,
                                        None if self.breakers is None else self.breakers[m].state))

    def would_send(self, m: int, now: float) -> bool:
        """Healthy as policies see it: not held, cooled down or behind an open breaker."""
        if now < self.held_until[m]:
            return False
        if self.cooldowns is not None and not self.cooldowns[m].available(now):
            return False
        if self.breakers is not None:
            breaker = self.breakers[m]
            if breaker.state == OPEN and now < breaker.opened_at + breaker.spec.open_s:
                return False
        return True

    def latency_percentile(self, m: int, q: float) -> float | None:
        """The q-quantile of the model's recent successful latencies (None with too few).

        Recomputed every tenth new observation: hedging asks for it on every attempt.
        """
        calls = self.calls[m]
        cached = self._percentiles.get((m, q))
        if cached is not None and calls - cached[0] < 10:
            return cached[1]
        recent = self.recent[m]
        if len(recent) < MIN_FOR_PERCENTILE:
            return None
        ordered = sorted(recent)
        value = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
        self._percentiles[(m, q)] = (calls, value)
        return value

    # ------------------------------------------------------------------ admission and feedback
    def admit(self, m: int, now: float, has_alternative: bool) -> tuple[bool, int | None]:
        """May an attempt go to ``m`` now? Returns (admitted, breaker generation)."""
        if self.cooldowns is not None and not self.cooldowns[m].available(now) and has_alternative:
            return False, None
        if self.breakers is None:
            return True, None
        generation = self.breakers[m].allow(now)
        self.dirty.add(m)
        return generation is not None, generation

    def started(self, m: int) -> None:
        self.in_flight[m] += 1
        self.dirty.add(m)

    def finished(self, m: int, outcome: int, duration: float, end: float, ttft, output_tokens: int,
                 generation: int | None) -> None:
        self.in_flight[m] -= 1
        self.calls[m] += 1
        self.dirty.add(m)
        if outcome == ATTEMPT_CONTEXT_OVERFLOW or outcome == ATTEMPT_CANCELLED:
            return  # an oversized request, or one the router withdrew, says nothing about the model
        failed = outcome != ATTEMPT_OK
        if self.breakers is not None and generation is not None:
            breaker = self.breakers[m]
            breaker.record(generation, end, failed, duration)
            if breaker.state == OPEN:
                self.change_at(breaker.opened_at + breaker.spec.open_s)
        if not failed:
            if self.recent is not None:
                self.recent[m].append(duration)
            # _ewma, inlined: this runs for every answer.
            previous = self.latency[m]
            self.latency[m] = duration if previous is None else previous + EWMA_ALPHA * (duration - previous)
            previous = self.ttft[m]
            self.ttft[m] = ttft if previous is None else previous + EWMA_ALPHA * (ttft - previous)
            if output_tokens > 0 and duration > ttft:
                self.speed[m] = _ewma(self.speed[m], output_tokens / (duration - ttft))
            self.error_ewma[m] *= 1.0 - EWMA_ALPHA
            self.consecutive[m] = 0
            if self.cooldowns is not None:
                self.cooldowns[m].success(end)
            return
        self.failures[m] += 1
        self.error_ewma[m] += EWMA_ALPHA * (1.0 - self.error_ewma[m])
        self.consecutive[m] += 1
        self.last_failure[m] = end
        health = self.spec.health
        if health is not None and self.consecutive[m] >= health.consecutive_failures:
            self.held_until[m] = end + health.cooldown_s
            self.change_at(self.held_until[m])
        if self.cooldowns is not None:
            cooldown = self.cooldowns[m]
            cooldown.failure(end, outcome == ATTEMPT_RATE_LIMITED)
            if cooldown.until > end:
                self.change_at(cooldown.until)
