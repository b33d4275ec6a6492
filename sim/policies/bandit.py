"""``bandit``: learns, per workload, which model gives acceptable answers, from
the ``Feedback`` the scenario's channel delivers to ``observe()``, and trades
that against cost and latency.

Each (workload, model) keeps a Beta posterior over the chance of an acceptable
answer, updated by each verdict the feedback channel (a judge, user ratings)
delivers, when it delivers it; verdicts can be wrong, and without a channel the
posterior stays at the prior. A decision scores every model as

    sampled chance (Thompson) or upper confidence bound (UCB1)
    - cost weight x this request's estimated cost / the dearest model's
    - latency weight x expected latency / the slowest model's

Cost comes from the prices published now, so a price change shifts traffic at
once; a newly launched model starts from the prior and is explored. Ordered by
score: the runners-up are the fallbacks.
"""

from __future__ import annotations

import math
import random
from typing import Literal

from pydantic import Field

from .base import ANSWER_FEEDBACK, BasePolicy, Decision, Feedback, Outcome, Request, RouterView
from .common import CandidateParams, candidate_models
from .estimates import OutputTokens
from .params import register


class BanditParams(CandidateParams):
    algorithm: Literal["thompson", "ucb"] = "thompson"
    cost_weight: float = Field(0.5, ge=0)
    latency_weight: float = Field(0.0, ge=0)
    prior: tuple[float, float] = (1.0, 1.0)  # Beta(alpha, beta) before any feedback
    exploration: float = Field(1.0, ge=0)  # UCB's constant
    output_tokens_prior: int = Field(256, ge=1)


@register("bandit")
class Bandit(BasePolicy):
    Params = BanditParams
    description = "Learns per workload from feedback (Thompson sampling or UCB) and trades quality against cost and latency."
    reads = frozenset({ANSWER_FEEDBACK})

    def __init__(self, seed: int | None = None, **params):
        self.p = self.Params(**params)
        self.rng = random.Random(seed)
        self.output_tokens = OutputTokens(self.p.output_tokens_prior)
        self._wins: dict[tuple[str, str], float] = {}  # (workload, model) -> acceptable answers
        self._plays: dict[tuple[str, str], int] = {}
        self._total: dict[str, int] = {}  # per workload

    def chance(self, workload: str, model: str) -> float:
        """Thompson: a draw from the posterior; UCB: its mean plus the confidence bonus."""
        alpha0, beta0 = self.p.prior
        wins, plays = self._wins.get((workload, model), 0.0), self._plays.get((workload, model), 0)
        if self.p.algorithm == "thompson":
            return self.rng.betavariate(alpha0 + wins, beta0 + plays - wins)
        if plays == 0:
            return math.inf  # try every model once
        total = max(self._total.get(workload, 1), 1)
        return wins / plays + self.p.exploration * math.sqrt(2 * math.log(total) / plays)

    def route(self, request: Request, view: RouterView) -> Decision:
        models = [m for m in candidate_models(view, self.p.models) if request.input_tokens <= m.context_window]
        if not models:
            return Decision((), "bandit: no model can take this request")
        n_out = self.output_tokens.expected(request.workload)
        costs = {m.name: m.cost_usd(request.input_tokens, n_out) for m in models}
        latencies = {m.name: m.expected_latency_s(n_out) for m in models}
        dearest, slowest = max(costs.values()) or 1.0, max(latencies.values()) or 1.0
        scores = {m.name: self.chance(request.workload, m.name)
                  - self.p.cost_weight * costs[m.name] / dearest
                  - self.p.latency_weight * latencies[m.name] / slowest for m in models}
        order = sorted(models, key=lambda m: (not m.healthy, -scores[m.name]))
        return Decision(tuple(m.name for m in order), f"bandit ({self.p.algorithm}): {order[0].name}")

    def observe(self, request: Request, outcome: Outcome | Feedback) -> None:
        if not isinstance(outcome, Feedback):
            self.output_tokens.observe(request, outcome)
            return  # the request's end says nothing about its answer's quality
        key = (request.workload, outcome.model)
        self._wins[key] = self._wins.get(key, 0.0) + outcome.quality
        self._plays[key] = self._plays.get(key, 0) + 1
        self._total[request.workload] = self._total.get(request.workload, 0) + 1
