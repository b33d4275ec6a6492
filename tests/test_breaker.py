"""The circuit breaker against a small reference model (hypothesis stateful),
and its defining properties."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sim.core.defences import CircuitBreaker
from sim.scenario.schema.routing import CircuitBreakerSpec


class ReferenceBreaker:
    """Resilience4j's breaker written the slow, obvious way: it keeps every call
    and recomputes the window from scratch."""

    def __init__(self, spec: CircuitBreakerSpec):
        self.spec = spec
        self.state = "closed"
        self.since = 0.0  # time of the last transition
        self.epoch = 0
        self.closed_calls: list[tuple[float, bool, bool]] = []  # recorded this closed period
        self.probes_started = 0
        self.probe_results: list[tuple[bool, bool]] = []

    def _enter(self, state, now):
        self.state, self.since, self.epoch = state, now, self.epoch + 1
        self.closed_calls, self.probes_started, self.probe_results = [], 0, []

    def allow(self, now):
        if self.state == "open" and now >= self.since + self.spec.open_s:  # absolute time, as routers schedule it
            self._enter("half_open", now)
        if self.state == "open":
            return None
        if self.state == "half_open":
            if self.probes_started == self.spec.half_open_calls:
                return None
            self.probes_started += 1
        return self.epoch

    def _over(self, results):
        failed = [f for f, _ in results]
        slow = [s for _, s in results]
        if sum(failed) / len(results) >= self.spec.failure_rate:
            return True
        return self.spec.slow_call_s is not None and sum(slow) / len(results) >= self.spec.slow_call_rate

    def record(self, epoch, now, failed, duration):
        if epoch != self.epoch:
            return
        slow = self.spec.slow_call_s is not None and duration >= self.spec.slow_call_s
        if self.state == "half_open":
            self.probe_results.append((failed, slow))
            if len(self.probe_results) == self.spec.half_open_calls:
                self._enter("open" if self._over(self.probe_results) else "closed", now)
            return
        self.closed_calls.append((now, failed, slow))
        if self.spec.window == "count":
            window = self.closed_calls[-self.spec.size:]
        else:
            window = [c for c in self.closed_calls if c[0] > now - self.spec.size]
        if len(window) >= self.spec.min_calls and self._over([(f, s) for _, f, s in window]):
            self._enter("open", now)


specs = st.builds(
    lambda window, size, min_calls, rate, slow, open_s, probes: CircuitBreakerSpec(
        window=window, size=size, min_calls=min(min_calls, size) if window == "count" else min_calls,
        failure_rate=rate, slow_call_s=slow, open_s=open_s, half_open_calls=probes),
    st.sampled_from(["count", "time"]), st.integers(1, 12), st.integers(1, 12),
    st.sampled_from([0.25, 0.5, 1.0]), st.sampled_from([None, 2.0]), st.sampled_from([1.0, 5.0]), st.integers(1, 4))


class BreakerMachine(RuleBasedStateMachine):
    @initialize(spec=specs)
    def start(self, spec):
        self.spec = spec
        self.breaker = CircuitBreaker(spec)
        self.reference = ReferenceBreaker(spec)
        self.now = 0.0
        self.pending: list[tuple[int, int]] = []  # calls started: (breaker's generation, reference's epoch)
        self.open_attempts = 0

    @rule(dt=st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0, 6.0]))
    def wait(self, dt):
        self.now += dt

    @rule()
    def try_call(self):
        was_open = self.breaker.state == "open" and self.now < self.breaker.opened_at + self.spec.open_s
        got, expected = self.breaker.allow(self.now), self.reference.allow(self.now)
        assert (got is None) == (expected is None)
        if got is not None:
            assert not was_open, "an open breaker let a call through"
            self.pending.append((got, expected))

    @rule(data=st.data(), failed=st.booleans(), duration=st.sampled_from([0.5, 3.0]))
    def finish_call(self, data, failed, duration):
        if not self.pending:
            return
        generation, epoch = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        self.breaker.record(generation, self.now, failed, duration)
        self.reference.record(epoch, self.now, failed, duration)

    @invariant()
    def same_state(self):
        if hasattr(self, "breaker"):
            assert self.breaker.state == self.reference.state
            if self.breaker.state == "half_open":
                assert self.breaker._permits <= self.spec.half_open_calls


TestBreakerAgainstReference = BreakerMachine.TestCase
TestBreakerAgainstReference.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_fewer_than_the_minimum_calls_never_open_it():
    breaker = CircuitBreaker(CircuitBreakerSpec(window="count", size=20, min_calls=10, failure_rate=0.5))
    for t in range(9):
        breaker.record(breaker.allow(float(t)), float(t), True, 1.0)
    assert breaker.state == "closed"
    breaker.record(breaker.allow(9.0), 9.0, True, 1.0)
    assert breaker.state == "open"


def test_half_open_admits_exactly_the_permitted_probes():
    spec = CircuitBreakerSpec(window="count", size=4, min_calls=2, failure_rate=0.5, open_s=10, half_open_calls=3)
    breaker = CircuitBreaker(spec)
    for t in (0.0, 1.0):
        breaker.record(breaker.allow(t), t, True, 1.0)
    assert breaker.state == "open"
    assert breaker.allow(5.0) is None  # still open
    permits = [breaker.allow(11.0) for _ in range(5)]
    assert sum(p is not None for p in permits) == 3 and breaker.state == "half_open"
    for p in permits[:2]:
        breaker.record(p, 12.0, False, 1.0)
    assert breaker.state == "half_open"  # waits for all three
    breaker.record(permits[2], 12.5, True, 1.0)  # 1 of 3 failed < 50%: closes
    assert breaker.state == "closed"
    assert breaker.open_time_until(20.0) == 11.0 - 1.0


def test_slow_calls_open_it():
    spec = CircuitBreakerSpec(window="time", size=60, min_calls=3, failure_rate=1.0, slow_call_s=5.0, slow_call_rate=0.6)
    breaker = CircuitBreaker(spec)
    for t, duration in ((1.0, 6.0), (2.0, 1.0), (3.0, 7.0)):
        breaker.record(breaker.allow(t), t, False, duration)
    assert breaker.state == "open"
