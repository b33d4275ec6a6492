"""A routesim policy as a LiteLLM routing strategy: the object a team simulates is
the object its LiteLLM router runs.

    strategy = RoutesimStrategy(policy, router).install()

``install`` registers the strategy (``router.register_plugin``, or
``set_custom_routing_strategy`` where that is all the router has) and a LiteLLM
callback that feeds the strategy's observations and the policy's ``observe()``.

Per request (LiteLLM calls the strategy for each attempt; the first call decides):

- the policy's ``Request``: LiteLLM's trace id as request id, the wall clock as
  arrival, the model group asked for as workload (or ``metadata["routesim_workload"]``),
  input tokens counted by ``litellm.token_counter``, the request's
  ``metadata["tags"]`` as tags, and ``metadata["routesim_difficulty"]`` as the
  difficulty estimate for a policy that reads it;
- a ``RouterView`` of the strategy's own observations (``live_view``: the
  simulator's semantics) and the published facts: prices from the deployment's
  own ``input/output_cost_per_token`` or LiteLLM's cost map (``model_info.base_model``,
  else ``litellm_params.model``), context window from the cost map, quality and
  latency priors as given (the scenario's figures); a deployment in LiteLLM's
  cooldown is unhealthy;
- the policy's first candidate serves; each later attempt LiteLLM makes for the
  request (its retries, ``num_retries``, 2 by default; its fallbacks) goes to the
  next candidate, in the policy's order, skipping one in cooldown unless it is
  the last. LiteLLM has no per-request list of deployments to fall back to, so a
  decision longer than ``num_retries + 1`` candidates is cut there, and an error
  LiteLLM does not retry (a 400-class error) ends the request at that candidate.
  When the candidates run out, LiteLLM's default routing picks (simple-shuffle
  among the group's deployments not in cooldown, by weight, rpm or tpm);
- a policy that raises, returns a decision whose candidates cannot be read as
  model names (an int, nested lists, a ``candidates`` property or generator that
  raises), or names no deployment the router has, is logged and counted
  (``policy_errors``), and LiteLLM's default routing serves that request: a
  policy's bug never becomes an error in the caller's request;
- ``route()`` runs on a thread of the strategy's own, given ``decision_budget_s``
  (100 ms by default, the simulator's default decision-time objective): past it
  LiteLLM's default routing serves and the timeout is counted
  (``decision_timeouts``); while a late call still runs, later requests go to
  LiteLLM's routing at once (one thread: a policy's calls never overlap).

The strategy measures each decision's wall-clock time (``decision_us()``: p50 and p99,
as the simulator reports them). It imports no simulator and no simpy.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
import uuid
import weakref
from collections import OrderedDict, deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, Callable, Mapping

import litellm
from litellm.integrations.custom_logger import CustomLogger
from litellm.types.router import CustomRoutingStrategyBase

from sim.policies.base import (DIFFICULTY_SIGNAL, POLICY_FAILURES, Outcome, Request, candidate_names,
                               knowledge_read_by, observer_of)
from .live_view import LiveObservations, PublishedFacts

STATE = "routesim_request"  # the request's metadata key holding its token (text: metadata is logged as JSON)
STATES_KEPT = 100_000  # requests whose attempts may still come (the oldest is forgotten first)
WORKLOAD_KEY, DIFFICULTY_KEY = "routesim_workload", "routesim_difficulty"
NOT_RETRIED = (400, 401, 403, 404, 422)  # status codes LiteLLM's router does not retry
DECISIONS_KEPT = 10_000  # decision times kept for the percentiles
DECISION_BUDGET_S = 0.1  # route() slower than this: LiteLLM's routing serves (the simulator's default slo.decision_p99_ms)
log = logging.getLogger("routesim.litellm")


@dataclass
class _RequestState:
    """What the strategy keeps of one request across LiteLLM's attempts."""

    request: Request
    candidates: tuple[str, ...]  # deployment ids, the policy's order (empty: LiteLLM's default routing)
    tried: list[str] = field(default_factory=list)  # deployment ids sent to, in order


