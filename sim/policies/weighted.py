"""``weighted``: per-request multi-criteria routing with automatic fallbacks.

Each candidate model gets a score from four criteria, each normalised to (0, 1]
against the best candidate for this request (so a weight says how much a
criterion matters, whatever its units):

- cost: this request's estimated cost at the published price (cheapest / this);
- quality: the prior chance of an acceptable answer, ``sigmoid(ability - d)``
  with ``d`` the request's difficulty estimate (0 when none), over the best;
- latency: expected latency for the estimated output (observed when the router
  has observations, else the published prior), fastest / this;
- carbon: estimated grams CO2e (lowest / this), when weighted.

Candidates are ordered by score, so the runners-up are the fallbacks. Models the
router reports unhealthy go last, and so do models whose context window the
request would likely overflow; models it certainly overflows are left out.
Output length is not known before the answer, so it is estimated per workload
from the answers observed so far (``output_tokens_prior`` until the first).
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from .base import DIFFICULTY_SIGNAL, QUALITY_BELIEF, BasePolicy, Decision, Outcome, Request, RouterView
from .common import CandidateParams
from .estimates import OutputTokens
from .params import PolicyParams, register


class Weights(PolicyParams):
    cost: float = Field(0.0, ge=0)
    quality: float = Field(0.0, ge=0)
    latency: float = Field(0.0, ge=0)
    carbon: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _some_weight(self):
        if self.cost + self.quality + self.latency + self.carbon <= 0:
            raise ValueError("at least one weight must be > 0")
        return self

    def normalised(self) -> tuple[float, float, float, float]:
        total = self.cost + self.quality + self.latency + self.carbon
        return (self.cost / total, self.quality / total, self.latency / total, self.carbon / total)


class WeightedParams(CandidateParams):
    weights: Weights = Weights(cost=0.5, quality=0.4, latency=0.1)
    workload_weights: dict[str, Weights] = {}  # per-workload overrides
    output_tokens_prior: int = Field(256, ge=1)


@register("weighted")
class WeightedPolicy(BasePolicy):
    Params = WeightedParams
    description = "Scores every model on cost, quality, latency (and carbon) per request; runners-up are fallbacks."
    reads = frozenset({QUALITY_BELIEF, DIFFICULTY_SIGNAL})

    def __init__(self, **params):
        p = self.Params(**params)
        self._weights = p.weights.normalised()
        self._workload_weights = {w: ws.normalised() for w, ws in p.workload_weights.items()}
        self._allowed = None if p.models is None else frozenset(p.models)
        self.output_tokens = OutputTokens(p.output_tokens_prior)

    def expected_output_tokens(self, workload: str) -> float:
        return self.output_tokens.expected(workload)

    def route(self, request: Request, view: RouterView) -> Decision:
        # Hot path: it runs once per simulated request (and per live request in
        # production), so ModelStatus's helpers (quality_for, cost_usd,
        # expected_latency_s) are inlined here; keep them in step.
        workload = request.workload
        w_cost, w_quality, w_latency, w_carbon = self._workload_weights.get(workload, self._weights)
        n_in = request.input_tokens
        n_out = self.output_tokens.expected(workload)
        difficulty = request.difficulty_estimate or 0.0
        allowed = self._allowed
        exp = math.exp
        rows = []
        best_cost = best_latency = best_carbon = math.inf
        best_quality = 0.0
        for m in view.models:
            context = m.context_window
            if n_in > context or (allowed is not None and m.name not in allowed):
                continue  # certain to overflow, or not a candidate
            prior = m.quality_prior
            ability = prior.get(workload)
            if ability is None:
                ability = prior.get("default", 0.0)
            x = ability - difficulty
            quality = 1.0 / (1.0 + exp(-x)) if x > -700.0 else 0.0  # sigmoid, without overflow
            cost = n_in * m.input_per_mtok + n_out * m.output_per_mtok  # USD x 1e6: only ratios matter
            ttft = m.ttft_ewma_s
            if ttft is None:
                ttft = m.ttft_prior_s
            speed = m.tokens_per_s_ewma
            if speed is None:
                speed = m.tokens_per_s_prior
            latency = ttft + n_out / speed
            carbon = (n_in + n_out) * (m.carbon_g_per_mtok or 0.0)
            # Usable first (healthy and likely to fit), then by score: the sort key's first part.
            rows.append((not (m.healthy and n_in + n_out <= context), m.name, cost, quality, latency, carbon))
            if cost < best_cost:
                best_cost = cost
            if quality > best_quality:
                best_quality = quality
            if latency < best_latency:
                best_latency = latency
            if carbon < best_carbon:
                best_carbon = carbon
        if not rows:
            return Decision((), "weighted: no model can take this request")
        tiny = 1e-12
        best_cost = w_cost * (best_cost + tiny)
        best_quality += tiny
        best_latency = w_latency * (best_latency + tiny)
        best_carbon = w_carbon * (best_carbon + tiny)
        scored = []
        for unusable, name, cost, quality, latency, carbon in rows:
            # The documented formula; the weights of cost and latency are folded into their bests.
            score = best_cost / (cost + tiny) + w_quality * quality / best_quality + best_latency / (latency + tiny)
            if w_carbon:
                score += best_carbon / (carbon + tiny)
            scored.append((unusable, -score, name))
        scored.sort()
        # A short string, not a dict: it is kept for every request of a run.
        if len(scored) > 1:
            reason = f"weighted: score {-scored[0][1]:.3f}, next {scored[1][2]} {-scored[1][1]:.3f}"
        else:
            reason = f"weighted: score {-scored[0][1]:.3f}, only candidate"
        return Decision(tuple([s[2] for s in scored]), reason)

    def observe(self, request: Request, outcome: Outcome) -> None:
        self.output_tokens.observe(request, outcome)
