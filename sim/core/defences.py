"""Router defences as small state machines, independent of the engine.

- Backoff with jitter: the AWS Architecture Blog formulas ("Exponential Backoff
  and Jitter"): none, full, equal, decorrelated.
- ``CircuitBreaker``: Resilience4j semantics (CLOSED / OPEN / HALF_OPEN, count-
  or time-based sliding window, failure-rate and slow-call-rate thresholds,
  minimum number of calls, wait in OPEN, a fixed number of HALF_OPEN probes).
- ``Cooldown``: LiteLLM's deployment cooldown, as litellm 1.110.2 behaves
  (``CooldownSpec``; compared with the real library in tests/conformance/).
- ``RetryBudget``: Envoy's retry budget (retries in progress may not exceed a
  share of active requests, with a floor).

Each takes the time as an argument: none reads a clock.
"""

from __future__ import annotations

from collections import deque

from sim.scenario.schema.routing import BackoffSpec, CircuitBreakerSpec, CooldownSpec, RetrySpec

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def backoff_s(spec: BackoffSpec, retry: int, u: float, previous_s: float | None) -> float:
    """Sleep before retry number ``retry`` (0 for the first), from a uniform ``u`` in [0, 1).

    ``previous_s`` is the previous sleep (decorrelated jitter only; None at first).
    """
    ceiling = min(spec.cap_s, spec.base_s * 2.0 ** retry)
    if spec.jitter == "none":
        return ceiling
    if spec.jitter == "full":
        return u * ceiling
    if spec.jitter == "equal":
        return ceiling / 2 + u * ceiling / 2
    # decorrelated: min(cap, uniform(base, previous * 3)), starting from base
    previous = spec.base_s if previous_s is None else previous_s
    return min(spec.cap_s, spec.base_s + u * (previous * 3 - spec.base_s))


class CircuitBreaker:
    """One model's breaker. ``allow(now)`` before an attempt; ``record(...)`` after.

    A call's result counts only in the state generation that permitted it: a
    call started while CLOSED that ends after the breaker opened is ignored, as
    is a call permitted before a HALF_OPEN trial that ends during it.
    """

    def __init__(self, spec: CircuitBreakerSpec):
        self.spec = spec
        self.state = CLOSED
        self.generation = 0  # bumps on every transition
        self.opened_at = 0.0
        self.open_time_s = 0.0  # total time spent OPEN, up to the last transition
        self._window: deque = deque()  # (time, failed, slow) of calls while CLOSED
        self._failed = self._slow = 0  # how many of the window's calls failed, were slow (kept, not re-summed)
        self._permits = 0  # HALF_OPEN calls permitted
        self._trial: list[tuple[bool, bool]] = []  # HALF_OPEN results

    def allow(self, now: float) -> int | None:
        """The generation to record the call under, or None when the call is not permitted."""
        if self.state == OPEN:
            if now < self.opened_at + self.spec.open_s:
                return None
            self._transition(HALF_OPEN, now)
        if self.state == HALF_OPEN:
            if self._permits >= self.spec.half_open_calls:
                return None
            self._permits += 1
        return self.generation

    def record(self, generation: int, now: float, failed: bool, duration_s: float) -> None:
        if generation != self.generation:
            return
        slow = self.spec.slow_call_s is not None and duration_s >= self.spec.slow_call_s
        if self.state == HALF_OPEN:
            self._trial.append((failed, slow))
            if len(self._trial) == self.spec.half_open_calls:
                self._transition(OPEN if self._tripped(self._trial) else CLOSED, now)
            return
        window = self._window
        window.append((now, failed, slow))
        self._failed += failed
        self._slow += slow
        if self.spec.window == "count":
            if len(window) > self.spec.size:
                self._drop_oldest()
        else:
            while window and window[0][0] <= now - self.spec.size:
                self._drop_oldest()
        n = len(window)
        if n >= self.spec.min_calls and self._rates_trip(self._failed / n, self._slow / n):
            self._transition(OPEN, now)

    def _drop_oldest(self) -> None:
        _, failed, slow = self._window.popleft()
        self._failed -= failed
        self._slow -= slow

    def _tripped(self, results: list[tuple[bool, bool]]) -> bool:
        n = len(results)
        return self._rates_trip(sum(f for f, _ in results) / n, sum(s for _, s in results) / n)

    def _rates_trip(self, failure_rate: float, slow_rate: float) -> bool:
        return failure_rate >= self.spec.failure_rate or (self.spec.slow_call_s is not None
                                                          and slow_rate >= self.spec.slow_call_rate)

    def _transition(self, state: str, now: float) -> None:
        if self.state == OPEN:
            self.open_time_s += now - self.opened_at
        self.state = state
        self.generation += 1
        self._window.clear()
        self._failed = self._slow = 0
        self._trial = []
        self._permits = 0
        if state == OPEN:
            self.opened_at = now

    def open_time_until(self, now: float) -> float:
        """Seconds spent OPEN from the start until ``now``."""
        return self.open_time_s + (now - self.opened_at if self.state == OPEN else 0.0)


#: LiteLLM's failure-rate rule (litellm/constants.py): more than this share of a minute's
#: attempts failed, with at least this many attempts; or all of at least SINGLE_TRAFFIC_CALLS.
FAILURE_SHARE, MIN_CALLS, SINGLE_TRAFFIC_CALLS = 0.5, 5, 1000


class Cooldown:
    """One model's LiteLLM cooldown (``CooldownSpec``)."""

    def __init__(self, spec: CooldownSpec, name: str):
        self.spec = spec
        self.until = 0.0
        self.single = name in spec.single_deployment
        self.exempt = self.single and not spec.single_deployment.get(name, False)  # alone, no fallback group
        self._count, self._count_expires = 0, -1.0  # allowed_fails mode
        self._minute, self._successes, self._failures = -1, 0, 0  # failure-rate mode

    def available(self, now: float) -> bool:
        return now >= self.until

    def success(self, now: float) -> None:
        if self.spec.allowed_fails is not None:
            return  # only the failure-rate rule counts successes
        self._this_minute(now)
        self._successes += 1

    def failure(self, now: float, rate_limited: bool) -> None:
        self._this_minute(now)
        self._failures += 1
        if self._cools(now, rate_limited):
            self.until = now + self.spec.cooldown_s

    def _this_minute(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._successes, self._failures = minute, 0, 0

    def _cools(self, now: float, rate_limited: bool) -> bool:
        spec = self.spec
        if spec.allowed_fails is not None:
            if self.exempt:
                return False
            if now >= self._count_expires:  # the count lives cooldown_s from its first failure
                self._count, self._count_expires = 0, now + spec.cooldown_s
            self._count += 1
            return self._count > spec.allowed_fails
        calls = self._successes + self._failures
        share = self._failures / calls
        if rate_limited and not self.single:
            return True
        if share == 1.0 and calls >= SINGLE_TRAFFIC_CALLS:
            return True
        return share > FAILURE_SHARE and calls >= MIN_CALLS and not self.single


class RetryBudget:
    """Retries in progress (waiting or in flight) may not exceed ``budget`` x active
    requests, and are always allowed up to ``min_retry_concurrency``."""

    def __init__(self, spec: RetrySpec):
        self.share = spec.budget
        self.floor = spec.min_retry_concurrency
        self.active_requests = 0
        self.active_retries = 0

    def try_acquire(self) -> bool:
        if self.share is not None and self.active_retries >= max(self.floor, self.share * self.active_requests):
            return False
        self.active_retries += 1
        return True

    def release(self) -> None:
        self.active_retries -= 1