class RoutesimStrategy(CustomRoutingStrategyBase):
    def __init__(self, policy: Any, router: Any, models: Mapping[str, str] | None = None, *,
                 quality: Mapping[str, Mapping[str, float]] | None = None,
                 priors: Mapping[str, Mapping[str, float]] | None = None, seed: int | None = None,
                 clock: Callable[[], float] = time.time, decision_budget_s: float | None = DECISION_BUDGET_S):
        """``models``: routesim model name -> the deployment (its ``model_info.id``, or its
        ``litellm_params.model``); by default every deployment under its id. ``quality``:
        name -> the quality priors by workload (as the scenario's ``quality_prior``);
        ``priors``: name -> ``ttft_s``, ``tokens_per_s`` (published medians) and any of
        ``input_per_mtok``, ``output_per_mtok``, ``context_window`` to override what LiteLLM
        knows. ``seed``: LiteLLM's default routing's shuffle, when it serves.
        ``decision_budget_s``: how long a request waits for ``route()`` before LiteLLM's
        routing serves it (None: no budget, ``route()`` runs on the caller's thread)."""
        if decision_budget_s is not None and not (isinstance(decision_budget_s, (int, float))
                                                  and 0 < decision_budget_s < math.inf):
            raise ValueError(f"decision_budget_s must be a number of seconds > 0 or None, not {decision_budget_s!r}")
        self.policy = policy
        self.router = router
        self._clock = clock
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._deployments = {str(d["model_info"]["id"]): d for d in _deployments(router)}
        self._id_of = _resolve(models, self._deployments)
        self._name_of = {i: name for name, i in self._id_of.items()}
        facts = {name: _facts(self._deployments[i], (quality or {}).get(name), (priors or {}).get(name))
                 for name, i in self._id_of.items()}
        self.observations = LiveObservations(facts)
        self._reads_difficulty = DIFFICULTY_SIGNAL in knowledge_read_by(policy)
        self._observe = observer_of(policy)
        self._decision_ns: deque[int] = deque(maxlen=DECISIONS_KEPT)
        self._states: OrderedDict[str, _RequestState] = OrderedDict()  # by the token in the request's metadata
        self.decisions = 0
        self.policy_errors = 0
        self.decision_timeouts = 0  # decisions abandoned at the budget (LiteLLM's routing served)
        self._budget_s = decision_budget_s
        self._policy_thread = None if decision_budget_s is None else _PolicyThread(self)
        self._late: Future | None = None  # a route() call still running past its budget
        self.ended = 0  # requests whose end LiteLLM has reported
        self.observer = _Observer(self)

    def install(self) -> "RoutesimStrategy":
        """Route ``router``'s requests with the policy from now on, and observe their outcomes."""
        register = getattr(self.router, "register_plugin", None) or self.router.set_custom_routing_strategy
        register(self)
        manager = getattr(litellm, "logging_callback_manager", None)
        if manager is not None:
            manager.add_litellm_callback(self.observer)
        elif self.observer not in litellm.callbacks:
            litellm.callbacks.append(self.observer)
        return self

    def uninstall(self) -> None:
        """Stop observing (LiteLLM's callbacks are process-wide, and it copies them into lists of
        its own); the router keeps the strategy until its routing strategy is set again."""
        manager = getattr(litellm, "logging_callback_manager", None)
        if manager is not None:
            manager.remove_callback_from_all_lists(self.observer)
        elif self.observer in litellm.callbacks:
            litellm.callbacks.remove(self.observer)

    # ------------------------------------------------------------------ LiteLLM's interface
    async def async_get_available_deployment(self, model: str, messages=None, input=None, specific_deployment=False,
                                             request_kwargs=None):
        return self._pick(model, messages, input, request_kwargs)

    def get_available_deployment(self, model: str, messages=None, input=None, specific_deployment=False,
                                 request_kwargs=None):
        return self._pick(model, messages, input, request_kwargs)

    # ------------------------------------------------------------------ picking
    def _pick(self, group: str, messages, input, request_kwargs) -> dict:
        metadata = _metadata(request_kwargs)
        state = self._state(metadata.get(STATE))
        cooled = self._cooled_down()
        if state is None:
            state = self._decide(group, messages, input, metadata, request_kwargs, cooled)
            token = metadata[STATE] = uuid.uuid4().hex
            with self._lock:
                self._states[token] = state
                while len(self._states) > STATES_KEPT:
                    self._states.popitem(last=False)
        left = [c for c in state.candidates if c not in state.tried]
        usable = [c for c in left if c not in cooled] or left[-1:]
        chosen = usable[0] if usable else self._default_pick(group, cooled)
        state.tried.append(chosen)
        name = self._name_of.get(chosen)
        if name is not None:
            with self._lock:
                self.observations.started(name)
        return self._deployments[chosen]

    def _decide(self, group: str, messages, input, metadata: dict, request_kwargs, cooled: set[str]) -> _RequestState:
        """The policy's decision for a new request, as deployment ids (none: LiteLLM's routing)."""
        now = self._clock()
        kwargs = request_kwargs if isinstance(request_kwargs, dict) else {}
        request_id = str(kwargs.get("litellm_trace_id") or metadata.get("litellm_trace_id") or uuid.uuid4())
        tags = metadata.get("tags")
        difficulty = metadata.get(DIFFICULTY_KEY) if self._reads_difficulty else None
        request = Request(request_id, now, str(metadata.get(WORKLOAD_KEY) or group), _tokens(group, messages, input),
                          None if difficulty is None else float(difficulty), (),
                          tuple(sorted(str(t) for t in tags)) if isinstance(tags, (list, tuple)) else ())
        unhealthy = frozenset(self._name_of[i] for i in cooled if i in self._name_of)
        with self._lock:
            view = self.observations.view(now, unhealthy)
        names, error, elapsed = self._ask_policy(request, view)
        with self._lock:
            self._decision_ns.append(elapsed)
            self.decisions += 1
        candidates: tuple[str, ...] = ()
        if error is None:
            unknown = [n for n in names if n not in self._id_of]
            if not names:
                error = "the decision names no model"
            elif unknown:
                error = f"unknown model(s) {', '.join(unknown)} (the router has {', '.join(self._id_of)})"
            else:
                candidates = tuple(dict.fromkeys(self._id_of[n] for n in names))
        if error is not None:
            with self._lock:
                if error.startswith(TIMEOUT):
                    self.decision_timeouts += 1
                else:
                    self.policy_errors += 1
            log.warning("routesim policy error on request %s (LiteLLM's routing serves it): %s", request_id, error)
        return _RequestState(request, candidates)

    def _ask_policy(self, request: Request, view) -> tuple[tuple[str, ...] | None, str | None, int]:
        """The policy's candidates (routesim names), or why LiteLLM's routing serves instead
        (its error, a decision that cannot be read, or the budget spent), and route()'s own
        wall-clock nanoseconds (the budget's, when abandoned): the hand-off to the policy's
        thread is the caller's overhead, not the policy's decision time."""
        if self._policy_thread is None:
            return _timed_route(self.policy, request, view)
        with self._lock:
            if self._late is not None and not self._late.done():
                return None, f"{TIMEOUT}: route() is still deciding an earlier request, past its budget", 0
            asked = self._policy_thread.submit(request, view)
        start = perf_counter_ns()
        try:
            return asked.result(timeout=self._budget_s)
        except FutureTimeout:
            with self._lock:
                self._late = asked
            return (None, f"{TIMEOUT}: route() took longer than the decision budget ({self._budget_s * 1000:g} ms)",
                    perf_counter_ns() - start)

    def _state(self, token) -> _RequestState | None:
        with self._lock:
            return self._states.get(token) if isinstance(token, str) else None

    def _cooled_down(self) -> set[str]:
        """Deployment ids in LiteLLM's cooldown now."""
        try:
            cooldowns = self.router.health().cooldowns
            return {str(i) for i, _ in cooldowns.get_active_cooldowns(list(self._deployments), None)}
        except Exception:  # noqa: BLE001 - an older router without the health API: nothing known cooled down
            return set()

    def _default_pick(self, group: str, cooled: set[str]) -> str:
        """LiteLLM's default routing (simple-shuffle): a weighted random deployment of the group
        among those not cooling down (all of the group's when every one is)."""
        members = [i for i, d in self._deployments.items() if d.get("model_name") == group] or list(self._deployments)
        members = [i for i in members if i not in cooled] or members
        weights = _shuffle_weights([self._deployments[i] for i in members])
        return self._random.choices(members, weights=weights)[0] if weights else self._random.choice(members)

    # ------------------------------------------------------------------ outcomes
    def _finished(self, kwargs: dict, ok: bool, start_time, end_time, response=None) -> None:
        """One attempt ended (LiteLLM's callback): the observations, and the policy's ``observe``
        when the request is over."""
        deployment = _deployment_id(kwargs)
        token = _metadata_of_call(kwargs).get(STATE)
        state = self._state(token)
        duration = _seconds(end_time) - _seconds(start_time)
        name = self._name_of.get(deployment)
        ttft = None
        output_tokens = 0
        if ok:
            first = kwargs.get("completion_start_time")
            ttft = None if first is None else max(0.0, _seconds(first) - _seconds(start_time))
            usage = getattr(response, "usage", None)
            output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        if name is not None:
            with self._lock:
                self.observations.finished(name, ok, duration, self._clock(), ttft, output_tokens)
        if state is None:  # not a request of this strategy's, or one already over
            return
        if not ok and not _final_failure(kwargs, state, self.router):
            return
        with self._lock:
            self._states.pop(token, None)
            self.ended += 1
        if self._observe is not None:
            request = state.request
            outcome = Outcome(request.request_id, "ok" if ok else "failed", name if ok else None, len(state.tried),
                              self._clock() - request.arrival_s, ttft, float(kwargs.get("response_cost") or 0.0),
                              request.input_tokens, output_tokens)
            try:
                self._observe(request, outcome)
            except POLICY_FAILURES as exc:
                with self._lock:
                    self.policy_errors += 1
                log.warning("routesim policy error in observe() for request %s: %s: %s", request.request_id,
                            type(exc).__name__, exc)

    def decision_us(self) -> dict[str, float]:
        """p50 and p99 of the wall-clock time of ``route`` (microseconds) over the last decisions."""
        with self._lock:
            times = sorted(self._decision_ns)
        if not times:
            return {"p50": float("nan"), "p99": float("nan"), "decisions": 0}

        def quantile(q: float) -> float:  # linear interpolation, as numpy's default
            k = (len(times) - 1) * q
            lo = int(k)
            hi = min(lo + 1, len(times) - 1)
            return (times[lo] + (times[hi] - times[lo]) * (k - lo)) / 1000.0

        return {"p50": quantile(0.5), "p99": quantile(0.99), "decisions": self.decisions}


