"""What happens to one attempt once the router sends it: the provider's side.

``AttemptService.start`` decides, from the ground truth at that moment, how the
attempt ends and when, and schedules one event for it: a fault or an outage, a
context-window overflow, a 429 from a rate limit (with its retry-after), an
error draw, or an answer whose time to first token, speed and latency are the
pre-drawn variates of (request, model, attempt) — common random numbers, so the
same attempt ends the same way whichever policy sent it — slowed by a brownout,
and served at once or after a wait in the model's capacity queue. A request the
response cache answers ends its first attempt with the cached answer instead,
without reaching the provider. The router's
timeout (or what is left of the request's deadline) is the same event, earlier.

When the attempt ends the service calls back the router's ``on_end(attempt,
end)``; what the router does next (retry, fall back, hedge, finish) lives in
``core/router.py``. Scheduled events carry the attempt and ignore it once it is DONE.
"""

from __future__ import annotations

from typing import Callable

from sim.world.models import ModelTable
from .outcomes import (ATTEMPT_CANCELLED, ATTEMPT_CONTEXT_OVERFLOW, ATTEMPT_ERROR, ATTEMPT_OK, ATTEMPT_RATE_LIMITED,
                       ATTEMPT_TIMEOUT)
from sim.world.providers import Providers
from sim.compact import compact
from sim.rng import BLOCK_SIZE
from sim.scenario.schema.routing import ResponseCacheSpec
from sim.world.world import World

_BLOCK_SHIFT = BLOCK_SIZE.bit_length() - 1
assert 1 << _BLOCK_SHIFT == BLOCK_SIZE, "BLOCK_SIZE must be a power of two"
_BLOCK_MASK = BLOCK_SIZE - 1

QUEUED, SERVING, DONE = 0, 1, 2

Schedule = Callable[[float, Callable, object], None]


class Attempt:
    """One attempt of a request (``flight``) on model ``model``."""

    __slots__ = ("flight", "model", "number", "start", "timeout_at", "state", "outcome", "end", "service_s",
                 "service_start", "ttft", "speed", "accept", "generation", "holds_slot", "retry_after",
                 "cached")

    def __init__(self, flight, model: int, number: int, start: float, timeout_at: float, generation):
        self.flight = flight
        self.model = model
        self.number = number  # the request's attempt number
        self.start = self.end = self.service_start = start
        self.timeout_at = timeout_at
        self.state = SERVING
        self.outcome = ATTEMPT_OK
        self.service_s = self.retry_after = 0.0  # service_s: how long the provider takes, once serving
        self.ttft = self.speed = self.accept = None
        self.generation = generation  # the breaker's generation when admitted (stale outcomes are ignored)
        self.holds_slot = False
        self.cached = False  # answered from the response cache: no provider call, nothing to pay


