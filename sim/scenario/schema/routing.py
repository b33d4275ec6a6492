"""The router and its defences (timeouts, deadlines, retries with backoff and a
budget, circuit breakers, cooldowns, hedging, context-window fallbacks), the
policies to compare, the rollout gate's thresholds, objectives and features."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .common import NonNegative, Positive, Probability, Strict, require_order
from .traffic import MedianP95

# --------------------------------------------------------------------------- router, policies
class HealthSpec(Strict):
    """The router's own view of health: after this many consecutive failures a
    model is seen as unhealthy until ``cooldown_s`` after its last failure."""

    consecutive_failures: Annotated[int, Field(ge=1)] = 3
    cooldown_s: NonNegative = 30.0


Fraction = Annotated[float, Field(gt=0, le=1)]
RETRYABLE = ("error", "rate_limited", "timeout")


class BackoffSpec(Strict):
    """Exponential backoff: the n-th retry waits up to min(cap_s, base_s x 2^n),
    jittered as AWS describes (none, full, equal, decorrelated)."""

    base_s: Positive = 0.5
    cap_s: Positive = 8.0
    jitter: Literal["none", "full", "equal", "decorrelated"] = "full"

    @model_validator(mode="after")
    def _ordered(self):
        require_order(self, "base_s", "cap_s")
        return self


class RetrySpec(Strict):
    """Retry the same model after a failure whose outcome is listed."""

    on_outcomes: list[Literal["error", "rate_limited", "timeout"]] = list(RETRYABLE)
    per_model: Annotated[int, Field(ge=1, le=10)] = 1  # retries of one model before moving on
    # Instead of retrying the same model: ask the policy again, with Request.tried, and try
    # its new first candidate at once (LiteLLM re-picks a deployment for every retry).
    reroute: bool = False
    backoff: BackoffSpec = BackoffSpec()
    # Envoy's retry budget: retries in progress <= budget x active requests
    # (never fewer than min_retry_concurrency). None: no budget.
    budget: Fraction | None = None
    min_retry_concurrency: Annotated[int, Field(ge=0)] = 3


class CircuitBreakerSpec(Strict):
    """Resilience4j's circuit breaker, one per model."""

    window: Literal["count", "time"] = "count"
    size: Annotated[int, Field(ge=1)] = 20  # calls (count) or seconds (time)
    min_calls: Annotated[int, Field(ge=1)] = 10
    failure_rate: Fraction = 0.5
    slow_call_s: Positive | None = None
    slow_call_rate: Fraction = 1.0
    open_s: Positive = 30.0
    half_open_calls: Annotated[int, Field(ge=1)] = 3

    @model_validator(mode="after")
    def _fits(self):
        if self.window == "count" and self.min_calls > self.size:
            raise ValueError(f"min_calls ({self.min_calls}) can never be reached in a count window of size {self.size}")
        return self


class CooldownSpec(Strict):
    """LiteLLM's deployment cooldown, as litellm 1.110.2 behaves (docs/policies.md):
    a cooled model is out of rotation for ``cooldown_s``.

    With ``allowed_fails``: cooled when a failure count exceeds it; the count
    starts at a model's first failure and expires ``cooldown_s`` later. Without
    (LiteLLM's newer default): cooled on a 429, or when more than half of the
    model's attempts in the current minute failed (at least 5 of them), or all
    of at least 1,000. A model that is the only deployment of its model group
    (``single_deployment``: model -> whether its group has fallbacks) is never
    cooled on a 429 or the half rule, and with ``allowed_fails`` only when its
    group has fallbacks."""

    allowed_fails: Annotated[int, Field(ge=0)] | None = None
    cooldown_s: Positive = 5.0
    single_deployment: dict[str, bool] = Field(default_factory=dict)


class HedgeSpec(Strict):
    """After a delay, send the next candidate too; the first answer wins and the
    others are cancelled (and charged as the provider would)."""

    after_s: Positive | None = None
    after_percentile: Annotated[float, Field(gt=0, lt=1)] | None = None  # of the model's observed latency
    max_hedges: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _one_delay(self):
        if (self.after_s is None) == (self.after_percentile is None):
            raise ValueError("give exactly one of 'after_s' or 'after_percentile'")
        return self


class ResponseCacheSpec(Strict):
    """A response cache in front of the providers (LiteLLM's ``cache: true``): the router
    still picks a deployment, but a hit is answered from the cache, at no provider cost, in
    ``latency_s``, without calling the provider. Which requests hit is drawn once per
    replication (the same requests for every policy); take ``hit_share`` from your own logs
    (LiteLLM_SpendLogs.cache_hit)."""

    hit_share: Probability
    latency_s: NonNegative = 0.005  # a Redis or in-memory look-up


class RouterSpec(Strict):
    timeout_s: Positive = 60.0  # per attempt
    # Whole request, all attempts and waits included; each attempt gets at most
    # what is left (Envoy's per-try timeout within the route timeout).
    deadline_s: Positive | None = None
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    default_model: str | None = None  # used when the policy fails or returns nothing usable
    # What an abandoned (timed-out) attempt costs: the tokens generated until it
    # was abandoned, the whole answer, or nothing.
    abandoned_charge: Literal["generated", "full", "none"] = "generated"
    health: HealthSpec | None = HealthSpec()  # None: no health hold (LiteLLM has none)
    retry: RetrySpec | None = None
    circuit_breaker: CircuitBreakerSpec | None = None
    cooldown: CooldownSpec | None = None
    hedge: HedgeSpec | None = None
    # On a context-window overflow, try these next (LiteLLM's context_window_fallbacks).
    context_window_fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    response_cache: ResponseCacheSpec | None = None


class PolicySpec(BaseModel):
    """``kind`` plus its parameters, given inline or under ``params:``."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    router: dict[str, Any] | None = None  # overrides parts of the scenario's router
    # Time the router spends deciding beyond running route() (a classifier, an embedding or an LLM
    # judge called first), lognormal per request: it delays every attempt and counts in the latency.
    decision_latency_s: MedianP95 | None = None
    knowledge: dict[str, Any] | None = None  # overrides parts of the scenario's router_knowledge

    def all_params(self) -> dict[str, Any]:
        inline = dict(self.model_extra or {})
        overlap = sorted(set(inline) & set(self.params))
        if overlap:
            raise ValueError(f"{', '.join(overlap)} given both inline and under 'params'")
        # A deep copy: whoever uses them (a policy's constructor) cannot change the scenario.
        return copy.deepcopy({**self.params, **inline})


class Gates(Strict):
    """Rollout-gate thresholds (fractions, not percents) for ``routesim gate``."""

    candidate: str | None = None  # the policy to check (``--candidate`` overrides)
    baseline: str | None = None  # default: the scenario's baseline
    min_savings: float | None = None
    max_quality_drop: NonNegative | None = None
    min_success_rate: Probability | None = None
    min_fault_success_rate: Probability | None = None
    max_p95_latency_ratio: Positive | None = None
    max_p99_latency_ratio: Positive | None = None
    max_decision_p99_us: Positive | None = None


class Objectives(Strict):
    """Service-level objectives the report measures against."""

    availability: Annotated[float, Field(gt=0, lt=1)] | None = None  # e.g. 0.999: error budget 0.1%
    decision_p99_ms: Positive = 100.0  # a policy slower than this at the 99th percentile is flagged