TIMEOUT = "decision timeout"  # how a policy error caused by the budget begins


def _guarded_route(policy, request: Request, view) -> tuple[tuple[str, ...] | None, str | None]:
    """``policy.route`` and the decision's candidates read under guard: (names, None) or (None, error)."""
    try:
        decision = policy.route(request, view)
    except POLICY_FAILURES as exc:  # a policy's bug must not fail the caller's request
        return None, f"{type(exc).__name__}: {exc}"
    return candidate_names(decision)


def _timed_route(policy, request: Request, view) -> tuple[tuple[str, ...] | None, str | None, int]:
    """``_guarded_route`` and its wall-clock nanoseconds."""
    start = perf_counter_ns()
    names, error = _guarded_route(policy, request, view)
    return names, error, perf_counter_ns() - start


class _PolicyThread:
    """The one thread that runs a strategy's ``route()`` calls, so that a slow call can be
    abandoned at its budget. A daemon, so a policy stuck for good never keeps the process
    from exiting; it ends when its strategy is garbage-collected."""

    def __init__(self, strategy: RoutesimStrategy):
        self._asked: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._work, args=(self._asked, strategy.policy), name="routesim-policy",
                         daemon=True).start()
        weakref.finalize(strategy, self._asked.put, None)

    def submit(self, request: Request, view) -> Future:
        asked: Future = Future()
        self._asked.put((asked, request, view))
        return asked

    @staticmethod
    def _work(asked: queue.SimpleQueue, policy) -> None:
        while (job := asked.get()) is not None:
            future, request, view = job
            if future.set_running_or_notify_cancel():
                future.set_result(_timed_route(policy, request, view))


