"""LiteLLM's routing strategies, with the semantics of its router docs.

Each orders every candidate model (the rest are fallbacks); models the router
reports unhealthy (cooling down, breaker open) go last, as LiteLLM excludes
cooled-down deployments from a pick.

- ``simple-shuffle``: a random pick weighted by ``weights`` (LiteLLM: by rpm,
  tpm or weight), fallbacks in further weighted-random order.
- ``least-busy``: fewest requests in flight.
- ``usage-based``: lowest tokens used this minute, skipping models this
  request would push over their rpm/tpm limits.
- ``latency-based``: lowest mean of recent latencies per output token, with
  failures as a penalty; models within ``buffer`` of the best are shuffled.
- ``cost-based``: lowest estimated cost of this request at published prices.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Literal

from pydantic import Field

from .base import BasePolicy, Decision, ModelStatus, Outcome, Request, RouterView
from .common import CandidateParams, candidate_models
from .estimates import OutputTokens
from .params import PolicyParams, register


def _healthy_first(order: list[ModelStatus]) -> tuple[str, ...]:
    return tuple([m.name for m in order if m.healthy] + [m.name for m in order if not m.healthy])


def _candidates(view: RouterView, models: list[str] | None) -> list[ModelStatus]:
    return list(candidate_models(view, models))


LITELLM_METRICS = ("weight", "rpm", "tpm")


class ShuffleParams(CandidateParams):
    weights: dict[str, float] = {}  # model -> weight (rpm, tpm or weight in LiteLLM); 1 when omitted
    # LiteLLM's own rule instead: model -> its weight/rpm/tpm; each pick weighs the models it
    # picks among by the first of those metrics any of them has (0 for those without it).
    litellm_metrics: dict[str, dict[Literal[LITELLM_METRICS], float]] = {}

    def referenced_models(self):
        return (super().referenced_models() + [(m, ("weights", m)) for m in self.weights]
                + [(m, ("litellm_metrics", m)) for m in self.litellm_metrics])


@register("simple-shuffle")
class SimpleShuffle(BasePolicy):
    Params = ShuffleParams
    description = "LiteLLM simple-shuffle: a random pick weighted by rpm/tpm/weight; the rest, shuffled, as fallbacks."
    reads = frozenset()

    def __init__(self, seed: int | None = None, **params):
        self.p = self.Params(**params)
        self.rng = random.Random(seed)

    def route(self, request: Request, view: RouterView) -> Decision:
        pool = [m for m in _candidates(view, self.p.models) if m.healthy] or _candidates(view, self.p.models)
        weights = self._litellm_weights(pool) if self.p.litellm_metrics else [self.p.weights.get(m.name, 1.0)
                                                                                for m in pool]
        order = []
        while pool:  # weighted sampling without replacement
            # No weight at all: a uniform pick, as LiteLLM's shuffle does.
            pick = self.rng.choices(range(len(pool)), weights=weights)[0] if sum(weights) > 0 else \
                self.rng.randrange(len(pool))
            order.append(pool.pop(pick).name)
            weights.pop(pick)
        rest = [m.name for m in _candidates(view, self.p.models) if m.name not in order]
        return Decision(tuple(order + rest), "simple-shuffle")

    def _litellm_weights(self, pool: list[ModelStatus]) -> list[float]:
        """LiteLLM 1.110.2's simple_shuffle: the first metric that some model in the pool has."""
        for metric in LITELLM_METRICS:
            weights = [self.p.litellm_metrics.get(m.name, {}).get(metric, 0.0) for m in pool]
            if max(weights, default=0.0) > 0:
                return weights
        return [0.0] * len(pool)  # none: a uniform pick


@register("least-busy")
class LeastBusy(BasePolicy):
    Params = CandidateParams
    description = "LiteLLM least-busy: the model with the fewest requests in flight."
    reads = frozenset()

    def __init__(self, **params):
        self.p = self.Params(**params)

    def route(self, request: Request, view: RouterView) -> Decision:
        order = sorted(_candidates(view, self.p.models), key=lambda m: m.in_flight)
        return Decision(_healthy_first(order), f"least-busy: {order[0].in_flight} in flight" if order else "least-busy")


class Limit(PolicyParams):
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)


class UsageParams(CandidateParams):
    limits: dict[str, Limit] = {}  # model -> the rpm/tpm it may use
    output_tokens_prior: int = Field(256, ge=1)
    # LiteLLM 1.110.2's own check (usage-based-routing-v2, compared with the real library): a model
    # is a candidate only while this minute's usage plus this request stays below its rpm/tpm (so at
    # most rpm - 1 requests a minute), and one over its limits is no candidate at all.
    litellm_limits: bool = False

    def referenced_models(self):
        return super().referenced_models() + [(m, ("limits", m)) for m in self.limits]


