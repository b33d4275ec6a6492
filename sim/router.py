"""Carries out a policy's decision: attempts, fallbacks, timeouts, and the
router's own observations that policies see through ``RouterView``.

The router knows nothing of simpy: the engine gives it ``schedule(delay,
callback, token)`` and calls ``on_arrival(i)`` for each request. Attempts are
decided when they start: the world's ground truth (outage, error draw, latency)
at that moment fixes how the attempt ends and when, so one scheduled event per
attempt suffices; a per-attempt timeout is the same event, earlier.

Semantics (DESIGN.md):
- candidates are tried in order; a failed attempt (error, outage, context
  overflow, timeout) moves on to the next candidate, up to ``max_attempts``; the
  same model is not tried twice for one request;
- a policy that raises or returns nothing usable is a policy error: the request
  goes to ``router.default_model`` alone, or is rejected when there is none;
- an attempt is charged at the price in force when it started; a timed-out one
  as ``router.abandoned_charge`` says.
"""

from __future__ import annotations

from time import thread_time_ns
from types import MappingProxyType
from typing import Callable

from .catalog import Catalog
from .metrics import (ATTEMPT_CONTEXT_OVERFLOW, ATTEMPT_ERROR, ATTEMPT_OK, ATTEMPT_TIMEOUT, REQUEST_FAILED,
                      REQUEST_OK, REQUEST_REJECTED, OUTCOME_NAMES, STATUS_NAMES, RunRecorder)
from .policies.base import BasePolicy, ModelStatus, Outcome, Request, RouterView
from .rng import BLOCK_SIZE
from .scenario import RouterSpec
from .world import World

EWMA_ALPHA = 0.1  # weight of the newest observation in the router's moving averages
_BLOCK_SHIFT = BLOCK_SIZE.bit_length() - 1
assert 1 << _BLOCK_SHIFT == BLOCK_SIZE, "BLOCK_SIZE must be a power of two"
_BLOCK_MASK = BLOCK_SIZE - 1

Schedule = Callable[[float, Callable, object], None]


class _Flight:
    """One request in progress."""

    __slots__ = ("i", "request", "candidates", "next", "attempts", "tries", "cost", "carbon")

    def __init__(self, i: int, request: Request, candidates: tuple[int, ...]):
        self.i = i
        self.request = request
        self.candidates = candidates
        self.next = 0  # position of the next candidate to try
        self.attempts = 0
        self.tries: dict[int, int] = {}  # model -> attempts made on it (indexes the variates)
        self.cost = 0.0
        self.carbon = 0.0