class _Observer(CustomLogger):
    """LiteLLM's callback: each attempt's end, once (the sync and async hooks may both fire)."""

    def __init__(self, strategy: RoutesimStrategy):
        super().__init__()
        self.strategy = strategy
        # LiteLLM adds a logger only once per class and public attributes: this one is per strategy.
        self.routesim_strategy = uuid.uuid4().hex
        self._seen: deque[str] = deque(maxlen=10_000)
        self._seen_set: set[str] = set()
        self._lock = threading.Lock()

    def _first_time(self, kwargs: dict) -> bool:
        key = str(kwargs.get("litellm_call_id") or id(kwargs))
        with self._lock:
            if key in self._seen_set:
                return False
            if len(self._seen) == self._seen.maxlen:
                self._seen_set.discard(self._seen[0])
            self._seen.append(key)
            self._seen_set.add(key)
            return True

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        if self._first_time(kwargs):
            self.strategy._finished(kwargs, True, start_time, end_time, response_obj)

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):
        if self._first_time(kwargs):
            self.strategy._finished(kwargs, False, start_time, end_time)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.log_success_event(kwargs, response_obj, start_time, end_time)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.log_failure_event(kwargs, response_obj, start_time, end_time)


# --------------------------------------------------------------------------- LiteLLM's records
def _deployments(router) -> list:
    registry = getattr(router, "registry", None)
    return list(registry().all()) if callable(registry) else list(router.model_list)


