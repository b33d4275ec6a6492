"""The providers' side of one run: rate limits and serving capacity.

Unlike the world's fault timeline, this state depends on the traffic a policy
sends, so every (policy, replication) run has its own.

- Rate limits: token buckets per model and/or per provider. RPM: one token per
  attempt; TPM: the attempt's input plus output tokens, reserved at admission
  (as providers reserve ``max_tokens``). A bucket holds at most one minute's
  allowance (the burst) and refills continuously. An attempt that does not fit
  every bucket takes nothing and gets a 429 with the time until it would fit.
- Capacity: at most ``concurrency`` attempts served at once per model; the rest
  wait in a FIFO queue, and leave it with an error after ``queue_timeout_s``.
"""

from __future__ import annotations

from collections import deque

from .models import ModelTable
from sim.scenario.load import Scenario


class TokenBucket:
    def __init__(self, per_minute: float):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = float(per_minute)
        self.updated = 0.0

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, now: float, amount: float) -> float:
        """Seconds until ``amount`` fits (0 when it fits now; inf when it never can)."""
        self._refill(now)
        if amount <= self.level:
            return 0.0
        if amount > self.capacity:
            return float("inf")
        return (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount


class Capacity:
    def __init__(self, concurrency: int, queue_timeout_s: float | None):
        self.concurrency = concurrency
        self.queue_timeout_s = queue_timeout_s
        self.busy = 0
        self.queue: deque = deque()


class Providers:
    def __init__(self, scenario: Scenario, catalog: ModelTable):
        n = len(catalog.names)
        # Per model: the (requests bucket, tokens bucket) pairs that apply to it.
        self.limits: list[list[tuple[TokenBucket | None, TokenBucket | None]]] = [[] for _ in range(n)]
        for m, spec in enumerate(scenario.models.values()):
            if spec.rate_limit is not None:
                self.limits[m].append(_buckets(spec.rate_limit))
        for provider, spec in scenario.providers.items():
            if spec.rate_limit is not None:
                shared = _buckets(spec.rate_limit)
                for m in catalog.models_of_provider(provider):
                    self.limits[m].append(shared)
        self.capacity: list[Capacity | None] = [
            None if spec.capacity is None else Capacity(spec.capacity.concurrency, spec.capacity.queue_timeout_s)
            for spec in scenario.models.values()]

    def admit(self, m: int, now: float, tokens: int) -> float:
        """Take the attempt's allowance and return 0, or return the retry-after of a 429."""
        limits = self.limits[m]
        if not limits:
            return 0.0
        wait = 0.0
        for requests, token_bucket in limits:
            if requests is not None:
                wait = max(wait, requests.wait_for(now, 1.0))
            if token_bucket is not None:
                wait = max(wait, token_bucket.wait_for(now, tokens))
        if wait > 0.0:
            return wait
        for requests, token_bucket in limits:
            if requests is not None:
                requests.take(1.0)
            if token_bucket is not None:
                token_bucket.take(tokens)
        return 0.0


def _buckets(limit) -> tuple[TokenBucket | None, TokenBucket | None]:
    return (None if limit.rpm is None else TokenBucket(limit.rpm),
            None if limit.tpm is None else TokenBucket(limit.tpm))
