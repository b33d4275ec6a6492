"""OpenRouter-style provider routing and a quality-floor router.

``openrouter`` follows OpenRouter's documented default: prefer providers without
a significant outage in the last 30 seconds; among those, pick one with
probability proportional to 1/price²; the rest are fallbacks. ``sort`` (price,
latency, throughput) replaces the random pick with a fixed order, and
``max_price`` drops models above a price, as OpenRouter's ``provider`` object
does. The price compared is this request's estimated cost at published prices.

``cheapest-above-floor``: the cheapest model whose prior chance of an acceptable
answer for this request reaches a floor.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field

from .base import (DIFFICULTY_SIGNAL, QUALITY_BELIEF, BasePolicy, Decision, ModelStatus, Outcome, Request,
                   RouterView, sigmoid)
from .common import CandidateParams, candidate_models
from .estimates import OutputTokens
from .params import PolicyParams, register


class MaxPrice(PolicyParams):
    input_per_mtok: float | None = Field(None, ge=0)
    output_per_mtok: float | None = Field(None, ge=0)


class OpenRouterParams(CandidateParams):
    sort: Literal["price", "latency", "throughput"] | None = None
    max_price: MaxPrice | None = None
    outage_window_s: float = Field(30.0, ge=0)  # a failure this recent marks a provider unstable
    output_tokens_prior: int = Field(256, ge=1)


@register("openrouter")
class OpenRouter(BasePolicy):
    Params = OpenRouterParams
    description = "OpenRouter provider routing: stable providers first, picked with probability ~ 1/price^2; sort and max_price."
    reads = frozenset()

    def __init__(self, seed: int | None = None, **params):
        self.p = self.Params(**params)
        self.rng = random.Random(seed)
        self.output_tokens = OutputTokens(self.p.output_tokens_prior)

    def _affordable(self, m: ModelStatus) -> bool:
        cap = self.p.max_price
        return cap is None or ((cap.input_per_mtok is None or m.input_per_mtok <= cap.input_per_mtok)
                               and (cap.output_per_mtok is None or m.output_per_mtok <= cap.output_per_mtok))

    def _stable(self, m: ModelStatus, now: float) -> bool:
        return m.healthy and (m.last_failure_s is None or now - m.last_failure_s > self.p.outage_window_s)

    def route(self, request: Request, view: RouterView) -> Decision:
        pool = [m for m in candidate_models(view, self.p.models) if self._affordable(m)]
        if not pool:
            return Decision((), "openrouter: no model under max_price")
        n_out = self.output_tokens.expected(request.workload)
        price = {m.name: m.cost_usd(request.input_tokens, n_out) for m in pool}
        stable = [m for m in pool if self._stable(m, view.now_s)]
        unstable = [m for m in pool if not self._stable(m, view.now_s)]
        if self.p.sort is not None:
            key = {"price": lambda m: price[m.name],
                   "latency": lambda m: m.ttft_ewma_s if m.ttft_ewma_s is not None else m.ttft_prior_s,
                   "throughput": lambda m: -(m.tokens_per_s_ewma or m.tokens_per_s_prior)}[self.p.sort]
            order = sorted(stable, key=key) + sorted(unstable, key=key)
            return Decision(tuple(m.name for m in order), f"openrouter: sorted by {self.p.sort}")
        order = []
        remaining = list(stable)
        while remaining:  # 1/price^2 weighted sampling without replacement
            weights = [1.0 / max(price[m.name], 1e-12) ** 2 for m in remaining]
            order.append(remaining.pop(self.rng.choices(range(len(remaining)), weights=weights)[0]))
        order += sorted(unstable, key=lambda m: price[m.name])
        return Decision(tuple(m.name for m in order), "openrouter: 1/price^2 among stable providers")

    def observe(self, request: Request, outcome: Outcome) -> None:
        self.output_tokens.observe(request, outcome)


class FloorParams(CandidateParams):
    floor: float = Field(0.9, gt=0, lt=1)  # minimum prior chance of an acceptable answer
    workload_floors: dict[str, float] = {}
    output_tokens_prior: int = Field(256, ge=1)


@register("cheapest-above-floor")
class CheapestAboveFloor(BasePolicy):
    """Quality is ``sigmoid(prior ability - difficulty estimate)``; models below
    the floor follow, best quality first, as fallbacks."""

    Params = FloorParams
    description = "The cheapest model whose prior quality for the workload meets a floor."
    reads = frozenset({QUALITY_BELIEF, DIFFICULTY_SIGNAL})

    def __init__(self, **params):
        self.p = self.Params(**params)
        self.output_tokens = OutputTokens(self.p.output_tokens_prior)

    def route(self, request: Request, view: RouterView) -> Decision:
        floor = self.p.workload_floors.get(request.workload, self.p.floor)
        d = request.difficulty_estimate or 0.0
        n_out = self.output_tokens.expected(request.workload)
        models = candidate_models(view, self.p.models)
        rated = [(m, sigmoid((m.quality_for(request.workload) or 0.0) - d), m.cost_usd(request.input_tokens, n_out))
                 for m in models]
        above = sorted((r for r in rated if r[1] >= floor), key=lambda r: (not r[0].healthy, r[2]))
        below = sorted((r for r in rated if r[1] < floor), key=lambda r: (not r[0].healthy, -r[1]))
        reason = (f"cheapest with quality >= {floor:g}" if above
                  else f"no model reaches {floor:g}: best quality first")
        return Decision(tuple(r[0].name for r in above + below), reason)

    def observe(self, request: Request, outcome: Outcome) -> None:
        self.output_tokens.observe(request, outcome)