def _resolve(models: Mapping[str, str] | None, deployments: dict) -> dict[str, str]:
    """routesim name -> deployment id."""
    if models is None:
        return {i: i for i in deployments}
    by_model = {}
    for i, d in deployments.items():
        by_model.setdefault(str(d["litellm_params"]["model"]), []).append(i)
    out = {}
    for name, target in models.items():
        if target in deployments:
            out[name] = target
        elif len(by_model.get(target, [])) == 1:
            out[name] = by_model[target][0]
        else:
            found = by_model.get(target)
            raise ValueError(f"models[{name!r}] = {target!r}: " + (
                f"{len(found)} deployments have that litellm_params.model; name one by its model_info.id" if found
                else f"no deployment has that model_info.id or litellm_params.model (ids: {', '.join(deployments)})"))
    return out


def _facts(deployment, quality: Mapping[str, float] | None, given: Mapping[str, float] | None) -> PublishedFacts:
    """A deployment's published facts: its own prices, else LiteLLM's cost map; the priors given."""
    params, info = dict(deployment["litellm_params"]), dict(deployment.get("model_info") or {})
    given = dict(given or {})
    model = str(params.get("model"))
    known = {}
    for key in (info.get("base_model"), params.get("base_model"), model, model.split("/", 1)[-1]):
        if key:
            try:
                known = litellm.get_model_info(str(key))
                break
            except Exception:  # noqa: BLE001 - not in the cost map under this name
                continue

    def per_mtok(field_: str) -> float:
        value = params.get(field_, info.get(field_, known.get(field_)))
        return float(value or 0.0) * 1e6

    provider = params.get("custom_llm_provider") or known.get("litellm_provider") or (
        model.split("/", 1)[0] if "/" in model else "openai")
    return PublishedFacts(
        provider=str(provider),
        input_per_mtok=float(given.get("input_per_mtok", per_mtok("input_cost_per_token"))),
        output_per_mtok=float(given.get("output_per_mtok", per_mtok("output_cost_per_token"))),
        context_window=int(given.get("context_window", known.get("max_input_tokens") or known.get("max_tokens")
                                     or 128_000)),
        quality_prior=dict(quality or {"default": 0.0}),
        ttft_prior_s=float(given.get("ttft_s", 1.0)),
        tokens_per_s_prior=float(given.get("tokens_per_s", 50.0)))


def _shuffle_weights(members: list) -> list[float] | None:
    """simple-shuffle's weights: the first of weight, rpm, tpm any deployment has (0 without it)."""
    for key in ("weight", "rpm", "tpm"):
        values = [float(dict(d["litellm_params"]).get(key) or 0.0) for d in members]
        if any(values):
            return values
    return None


def _tokens(group: str, messages, input) -> int:
    try:
        if messages:
            return int(litellm.token_counter(model=group, messages=messages))
        if input:
            return int(litellm.token_counter(model=group, text=input if isinstance(input, str) else str(input)))
    except Exception:  # noqa: BLE001 - an unknown tokenizer: LiteLLM's default count
        return int(litellm.token_counter(messages=messages)) if messages else 0
    return 0


def _metadata(request_kwargs) -> dict:
    """The request's metadata, made if missing (the strategy's state lives there)."""
    if not isinstance(request_kwargs, dict):
        return {}
    metadata = request_kwargs.get("metadata")
    if not isinstance(metadata, dict):
        metadata = request_kwargs["metadata"] = {}
    return metadata


def _metadata_of_call(kwargs: dict) -> dict:
    params = kwargs.get("litellm_params") or {}
    for holder in (params.get("metadata"), kwargs.get("metadata"), params.get("litellm_metadata")):
        if isinstance(holder, dict) and STATE in holder:
            return holder
    return {}


def _deployment_id(kwargs: dict) -> str | None:
    logged = kwargs.get("standard_logging_object") or {}
    found = logged.get("model_id") if isinstance(logged, dict) else None
    if found is None:
        found = ((kwargs.get("litellm_params") or {}).get("model_info") or {}).get("id")
    return None if found is None else str(found)


def _final_failure(kwargs: dict, state: _RequestState, router) -> bool:
    """Whether LiteLLM gives the request up after this failed attempt: an error it does not
    retry, or its retries spent."""
    status = getattr(kwargs.get("exception"), "status_code", None)
    if status in NOT_RETRIED:
        return True
    retries = kwargs.get("num_retries")
    if retries is None:
        retries = getattr(router, "num_retries", 0) or 0
    return len(state.tried) >= int(retries) + 1


def _seconds(moment) -> float:
    return moment.timestamp() if hasattr(moment, "timestamp") else float(moment)
