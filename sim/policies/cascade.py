"""``cascade``: FrugalGPT's LLM cascade.

The request goes to the cheapest stage first; a judge (a scorer of answers)
accepts the answer or rejects it, and a rejected answer is escalated to the next
stage, up to the last, whose answer is returned unjudged. Every stage's cost and
latency, and the judge's, count against the request. The stages are the listed
``models`` in the order given, or when none are listed every model the router
has, cheapest first for this request at the prices in force. The router turns
the decision's ``judge`` into verdicts (see ``Judge``); stages behind an open
breaker or in cooldown are left for last.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import BasePolicy, Decision, Judge, Request, RouterView
from .common import CandidateParams, candidate_models
from .estimates import OutputTokens
from .params import PolicyParams, register


class JudgeParams(PolicyParams):
    name: str = "judge"
    accuracy: float = Field(0.9, ge=0, le=1)  # both error rates at once
    accept_good: float | None = Field(None, ge=0, le=1)  # chance to accept an acceptable answer (default: accuracy)
    reject_bad: float | None = Field(None, ge=0, le=1)  # chance to reject an unacceptable one (default: accuracy)
    cost_usd: float = Field(0.0, ge=0)  # per judged answer
    latency_s: float = Field(0.0, ge=0)

    def judge(self) -> Judge:
        return Judge(self.name, self.accuracy if self.accept_good is None else self.accept_good,
                     self.accuracy if self.reject_bad is None else self.reject_bad, self.cost_usd, self.latency_s)


class CascadeParams(CandidateParams):
    judge: JudgeParams = JudgeParams()
    order: str = Field("price", pattern="^(price|given)$")  # cheapest first, or the order of ``models``
    output_tokens_prior: int = Field(256, gt=0)  # for the cost order until answers are observed

    @model_validator(mode="after")
    def _given_needs_models(self):
        if self.order == "given" and not self.models:
            raise ValueError("order 'given' needs the stages listed in 'models'")
        return self


@register("cascade")
class Cascade(BasePolicy):
    Params = CascadeParams
    description = "FrugalGPT cascade: cheapest model first, escalate when a judge of given accuracy rejects the answer."
    reads = frozenset()

    @classmethod
    def exact_truth_in(cls, params: dict) -> list[str]:
        """A judge that never errs hands the cascade the truth about every answer."""
        judge = cls.Params(**params).judge.judge()
        if judge.accept_good == 1 and judge.reject_bad == 1:
            return ["whether each answer is acceptable (a judge with accept_good and reject_bad 1)"]
        return []

    def __init__(self, **params):
        self.p = self.Params(**params)
        self.judge = self.p.judge.judge()
        self._output = OutputTokens(self.p.output_tokens_prior)
        self._decisions: dict[tuple[str, ...], Decision] = {}  # few distinct orders: build each once

    def route(self, request: Request, view: RouterView) -> Decision:
        stages = list(candidate_models(view, self.p.models))
        if self.p.order == "price":
            output = self._output.expected(request.workload)
            stages.sort(key=lambda s: s.cost_usd(request.input_tokens, output))
        # Healthy stages first (a stable sort keeps their order); the router would skip the others anyway.
        stages.sort(key=lambda s: not s.healthy)
        names = tuple(s.name for s in stages)
        decision = self._decisions.get(names)
        if decision is None:
            decision = self._decisions[names] = Decision(names, "cascade: " + " > ".join(names), self.judge)
        return decision

    def observe(self, request, outcome) -> None:
        self._output.observe(request, outcome)