class AttemptService:
    """The providers as one run's attempts meet them (faults, limits, capacity, latency)."""

    def __init__(self, world: World, catalog: ModelTable, providers: Providers, schedule: Schedule,
                 on_end: Callable[[Attempt, float], None], response_cache: ResponseCacheSpec | None = None):
        self.world = world
        self.schedule = schedule
        self.on_end = on_end
        self.providers = providers
        trace = world.trace
        self._input, self._output = compact(trace.input_tokens), compact(trace.output_tokens)
        self._context = catalog.context_window
        self._n_models = len(catalog.names)
        self._n_attempts = world.n_attempts
        self._faults = world.faults
        self._fail_fast_s = catalog.fail_fast_s
        self._error_rate = catalog.error_rate
        self._limited = [bool(limits) for limits in providers.limits]
        self._capacity = providers.capacity
        self._block_number, self._block = -1, None
        self._cache_latency_s = None if response_cache is None else response_cache.latency_s
        self._cache_hits = None if response_cache is None else world.cache_hits(response_cache.hit_share).tolist()

    # ------------------------------------------------------------------ the variates
    def variates(self, i: int):
        """The pre-drawn variates of request i's block; arrivals advance block by block,
        so the current one is kept at hand."""
        b = i >> _BLOCK_SHIFT
        if b != self._block_number:
            self._block, self._block_number = self.world.block(b), b
        return self._block

    def judge_u(self, i: int, m: int, k: int) -> float:
        """The uniform behind the judge's verdict on request i's k-th attempt on model m."""
        return self.variates(i).judge_u[((i & _BLOCK_MASK) * self._n_models + m) * self._n_attempts + k]

    def retry_u(self, i: int, n: int) -> float:
        """The uniform behind the jitter of request i's n-th retry."""
        return self.variates(i).retry_u[(i & _BLOCK_MASK) * self._n_attempts + n]

    # ------------------------------------------------------------------ an attempt's life
    def start(self, a: Attempt, i: int, k: int, now: float) -> None:
        """Decide how attempt ``a`` (request i's k-th on its model) ends, and schedule it."""
        m = a.model
        if self._cache_hits is not None and a.number == 0 and self._cache_hits[i]:
            return self._from_cache(a, i, k, now)
        if self._faults[m]:  # most models have no fault at all: skip the look-up
            down, error_rate, latency_x, limited_rate = self.world.state(m, now)
        else:
            down, error_rate, latency_x, limited_rate = False, self._error_rate[m], 1.0, 0.0
        if down:
            return self._fail_fast(a, ATTEMPT_ERROR, now)
        tokens = self._input[i] + self._output[i]
        if tokens > self._context[m]:
            return self._fail_fast(a, ATTEMPT_CONTEXT_OVERFLOW, now)
        if self._limited[m]:
            a.retry_after = self.providers.admit(m, now, tokens)
            if a.retry_after > 0.0:
                return self._fail_fast(a, ATTEMPT_RATE_LIMITED, now)
        block = self.variates(i)
        at = ((i & _BLOCK_MASK) * self._n_models + m) * self._n_attempts + k
        error_u = block.error_u[at]
        if error_u < error_rate:  # below the 429 rate a rate-limit storm's 429, above it an error
            return self._fail_fast(a, ATTEMPT_RATE_LIMITED if error_u < limited_rate else ATTEMPT_ERROR, now)
        a.ttft, a.speed = block.ttft_s[at], block.tokens_per_s[at]
        a.accept, a.service_s = block.accept[at], block.latency_s[at]
        if latency_x != 1.0:  # a brownout or spike slows the whole answer down
            a.ttft, a.speed, a.service_s = a.ttft * latency_x, a.speed / latency_x, a.service_s * latency_x
        capacity = self._capacity[m]
        if capacity is None:  # the common case, inlined from _serve
            a.end = now + a.service_s
            if a.end > a.timeout_at:  # the router stops waiting
                a.outcome, a.end = ATTEMPT_TIMEOUT, a.timeout_at
            self.schedule(a.end - now, self._on_attempt_end, a)
            return
        if capacity.busy < capacity.concurrency:
            capacity.busy += 1
            a.holds_slot = True
            return self._serve(a, now)
        a.state = QUEUED
        capacity.queue.append(a)
        give_up = a.timeout_at
        if capacity.queue_timeout_s is not None and now + capacity.queue_timeout_s < give_up:
            give_up = now + capacity.queue_timeout_s
        a.end = give_up
        self.schedule(give_up - now, self._on_queue_timeout, a)

    def _fail_fast(self, a: Attempt, outcome: int, now: float) -> None:
        a.outcome = outcome
        delay = self._fail_fast_s[a.model]
        if now + delay > a.timeout_at:
            a.outcome, delay = ATTEMPT_TIMEOUT, a.timeout_at - now
        a.end = now + delay
        self.schedule(delay, self._on_attempt_end, a)

    def _serve(self, a: Attempt, now: float) -> None:
        """The provider starts on the answer; it ends with it or with the router's timeout."""
        a.state = SERVING
        a.service_start = now
        a.end = now + a.service_s
        if a.end > a.timeout_at:  # the router stops waiting
            a.outcome, a.end = ATTEMPT_TIMEOUT, a.timeout_at
        self.schedule(a.end - now, self._on_attempt_end, a)

    def _on_queue_timeout(self, a: Attempt) -> None:
        if a.state != QUEUED:
            return  # it left the queue in time: a stale timer
        # Still waiting: the router's timeout, or else the provider's queue timeout (an error).
        a.outcome = ATTEMPT_TIMEOUT if a.end >= a.timeout_at else ATTEMPT_ERROR
        a.service_start = a.end  # never served (stays in the deque, skipped when it comes up)
        self.on_end(a, a.end)

    def _from_cache(self, a: Attempt, i: int, k: int, now: float) -> None:
        """The cached answer: the group's earlier answer to this request, so as good as this
        deployment's (its acceptability draw), back after the cache's look-up."""
        block = self.variates(i)
        a.accept = block.accept[((i & _BLOCK_MASK) * self._n_models + a.model) * self._n_attempts + k]
        a.cached, a.ttft, a.speed = True, self._cache_latency_s, float("inf")
        a.service_s = self._cache_latency_s
        a.end = now + a.service_s
        self.schedule(a.service_s, self._on_attempt_end, a)

    def _on_attempt_end(self, a: Attempt) -> None:
        if a.state == DONE:
            return  # cancelled: a stale timer
        self.on_end(a, a.end)

    def cancel(self, a: Attempt, now: float) -> None:
        """The router gives up on ``a`` (a hedge lost the race); it ends now."""
        a.outcome = ATTEMPT_CANCELLED
        if a.state == QUEUED:
            a.service_start = now  # it waited until now and was never served

    def release(self, a: Attempt, now: float) -> None:
        """``a`` ended holding a serving slot: it frees it, and the next queued attempt starts."""
        capacity = self._capacity[a.model]
        capacity.busy -= 1
        queue = capacity.queue
        while queue:
            waiting = queue.popleft()
            if waiting.state == QUEUED:
                capacity.busy += 1
                waiting.holds_slot = True
                self._serve(waiting, now)
                return
