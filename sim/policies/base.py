"""The policy interface, identical in production and in simulation.

A policy sees only what a real router knows when it decides: the request, the
published prices and priors, and the router's own observations. It never sees
ground truth (a future outage, a request's true difficulty or output length, the
latency a provider is about to produce). Nothing here imports simpy or the
simulator, so a production router can import a policy unchanged.

The records are ``NamedTuple``s: immutable (a policy cannot change the router's
state through them) and cheap to build, which matters because the simulator
builds one ``Request`` per request and refreshes ``ModelStatus`` snapshots as
observations arrive.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple, Protocol, Sequence, runtime_checkable


#: What the harness catches from a policy's own code (constructor, route, observe) and
#: records as a policy error: any exception, and SystemExit too, since a policy that
#: calls sys.exit() must not end the run (least of all with exit 0 and nothing written).
#: KeyboardInterrupt is not caught: Ctrl-C still stops the run.
POLICY_FAILURES = (Exception, SystemExit)


class Request(NamedTuple):
    """What the router knows about a request when it must decide."""

    request_id: str
    arrival_s: float
    workload: str
    input_tokens: int
    #: A noisy estimate of the request's difficulty (the signal a learned router
    #: would have), or None when the scenario gives none.
    difficulty_estimate: float | None = None
    #: The models already tried for this request, in order: empty at the first decision;
    #: filled when the router asks again before a retry (``router.retry.reroute``).
    tried: tuple[str, ...] = ()
    #: The routing tags the client sent with the request (the trace's ``tags``), sorted.
    tags: tuple[str, ...] = ()
    #: In a backtest on a proxy's logs, the deployments production tried for this request, in
    #: order (the trace's ``logged_route``). Only a policy that reads ``logged`` (a replay of
    #: production) is given it: it shows what production's own failures were.
    logged_route: tuple[str, ...] = ()


#: The weight of the newest observation in ModelStatus's moving averages (latency, time to first
#: token, speed, error rate): the simulated router and a live one (sim.integrations) use the same.
EWMA_ALPHA = 0.1


class ModelStatus(NamedTuple):
    """A read-only snapshot of one deployment as the router sees it."""

    # Published facts.
    name: str
    provider: str
    input_per_mtok: float  # price in force now, USD per million input tokens
    output_per_mtok: float
    context_window: int
    quality_prior: Mapping[str, float]  # ability (logit scale) per workload, 'default' for the rest
    ttft_prior_s: float  # published median time to first token
    tokens_per_s_prior: float  # published median output speed
    carbon_g_per_mtok: float | None
    # The router's own observations.
    calls: int  # attempts finished
    failures: int  # attempts that did not return an answer
    in_flight: int  # attempts started and not yet finished
    latency_ewma_s: float | None  # of successful attempts; None before the first
    ttft_ewma_s: float | None  # observed time to first token, successful attempts
    tokens_per_s_ewma: float | None  # observed output speed after the first token
    error_rate_ewma: float  # exponentially weighted share of failed attempts
    consecutive_failures: int
    last_failure_s: float | None
    healthy: bool  # False while the router would not send to it (cooldown, open breaker)
    breaker_state: str | None = None  # closed | open | half_open, when the router has a breaker

    def quality_for(self, workload: str) -> float | None:
        """The prior ability for ``workload`` (or the model's default)."""
        prior = self.quality_prior
        return prior.get(workload, prior.get("default"))

    def expected_latency_s(self, output_tokens: float) -> float:
        """TTFT plus decoding time, from observations where the router has them,
        else from the published priors."""
        ttft = self.ttft_prior_s if self.ttft_ewma_s is None else self.ttft_ewma_s
        speed = self.tokens_per_s_prior if self.tokens_per_s_ewma is None else self.tokens_per_s_ewma
        return ttft + output_tokens / speed

    def cost_usd(self, input_tokens: float, output_tokens: float) -> float:
        """Cost of a request of this size at the current published price."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


class RouterView(NamedTuple):
    """What a policy is handed with each request."""

    now_s: float  # the router's clock: simulated in simulation, wall clock in production
    models: Sequence[ModelStatus]
    positions: Mapping[str, int]  # model name -> its place in ``models``

    def model(self, name: str) -> ModelStatus:
        """The status of one model by name (KeyError if the router has no such model)."""
        return self.models[self.positions[name]]


class Judge(NamedTuple):
    """The answer scorer of a cascade (FrugalGPT): it accepts or rejects each
    answer before the router returns it.

    In production the router runs the scorer called ``name`` on the answer
    text; the simulator has no text and emulates a scorer with these error
    rates instead (its verdicts come from the harness, never from the policy).
    """

    name: str = "judge"
    accept_good: float = 0.9  # chance it accepts an acceptable answer
    reject_bad: float = 0.9  # chance it rejects an unacceptable one
    cost_usd: float = 0.0  # per judged answer
    latency_s: float = 0.0  # added before the answer is returned or escalated


class Decision(NamedTuple):
    """Ordered candidates (primary, then fallbacks), the policy's reason (prose or a
    mapping, for people) and optionally a numeric ``score`` (for the report's curves).

    With a ``judge`` the candidates are the stages of a cascade: an answer from
    any stage but the last is judged, and a rejected one is escalated to the
    next stage (kept as the answer if no later stage answers).
    """

    candidates: tuple[str, ...]
    reason: str | Mapping[str, Any] = ""
    judge: Judge | None = None
    # How much this request deserves the stronger model (higher: more), for routers that
    # split traffic by a threshold on it; the report sweeps the whole routing curve over it.
    score: float | None = None
    # Seconds to wait before the first candidate: a retry's backoff, when the router asks
    # again before a retry (router.retry.reroute). Ignored at a request's first decision.
    wait_s: float = 0.0


def candidate_names(decision: Any) -> tuple[tuple[str, ...] | None, str | None]:
    """(the decision's candidates as a tuple of model names, None) or (None, the policy error
    that makes them unusable). Read under guard, since a policy's decision may be any object:
    a ``candidates`` property or generator that raises, an int, nested lists; in production
    (the LiteLLM plug-in) as in the simulator, such a decision is a policy error, never a
    failed request."""
    try:
        names = getattr(decision, "candidates", None)
        if names is None:
            return None, f"route() returned {type(decision).__name__}, not a Decision"
        if isinstance(names, (str, bytes)):
            return None, "Decision.candidates is a string; give a tuple of model names"
        names = tuple(names)
    except POLICY_FAILURES as exc:  # not iterable, or a property or generator of the policy's that raised
        return None, f"Decision.candidates is not a sequence of model names ({type(exc).__name__}: {exc})"
    wrong = next((n for n in names if not isinstance(n, str)), None)
    if wrong is not None:
        return None, f"Decision.candidates is not a sequence of model names (holds {wrong!r})"
    return names, None


class Outcome(NamedTuple):
    """What the router reports back after a request ends (``Policy.observe``)."""

    request_id: str
    status: str  # ok | failed | rejected
    model: str | None  # the model that served it, if any
    attempts: int
    latency_s: float
    ttft_s: float | None
    cost_usd: float  # all attempts, including abandoned ones
    input_tokens: int
    output_tokens: int  # known once the answer arrived; 0 when failed


class Feedback(NamedTuple):
    """A verdict on an answer, delivered to ``Policy.observe`` by a feedback channel
    (a judge, user ratings) when the channel delivers it, for the share of answers
    it scores. It can be wrong: the channel's accuracy is below one."""

    request_id: str
    model: str  # the model whose answer was scored
    quality: float  # 1.0: judged acceptable; 0.0: judged unacceptable
    channel: str  # judge | ratings
    answered_s: float  # when the answer was returned (the verdict arrives later)


#: What a policy may read of the router's beliefs (``Policy.reads``): the believed
#: quality of each model (``ModelStatus.quality_prior``), the request's
#: ``difficulty_estimate``, and ``Feedback`` on answers. A policy that declares
#: none of them is given none, and its report never depends on how good they are.
QUALITY_BELIEF, DIFFICULTY_SIGNAL, ANSWER_FEEDBACK = "quality", "difficulty", "feedback"
ALL_KNOWLEDGE = frozenset({QUALITY_BELIEF, DIFFICULTY_SIGNAL, ANSWER_FEEDBACK})
#: The route production took (``Request.logged_route``): not part of ALL_KNOWLEDGE, so only a
#: policy that names it in ``reads`` (the replay of production) is given it.
LOGGED_ROUTING = "logged"


def knowledge_read_by(policy) -> frozenset[str]:
    """What a policy (class or object) reads; one that does not say may read everything."""
    return frozenset(getattr(policy, "reads", ALL_KNOWLEDGE))


@runtime_checkable
class Policy(Protocol):
    def route(self, request: Request, view: RouterView) -> Decision: ...


class BasePolicy:
    """Convenience base: subclasses implement ``route``; ``observe`` is optional.

    Built-in policies declare a pydantic ``Params`` model; the registry validates
    the scenario's parameters against it and passes them as keyword arguments,
    and say in ``reads`` which of the router's beliefs they use.
    """

    Params: Any = None
    description: str = ""
    reads: frozenset[str] = ALL_KNOWLEDGE

    @classmethod
    def exact_truth_in(cls, params: dict) -> list[str]:
        """Ground truth these parameters hand the policy (e.g. a judge that never errs), in
        words; any makes it an upper bound. The default: none."""
        return []

    def route(self, request: Request, view: RouterView) -> Decision:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, request: Request, outcome: Outcome | Feedback) -> None:
        """Called with each request's ``Outcome`` when it ends, and (for a policy that
        reads ``feedback``) with each ``Feedback`` the configured channel delivers.
        The default ignores both."""


def observer_of(policy):
    """The policy's ``observe``, or None when it has none or keeps the base class's no-op (a
    router then skips the call entirely)."""
    observe = getattr(policy, "observe", None)
    if observe is None or getattr(type(policy), "observe", None) is BasePolicy.observe:
        return None
    return observe


def sigmoid(x: float) -> float:
    """Probability of an acceptable answer for ability minus difficulty ``x``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
