"""What the router does next: it asks the policy, then carries out the decision
(which candidate to try, retries, fallbacks, hedges, timeouts and deadlines)
behind its defences (breaker, cooldown, retry budget), and reports each
request's end to the recorder and to the policy's ``observe``, and later the
verdicts of the scenario's feedback channels on its answers.

The policy is given only what its router knows (``world/beliefs.py``): the believed
quality of each model, the request's noisy difficulty signal, and feedback as
its channel delivers it. The world (``world/world.py``) stays on this side.

What happens to an attempt once sent is ``core/attempts.py`` (the provider's side:
faults, limits, capacity, latency), what it costs is ``core/billing.py``. The router
knows nothing of simpy: the engine gives it ``schedule(delay, callback, token)``
and calls ``on_arrival(i)`` for each request.

Semantics:
- candidates are tried in order; a failed attempt moves on to the next
  candidate, up to ``max_attempts`` in all; a model is tried again only as a
  retry (``router.retry``: listed outcomes, ``per_model`` times, after a backoff
  with jitter, within the retry budget);
- a context-window overflow is never retried on that model; the model's
  ``context_window_fallbacks`` are tried next;
- each attempt gets ``min(timeout_s, what is left of deadline_s)``; a retry
  whose backoff would end past the deadline is not made;
- a candidate behind an open breaker, or cooling down while the request has
  another candidate, is skipped without an attempt; a request that made no
  attempt at all is ``rejected``;
- a policy that raises or returns nothing usable is a policy error: the request
  goes to ``router.default_model`` alone, or is rejected when there is none;
- an attempt is charged as ``core/billing.py`` says (the price in force when it
  started; an abandoned one as ``router.abandoned_charge`` says);
- a decision with a ``judge`` is a cascade: an answer that a later stage could
  still replace is judged (its verdict drawn from the JUDGE stream with the
  judge's error rates, its cost and latency added to the request); a rejected
  answer is escalated to the next candidate and kept, to be returned if no
  later stage answers.
"""

from __future__ import annotations

import math
from time import perf_counter_ns, thread_time_ns
from typing import Callable

from .attempts import DONE, Attempt, AttemptService
from sim.world.beliefs import RouterBeliefs
from .billing import Billing
from sim.world.models import ModelTable
from sim.compact import compact
from .defences import RetryBudget, backoff_s
from sim.world.feedback import verdict
from .outcomes import (ATTEMPT_CANCELLED, ATTEMPT_CONTEXT_OVERFLOW, ATTEMPT_OK, OUTCOME_NAMES, REQUEST_FAILED,
                       REQUEST_OK, REQUEST_REJECTED, STATUS_NAMES)
from .recorder import CPU_SAMPLE, RunRecorder
from .observed import Observations
from sim.policies.base import (ANSWER_FEEDBACK, LOGGED_ROUTING, POLICY_FAILURES, Decision, Feedback, Judge, Outcome,
                               Request, candidate_names, knowledge_read_by, observer_of)
from sim.world.providers import Providers
from sim.scenario.schema.routing import RouterSpec
from sim.world.world import World

INF = float("inf")
_tuple_new = tuple.__new__  # builds a NamedTuple from its fields in order, a third faster than calling it
_NOTHING_CHECKED = object()  # never a policy's decision (a raising policy's is None)
ID_BLOCK = 1 << 14  # request ids held as Python strings at a time

Schedule = Callable[[float, Callable, object], None]