class Router:
    def __init__(self, policy, world: World, catalog: Catalog, spec: RouterSpec, schedule: Schedule,
                 recorder: RunRecorder, difficulty_estimate=None):
        self.policy = policy
        self.world = world
        self.spec = spec
        self.schedule = schedule
        self.rec = recorder
        trace = world.trace
        # Plain lists: indexing them is several times faster than numpy scalars.
        self._arrival = trace.arrival_s.tolist()
        self._input = trace.input_tokens.tolist()
        self._output = trace.output_tokens.tolist()
        self._request_id = trace.request_id.tolist()
        self._workload = trace.workload_names().tolist()
        self._estimate = None if difficulty_estimate is None else difficulty_estimate.tolist()
        self._names = catalog.names
        self._index = catalog.index
        self._positions = MappingProxyType(dict(self._index))  # shared by every view: never changes
        self._context = catalog.context_window
        self._n_models = len(catalog.names)
        self._n_attempts = world.n_attempts
        self._faults = world.faults
        self._block_number, self._block = -1, None
        self._fail_fast = catalog.fail_fast_s
        self._error_rate = catalog.error_rate
        self._carbon = [c or 0.0 for c in catalog.carbon_g_per_mtok]
        self._default = None if spec.default_model is None else self._index[spec.default_model]
        self._observe = self._observer(policy)
        self._candidate_cache: dict[tuple, tuple[int, ...]] = {}
        # The router's observations, per model.
        n = len(catalog.names)
        self._calls = [0] * n
        self._failures = [0] * n
        self._in_flight = [0] * n
        self._latency = [None] * n
        self._ttft = [None] * n
        self._speed = [None] * n
        self._error_ewma = [0.0] * n
        self._consecutive = [0] * n
        self._last_failure = [None] * n
        self._unhealthy_until = [0.0] * n
        # Published facts that do not change, as the head of every ModelStatus.
        self._static = [(catalog.names[m], catalog.providers[m]) for m in range(n)]
        self._priors = [(catalog.context_window[m], catalog.quality_prior[m], catalog.ttft_median_s[m],
                         catalog.tps_median[m], catalog.carbon_g_per_mtok[m]) for m in range(n)]
        self._statuses: list[ModelStatus] = [None] * n  # type: ignore[list-item]
        self._dirty = set(range(n))
        self._view: RouterView | None = None
        self._price_changes = list(world.price_change_times)
        self._next_refresh = self._price_changes[0] if self._price_changes else float("inf")

    @staticmethod
    def _observer(policy):
        observe = getattr(policy, "observe", None)
        if observe is None:
            return None
        # Skip the call entirely when the policy keeps the base class's no-op.
        if getattr(type(policy), "observe", None) is BasePolicy.observe:
            return None
        return observe

    # ------------------------------------------------------------------ view
    def view(self, now: float) -> RouterView:
        """A snapshot of what the router knows; rebuilt only where something changed."""
        if now >= self._next_refresh:
            self._refresh(now)
        if self._dirty or self._view is None:
            statuses = self._statuses
            for m in self._dirty:
                statuses[m] = self._status(m, now)
            self._dirty.clear()
            models = tuple(statuses)
            self._view = RouterView(now, models, self._positions)
            return self._view
        return self._view._replace(now_s=now)

    def _refresh(self, now: float) -> None:
        """Prices changed or a cooldown ended: rebuild every status."""
        self._dirty.update(range(len(self._names)))
        while self._price_changes and self._price_changes[0] <= now:
            self._price_changes.pop(0)
        pending = [u for u in self._unhealthy_until if u > now] + self._price_changes[:1]
        self._next_refresh = min(pending) if pending else float("inf")

    def _status(self, m: int, now: float) -> ModelStatus:
        price_in, price_out = self.world.price(m, now)
        context, prior, ttft, tps, carbon = self._priors[m]
        name, provider = self._static[m]
        return ModelStatus(name, provider, price_in, price_out, context, prior, ttft, tps, carbon,
                           self._calls[m], self._failures[m], self._in_flight[m], self._latency[m],
                           self._ttft[m], self._speed[m], self._error_ewma[m], self._consecutive[m],
                           self._last_failure[m], now >= self._unhealthy_until[m])

    # ------------------------------------------------------------------ requests
    def on_arrival(self, i: int) -> None:
        now = self._arrival[i]
        request = Request(self._request_id[i], now, self._workload[i], self._input[i],
                          None if self._estimate is None else self._estimate[i])
        view = self.view(now)
        error = None
        start = thread_time_ns()
        try:
            decision = self.policy.route(request, view)
        except Exception as exc:  # a policy bug must not stop the run
            decision = None
            error = f"{type(exc).__name__}: {exc}"
        decision_us = (thread_time_ns() - start) / 1000.0
        candidates = None
        if error is None:
            candidates, error = self._candidates(decision)
        if error is not None:
            candidates = () if self._default is None else (self._default,)
        self.rec.decision(i, decision_us, None if decision is None else getattr(decision, "reason", None),
                          error, candidates)
        flight = _Flight(i, request, candidates)
        if not candidates:
            self._finish(flight, REQUEST_REJECTED, now, None, None)
            return
        self._start_attempt(flight, now)

    def _candidates(self, decision) -> tuple[tuple[int, ...] | None, str | None]:
        """Model numbers for the decision's candidates, or a policy-error message."""
        names = getattr(decision, "candidates", None)
        if names is None:
            return None, f"route() returned {type(decision).__name__}, not a Decision"
        cached = self._candidate_cache.get(names) if type(names) is tuple else None
        if cached is not None:
            return cached, None
        if isinstance(names, str):
            return None, "Decision.candidates is a string; give a tuple of model names"
        try:
            names = tuple(names)
            unknown = [n for n in names if n not in self._index]
        except TypeError as exc:  # not iterable, or items that cannot be model names
            return None, f"Decision.candidates is not a sequence of model names ({exc})"
        if unknown:
            return None, f"unknown model(s) {', '.join(map(str, unknown))}"
        if not names:
            return None, "no candidates"
        resolved = tuple(dict.fromkeys(self._index[n] for n in names))
        self._candidate_cache[names] = resolved
        return resolved, None

    def _start_attempt(self, f: _Flight, now: float) -> None:
        m = f.candidates[f.next]
        f.next += 1
        k = f.tries.get(m, 0)
        f.tries[m] = k + 1
        attempt = f.attempts
        f.attempts = attempt + 1
        self._in_flight[m] += 1
        self._dirty.add(m)
        i = f.i
        ttft = speed = accept = None
        if self._faults[m]:  # most models have no fault at all: skip the look-up
            down, error_rate, latency_x = self.world.state(m, now)
        else:
            down, error_rate, latency_x = False, self._error_rate[m], 1.0
        if down:
            outcome, duration = ATTEMPT_ERROR, self._fail_fast[m]
        elif self._input[i] + self._output[i] > self._context[m]:
            outcome, duration = ATTEMPT_CONTEXT_OVERFLOW, self._fail_fast[m]
        else:
            b = i >> _BLOCK_SHIFT
            if b != self._block_number:  # arrivals advance block by block: keep the current one at hand
                self._block, self._block_number = self.world.block(b), b
            block = self._block
            at = ((i & _BLOCK_MASK) * self._n_models + m) * self._n_attempts + k
            if block.error_u.item(at) < error_rate:
                outcome, duration = ATTEMPT_ERROR, self._fail_fast[m]
            else:
                ttft, speed = block.ttft_s.item(at), block.tokens_per_s.item(at)
                accept, duration = block.accept.item(at), block.latency_s.item(at)
                if latency_x != 1.0:  # a brownout or spike slows the whole answer down
                    ttft, speed, duration = ttft * latency_x, speed / latency_x, duration * latency_x
                if duration > self.spec.timeout_s:
                    outcome, duration = ATTEMPT_TIMEOUT, self.spec.timeout_s
                else:
                    outcome = ATTEMPT_OK
        self.schedule(duration, self._on_attempt_end, (f, m, attempt, outcome, now, duration, ttft, speed, accept))

    def _on_attempt_end(self, token) -> None:
        f, m, attempt, outcome, start, duration, ttft, speed, accept = token
        end = start + duration
        i = f.i
        cost = 0.0
        if outcome == ATTEMPT_OK or (outcome == ATTEMPT_TIMEOUT and self.spec.abandoned_charge != "none"):
            charged_output = self._output[i] if outcome == ATTEMPT_OK else self._abandoned_output(i, ttft, speed, duration)
            price_in, price_out = self.world.price(m, start)
            cost = (self._input[i] * price_in + charged_output * price_out) / 1e6
            f.carbon += (self._input[i] + charged_output) * self._carbon[m] / 1e6
        f.cost += cost
        self.rec.attempt(i, attempt, m, start, end, outcome, cost)
        self._observe_attempt(m, outcome, duration, end, ttft, self._output[i])
        if outcome == ATTEMPT_OK:
            self._finish(f, REQUEST_OK, end, m, (start - f.request.arrival_s + ttft, accept))
        elif f.next < len(f.candidates) and f.attempts < self.spec.max_attempts:
            self._start_attempt(f, end)
        else:
            self._finish(f, REQUEST_FAILED, end, None, None)

    def _abandoned_output(self, i: int, ttft: float, speed: float, waited_s: float) -> float:
        if self.spec.abandoned_charge == "full":
            return float(self._output[i])
        # 'generated': the tokens streamed before the router gave up.
        return min(float(self._output[i]), max(0.0, (waited_s - ttft) * speed))

    def _observe_attempt(self, m: int, outcome: int, duration: float, end: float, ttft, output_tokens: int) -> None:
        self._in_flight[m] -= 1
        self._calls[m] += 1
        self._dirty.add(m)
        if outcome == ATTEMPT_OK:
            self._latency[m] = _ewma(self._latency[m], duration)
            self._ttft[m] = _ewma(self._ttft[m], ttft)
            if output_tokens > 0 and duration > ttft:
                self._speed[m] = _ewma(self._speed[m], output_tokens / (duration - ttft))
            self._error_ewma[m] *= 1.0 - EWMA_ALPHA
            self._consecutive[m] = 0
        elif outcome != ATTEMPT_CONTEXT_OVERFLOW:  # an oversized request says nothing about the model
            self._failures[m] += 1
            self._error_ewma[m] += EWMA_ALPHA * (1.0 - self._error_ewma[m])
            self._consecutive[m] += 1
            self._last_failure[m] = end
            if self._consecutive[m] >= self.spec.health.consecutive_failures:
                until = end + self.spec.health.cooldown_s
                self._unhealthy_until[m] = until
                if until < self._next_refresh:
                    self._next_refresh = until

    def _finish(self, f: _Flight, status: int, end: float, model: int | None, served) -> None:
        i = f.i
        request = f.request
        latency = end - request.arrival_s
        if served is not None:
            ttft, quality = served
        else:
            ttft, quality = None, 0.0
        fallback = f.attempts > 1
        self.rec.request(i, status, -1 if model is None else model, f.attempts, latency, ttft, f.cost, quality,
                         f.carbon, fallback)
        if self._observe is not None:
            outcome = Outcome(request.request_id, STATUS_NAMES[status], None if model is None else self._names[model],
                              f.attempts, latency, ttft, f.cost, request.input_tokens,
                              self._output[i] if status == REQUEST_OK else 0,
                              quality if status == REQUEST_OK else None)
            try:
                self._observe(request, outcome)
            except Exception as exc:  # feedback errors are policy errors too, not run failures
                self.rec.observe_error(i, f"{type(exc).__name__}: {exc}")


def _ewma(previous: float | None, value: float) -> float:
    return value if previous is None else previous + EWMA_ALPHA * (value - previous)


__all__ = ["Router", "OUTCOME_NAMES"]