@register("usage-based")
class UsageBased(BasePolicy):
    """Counts what it sent this minute (requests, and input plus expected output tokens)."""

    Params = UsageParams
    description = "LiteLLM usage-based: lowest tokens used this minute, skipping models this request would push over rpm/tpm."
    reads = frozenset()

    def __init__(self, **params):
        self.p = self.Params(**params)
        self.output_tokens = OutputTokens(self.p.output_tokens_prior)
        self._minute = -1
        self._requests: dict[str, int] = {}
        self._tokens: dict[str, float] = {}

    def route(self, request: Request, view: RouterView) -> Decision:
        minute = int(view.now_s // 60)
        if minute != self._minute:
            self._minute, self._requests, self._tokens = minute, {}, {}
        need = request.input_tokens + self.output_tokens.expected(request.workload)
        within, over = [], []
        for m in _candidates(view, self.p.models):
            limit = self.p.limits.get(m.name)
            fits = limit is None or (self._fits(limit.rpm, self._requests.get(m.name, 0) + 1)
                                     and self._fits(limit.tpm, self._tokens.get(m.name, 0.0) + need))
            (within if fits else over).append(m)
        within.sort(key=lambda m: self._tokens.get(m.name, 0.0))
        candidates = _healthy_first(within) + (() if self.p.litellm_limits else tuple(m.name for m in over))
        if within:  # what it sends counts against the primary's usage
            primary = candidates[0]
            self._requests[primary] = self._requests.get(primary, 0) + 1
            self._tokens[primary] = self._tokens.get(primary, 0.0) + need
        return Decision(candidates, "usage-based: lowest usage this minute" if within else "usage-based: every model over its limit")

    def _fits(self, limit: float | None, usage: float) -> bool:
        if limit is None:
            return True
        return usage < limit if self.p.litellm_limits else usage <= limit

    def observe(self, request: Request, outcome: Outcome) -> None:
        self.output_tokens.observe(request, outcome)


class LatencyParams(CandidateParams):
    window: int = Field(10, ge=1)  # recent observations kept per model
    failure_penalty_s: float = Field(1000.0, ge=0)  # latency per token a failure counts as
    buffer: float = Field(0.0, ge=0)  # shuffle models within this share of the best


@register("latency-based")
class LatencyBased(BasePolicy):
    """Latency per output token of its own successful requests; a request that
    failed counts as ``failure_penalty_s`` against every model the router saw
    fail it (the router's consecutive failures), as LiteLLM penalises timeouts."""

    Params = LatencyParams
    description = "LiteLLM latency-based: lowest recent latency per output token, failures penalised."
    reads = frozenset()

    def __init__(self, seed: int | None = None, **params):
        self.p = self.Params(**params)
        self.rng = random.Random(seed)
        self._recent: dict[str, deque] = {}

    def score(self, m: ModelStatus) -> float:
        recent = self._recent.get(m.name)
        # Untried models score 0 so that each gets tried, as LiteLLM does.
        base = sum(recent) / len(recent) if recent else 0.0
        return base + self.p.failure_penalty_s * m.error_rate_ewma

    def route(self, request: Request, view: RouterView) -> Decision:
        order = sorted(_candidates(view, self.p.models), key=self.score)
        if self.p.buffer > 0 and order:
            best = self.score(order[0])
            close = [m for m in order if self.score(m) <= best * (1 + self.p.buffer)]
            self.rng.shuffle(close)
            order = close + [m for m in order if m not in close]
        return Decision(_healthy_first(order), "latency-based")

    def observe(self, request: Request, outcome: Outcome) -> None:
        if outcome.status == "ok" and outcome.model is not None:
            recent = self._recent.setdefault(outcome.model, deque(maxlen=self.p.window))
            recent.append(outcome.latency_s / max(outcome.output_tokens, 1))


class CostParams(CandidateParams):
    output_tokens_prior: int = Field(256, ge=1)


@register("cost-based")
class CostBased(BasePolicy):
    Params = CostParams
    description = "LiteLLM cost-based: the lowest estimated cost for this request at published prices."
    reads = frozenset()

    def __init__(self, **params):
        self.p = self.Params(**params)
        self.output_tokens = OutputTokens(self.p.output_tokens_prior)

    def route(self, request: Request, view: RouterView) -> Decision:
        n_out = self.output_tokens.expected(request.workload)
        order = sorted(_candidates(view, self.p.models), key=lambda m: m.cost_usd(request.input_tokens, n_out))
        return Decision(_healthy_first(order), "cost-based: cheapest estimate")

    def observe(self, request: Request, outcome: Outcome) -> None:
        self.output_tokens.observe(request, outcome)