class _Flight:
    """One request in progress."""

    __slots__ = ("i", "request", "candidates", "next", "attempts", "tries", "cost", "carbon", "deadline",
                 "retries", "last_backoff", "holds_retry", "running", "hedges", "done", "judge", "kept",
                 "escalated", "sequence")

    def __init__(self, i: int, request: Request, candidates: tuple[int, ...], deadline: float, judge: Judge | None):
        self.i = i
        self.request = request
        self.candidates = candidates
        self.next = 0  # position of the next candidate to try
        self.attempts = 0
        self.tries: dict[int, int] = {}  # model -> attempts made on it (indexes the variates)
        self.sequence: list[int] | None = None  # the models attempted, in order (kept only for re-decisions)
        self.cost = 0.0
        self.carbon = 0.0
        self.deadline = deadline  # absolute time
        self.retries = 0
        self.last_backoff: float | None = None
        self.holds_retry = False  # a retry of this request counts against the budget
        self.running: list[Attempt] = []  # more than one only while hedging
        self.hedges = 0
        self.done = False
        self.judge = judge  # a cascade's judge, or None
        self.kept: tuple[int, float] | None = None  # (model, accept) of the last answer the judge rejected
        self.escalated = False


class Router:
    def __init__(self, policy, world: World, catalog: ModelTable, spec: RouterSpec, schedule: Schedule,
                 recorder: RunRecorder, providers: Providers, beliefs: RouterBeliefs, decision_latency=None):
        self.policy = policy
        self.world = world
        self.spec = spec
        self.schedule = schedule
        self.rec = recorder
        self.known = Observations(catalog, spec, world.prices, world.launch_at, beliefs.quality)
        self.service = AttemptService(world, catalog, providers, schedule, self._complete, spec.response_cache)
        trace = world.trace
        # array.array views of the trace: indexing one is several times faster than a numpy
        # scalar, and it holds 8 bytes a value where a list holds a 32-byte object.
        self._arrival = self.arrival_s = compact(trace.arrival_s)
        self._input = compact(trace.input_tokens)
        self._output = compact(trace.output_tokens)
        self.billing = Billing(world, catalog, spec.abandoned_charge, self._input, self._output)
        # Request ids become Python strings a block at a time: a million at once would take 90 MB.
        self._ids = trace.request_id
        self._ids_from, self._ids_block = 0, self._ids[:ID_BLOCK].tolist()
        self._workload_code = compact(trace.workload)
        self._workload_names = list(trace.workloads)
        estimate = beliefs.difficulty_estimate
        self._estimate = None if estimate is None else compact(estimate)
        # The request's routing tags, as its client sent them (a production router reads them too).
        self._tag_code = None if trace.tags is None else compact(trace.tags)
        self._tag_sets = trace.tag_sets
        # Production's logged route, for a policy that replays it (and only for one that says so).
        replays = LOGGED_ROUTING in knowledge_read_by(policy) and trace.logged_route is not None
        self._route_code = compact(trace.logged_route) if replays else None
        self._route_lists = trace.logged_routes
        self._decision_latency = decision_latency  # per request, seconds before the first attempt (or None)
        self._names = catalog.names
        self._index = catalog.index
        self._default = None if spec.default_model is None else self._index[spec.default_model]
        self._context_fallbacks = {self._index[m]: [self._index[f] for f in fs]
                                   for m, fs in spec.context_window_fallbacks.items()}
        self._retry = spec.retry
        self._reroute = spec.retry is not None and spec.retry.reroute
        self._retry_on = set() if spec.retry is None else {OUTCOME_NAMES.index(o) for o in spec.retry.on_outcomes}
        self.budget = None if spec.retry is None or spec.retry.budget is None else RetryBudget(spec.retry)
        self._guarded = spec.circuit_breaker is not None or spec.cooldown is not None
        self._launching = any(t > 0 for t in world.launch_at)
        self._hedge = spec.hedge
        self._timeout_s = spec.timeout_s
        self._deadline_s = INF if spec.deadline_s is None else spec.deadline_s
        self._max_attempts = spec.max_attempts
        self._observe = observer_of(policy)
        # Feedback on answers goes only to a policy that observes and reads it.
        wants_feedback = self._observe is not None and ANSWER_FEEDBACK in knowledge_read_by(policy)
        self._feedback = beliefs.feedback if wants_feedback else []
        self._candidate_cache: dict[tuple, tuple[int, ...]] = {}
        # The last decision checked without a judge, score or error, and its candidates: a policy
        # that returns the same immutable Decision object every time (static) is checked once.
        self._last_decision: object = _NOTHING_CHECKED
        self._last_checked: tuple = ((), None)

    @property
    def feedback_delay_s(self) -> float | None:
        """The longest a verdict on an answer may reach the policy after the request ended
        (None: no verdict ever does)."""
        return max((channel.delay_s for channel in self._feedback), default=None)

    # ------------------------------------------------------------------ decisions
    def on_arrival(self, i: int) -> None:
        now = self._arrival[i]
        k = i - self._ids_from
        if k >= ID_BLOCK:  # arrivals come in request order: the next block
            self._ids_from, k = i, 0
            self._ids_block = self._ids[i:i + ID_BLOCK].tolist()
        workload = self._workload_names[self._workload_code[i]]
        request = _tuple_new(Request, (self._ids_block[k], now, workload, self._input[i],
                                       None if self._estimate is None else self._estimate[i], (),
                                       () if self._tag_code is None else self._tag_sets[self._tag_code[i]],
                                       () if self._route_code is None else self._route_lists[self._route_code[i]]))
        view = self.known.view(now)
        error = None
        # Wall-clock time is what a request waits for (a policy that sleeps or calls a
        # classifier spends little CPU); the CPU time is kept beside it for one request in
        # CPU_SAMPLE: the thread's CPU clock is a system call (0.4 µs, twice per request).
        sample_cpu = not i % CPU_SAMPLE
        start_cpu = thread_time_ns() if sample_cpu else 0
        start = perf_counter_ns()
        try:
            decision = self.policy.route(request, view)
        except POLICY_FAILURES as exc:  # a policy bug must not stop the run
            decision = None
            error = f"{type(exc).__name__}: {exc}"
        decision_us = (perf_counter_ns() - start) / 1000.0
        rec = self.rec
        if sample_cpu:
            rec.d_cpu_us[i // CPU_SAMPLE] = (thread_time_ns() - start_cpu) / 1000.0
        if decision is self._last_decision and error is None:  # a policy that returns one Decision object: checked once
            candidates, judge = self._last_checked
        else:
            candidates, judge, score, error = self._check(decision, error)
            if error is not None:
                rec.policy_error(i, error)
            elif score == score:  # not NaN: most policies give no score
                rec.score(i, score)
            elif judge is None and type(decision) is Decision and type(decision.candidates) is tuple:
                self._last_decision, self._last_checked = decision, (candidates, judge)
        rec.decision(decision_us, decision.reason if type(decision) is Decision else _reason_of(decision), candidates)
        flight = _Flight(i, request, candidates, now + self._deadline_s, judge)
        if self.budget is not None:
            self.budget.active_requests += 1
        if self._decision_latency is not None and self._decision_latency[i] > 0.0:
            delay = self._decision_latency[i]  # the modelled classifier call: the first attempt waits for it
            self.schedule(delay, self._after_decision, (flight, now + delay))
        else:
            self._next_candidate(flight, now)

    def _check(self, decision, error: str | None) -> tuple[tuple[int, ...], Judge | None, float, str | None]:
        """(candidates, judge, score, policy error) of a decision; a policy error sends the
        request to the router's default model alone (or rejects it when there is none)."""
        candidates = judge = None
        score = math.nan
        try:  # a decision of the policy's own type may raise on any field read
            if error is None:
                candidates, error = self._candidates(decision)
            if error is None:
                judge, error = self._judge(decision)
            if error is None and getattr(decision, "score", None) is not None:
                score, error = self._score(decision.score)
        except POLICY_FAILURES as exc:
            error = f"the decision could not be read ({type(exc).__name__}: {exc})"
        if error is not None:
            candidates, judge, score = () if self._default is None else (self._default,), None, math.nan
        return candidates, judge, score, error

    def _after_decision(self, token) -> None:
        flight, now = token
        self._next_candidate(flight, now)

    def _candidates(self, decision) -> tuple[tuple[int, ...] | None, str | None]:
        """Model numbers for the decision's candidates, or a policy-error message."""
        names = decision.candidates if type(decision) is Decision else None
        try:
            cached = self._candidate_cache.get(names) if type(names) is tuple else None
        except TypeError:  # a tuple holding something unhashable: checked below
            cached = None
        if cached is not None:
            return cached, None
        names, error = candidate_names(decision)
        if error is not None:
            return None, error
        unknown = [n for n in names if n not in self._index]
        if unknown:
            return None, f"unknown model(s) {', '.join(map(str, unknown))}"
        if not names:
            return (), None  # nowhere to send it: the request is rejected (LiteLLM: no deployment available)
        resolved = tuple(dict.fromkeys(self._index[n] for n in names))
        self._candidate_cache[names] = resolved
        return resolved, None

    @staticmethod
    def _judge(decision) -> tuple[Judge | None, str | None]:
        """The decision's cascade judge (or None), or a policy-error message."""
        judge = getattr(decision, "judge", None)
        if judge is None or isinstance(judge, Judge) and 0 <= judge.accept_good <= 1 and 0 <= judge.reject_bad <= 1 \
                and judge.cost_usd >= 0 and judge.latency_s >= 0:
            return judge, None
        return None, f"Decision.judge must be a Judge with rates in [0, 1] and no negative cost or latency, not {judge!r}"

    @staticmethod
    def _score(score) -> tuple[float, str | None]:
        """A decision's score as a float, or a policy-error message."""
        if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
            return float(score), None
        return math.nan, f"Decision.score must be a finite number or None, not {score!r}"

    # ------------------------------------------------------------------ attempts
    def _next_candidate(self, f: _Flight, now: float, hedging: bool = False) -> None:
        """Start an attempt on the next admissible candidate, or end the request
        (a hedge that finds no candidate just does nothing)."""
        candidates = f.candidates
        max_attempts = self._max_attempts
        while f.next < len(candidates) and f.attempts < max_attempts and now < f.deadline:
            m = candidates[f.next]
            f.next += 1
            if m in f.tries and not self._reroute:
                continue  # already tried (a context-window fallback may repeat one)
            if self._launching and not self.known.launched(m, now):
                continue  # not available yet: the provider would answer 404

            generation = None
            if self._guarded:
                admitted, generation = self.known.admit(m, now, f.next < len(candidates))
                if not admitted:
                    continue
            self._start_attempt(f, m, now, generation)
            return
        if hedging:
            return
        if f.kept is not None:  # a cascade keeps the answer its judge rejected when nothing better came
            m, accept = f.kept
            self._finish(f, REQUEST_OK, now, m, (now - f.request.arrival_s, accept))
        else:
            self._finish(f, REQUEST_FAILED if f.attempts else REQUEST_REJECTED, now, None, None)

    def _start_attempt(self, f: _Flight, m: int, now: float, generation: int | None) -> None:
        k = f.tries.get(m, 0)
        f.tries[m] = k + 1
        if self._reroute:  # only a re-decision reads the order of the attempts
            if f.sequence is None:
                f.sequence = []
            f.sequence.append(m)
        timeout_at = now + self._timeout_s
        if f.deadline < timeout_at:
            timeout_at = f.deadline  # only what is left of the request's deadline
        a = Attempt(f, m, f.attempts, now, timeout_at, generation)
        f.attempts += 1
        f.running.append(a)
        self.known.started(m)
        if self._hedge is not None and f.hedges < self._hedge.max_hedges:
            delay = self._hedge_delay(m)
            if delay is not None:
                self.schedule(delay, self._on_hedge, (a, now + delay))
        self.service.start(a, f.i, k, now)

    def _complete(self, a: Attempt, end: float) -> None:
        """Attempt ``a`` ended (the service calls this): bill it, tell the breaker, decide what next."""
        f, m, i = a.flight, a.model, a.flight.i
        if a.holds_slot:
            self.service.release(a, end)
        a.state = DONE  # timers still pending for it are stale from now on
        f.running.remove(a)
        outcome = a.outcome
        verdict = None
        if (outcome == ATTEMPT_OK and f.judge is not None and f.next < len(f.candidates)
                and f.attempts < self._max_attempts):
            verdict = self._verdict(f, a)  # a later stage could still answer: judge this one
        cost, carbon = self.billing.charge(a, i, end)
        f.carbon += carbon
        f.cost += cost
        self.rec.attempt(i, a.number, m, a.start, end, outcome, cost, a.service_start - a.start,
                         -1 if verdict is None else verdict, 0.0 if verdict is None else f.judge.cost_usd)
        self.known.finished(m, outcome, end - a.start, end, a.ttft, self._output[i], a.generation)
        if outcome == ATTEMPT_CANCELLED:
            return
        if f.holds_retry:
            self.budget.release()
            f.holds_retry = False
        if outcome == ATTEMPT_OK:
            if f.running:  # a hedge lost the race
                for other in list(f.running):
                    self.service.cancel(other, end)
                    self._complete(other, end)
            if verdict is None:
                self._finish(f, REQUEST_OK, end, m, (a.service_start - f.request.arrival_s + a.ttft, a.accept))
            elif f.judge.latency_s > 0.0:
                self.schedule(f.judge.latency_s, self._on_verdict, (a, verdict, end + f.judge.latency_s))
            else:
                self._on_verdict((a, verdict, end))
        elif not f.running:  # another attempt (a hedge) may still answer
            self._after_failure(f, a, end)

    def _verdict(self, f: _Flight, a: Attempt) -> int:
        """The judge's verdict on an answer (1 accepts, 0 rejects); it costs what the judge costs."""
        u = self.service.judge_u(f.i, a.model, f.tries[a.model] - 1)
        f.cost += f.judge.cost_usd
        return int(u < f.judge.accept_good) if a.accept else int(u >= f.judge.reject_bad)

    def _on_verdict(self, token) -> None:
        a, verdict, now = token
        f = a.flight
        if verdict:  # the user could not see a token before the verdict: time to first token is all of it
            self._finish(f, REQUEST_OK, now, a.model, (now - f.request.arrival_s, a.accept))
            return
        f.kept, f.escalated = (a.model, a.accept), True
        self._next_candidate(f, now)

    # ------------------------------------------------------------------ after a failure
    def _after_failure(self, f: _Flight, a: Attempt, now: float) -> None:
        m, outcome = a.model, a.outcome
        if outcome == ATTEMPT_CONTEXT_OVERFLOW:
            extra = self._context_fallbacks.get(m)
            if extra:  # tried next, before the rest of the policy's list
                f.candidates = f.candidates[:f.next] + tuple(extra) + f.candidates[f.next:]
        elif outcome in self._retry_on and self._reroute and f.attempts < self._max_attempts:
            return self._redecide(f, now)
        elif outcome in self._retry_on and f.tries[m] <= self._retry.per_model and f.attempts < self.spec.max_attempts:
            delay = max(self._backoff(f), a.retry_after)  # honour a 429's retry-after
            if now + delay < f.deadline and (self.budget is None or self.budget.try_acquire()):
                f.holds_retry = self.budget is not None
                f.retries += 1
                self.schedule(delay, self._retry_attempt, (f, m, now + delay))
                return
        self._next_candidate(f, now)

    def _redecide(self, f: _Flight, now: float) -> None:
        """Ask the policy again, telling it what was tried, and go on with its new candidates
        (an empty list ends the request); if it fails, go on with the old ones."""
        request = f.request._replace(tried=tuple(self._names[m] for m in f.sequence))
        wait = 0.0
        try:
            decision = self.policy.route(request, self.known.view(now))
            candidates, error = self._candidates(decision)
            wait = getattr(decision, "wait_s", 0.0)
            if error is None and not (isinstance(wait, (int, float)) and 0.0 <= wait < INF):
                error, wait = f"Decision.wait_s must be a finite number of seconds >= 0, not {wait!r}", 0.0
        except POLICY_FAILURES as exc:
            candidates, error = None, f"{type(exc).__name__}: {exc}"
        if error is None:
            f.candidates, f.next = candidates, 0
            f.retries += 1
        else:
            self.rec.policy_error(f.i, error, "reroute")
        if wait > 0.0:  # the policy's backoff before this retry; one past the deadline ends the request there
            wait = min(wait, f.deadline - now)
            self.schedule(wait, self._after_decision, (f, now + wait))
        else:
            self._next_candidate(f, now)

    def _backoff(self, f: _Flight) -> float:
        u = self.service.retry_u(f.i, f.retries)
        f.last_backoff = backoff_s(self._retry.backoff, f.retries, u, f.last_backoff)
        return f.last_backoff

    def _retry_attempt(self, token) -> None:
        f, m, now = token
        generation = None
        if self._guarded:
            admitted, generation = self.known.admit(m, now, f.next < len(f.candidates))
            if not admitted:  # the model was cut off while we waited: move on
                if f.holds_retry:
                    self.budget.release()
                    f.holds_retry = False
                self._next_candidate(f, now)
                return
        self._start_attempt(f, m, now, generation)

    # ------------------------------------------------------------------ hedging
    def _hedge_delay(self, m: int) -> float | None:
        if self._hedge.after_s is not None:
            return self._hedge.after_s
        return self.known.latency_percentile(m, self._hedge.after_percentile)

    def _on_hedge(self, token) -> None:
        """The attempt is still running after the hedge delay: send the next candidate too."""
        a, now = token
        f = a.flight
        if a.state == DONE or f.done or f.hedges >= self._hedge.max_hedges:
            return
        f.hedges += 1
        self._next_candidate(f, now, hedging=True)

    # ------------------------------------------------------------------ the end of a request
    def _finish(self, f: _Flight, status: int, end: float, model: int | None, served) -> None:
        f.done = True
        if self.budget is not None:
            self.budget.active_requests -= 1
        i = f.i
        request = f.request
        latency = end - request.arrival_s
        if served is not None:
            ttft, quality = served
        else:
            ttft, quality = None, 0.0
        if self._observe is not None:
            outcome = Outcome(request.request_id, STATUS_NAMES[status], None if model is None else self._names[model],
                              f.attempts, latency, ttft, f.cost, request.input_tokens,
                              self._output[i] if status == REQUEST_OK else 0)
            self._tell_policy(i, request, outcome)
        if status == REQUEST_OK:
            for channel in self._feedback:
                judged = verdict(channel, i, quality)
                if judged is not None:
                    feedback = Feedback(request.request_id, self._names[model], judged, channel.name, end)
                    self.schedule(channel.delay_s, self._deliver_feedback, (i, request, feedback))
        # Recorded last: once the recorder knows a request ended, its rows may be written, and a
        # policy error in observe above belongs to them.
        self.rec.request(i, status, -1 if model is None else model, f.attempts, latency, ttft, f.cost, quality,
                         f.carbon, len(f.tries) > 1, f.escalated, end)

    def _deliver_feedback(self, token) -> None:
        self._tell_policy(*token)

    def _tell_policy(self, i: int, request: Request, news: Outcome | Feedback) -> None:
        try:
            self._observe(request, news)
        except POLICY_FAILURES as exc:  # feedback errors are policy errors too, not run failures
            self.rec.policy_error(i, f"{type(exc).__name__}: {exc}", "observe")


def _reason_of(decision) -> object:
    """A decision's reason when it is not a ``Decision``: None if it has none, or if reading it raises."""
    try:
        return getattr(decision, "reason", None)
    except POLICY_FAILURES:
        return None
