"""``oracle``: the unreachable upper bound — harness only.

It knows each request's true outcome on every model (the simulator hands it
that through ``bind_ground_truth``; no production router can) and picks the
cheapest model that would return an acceptable answer; when none would, the
cheapest that answers at all; the rest follow by cost. Reports mark it as an
upper bound and never offer it as a candidate or baseline.

Its knowledge is each model's first attempt at the request's arrival time:
outages and error draws, context windows, latency against the router's timeout,
and whether the answer would be acceptable. Queues, rate limits and retries
depend on the traffic and are not foreseen.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

from .base import BasePolicy, Decision, Request, RouterView
from .common import CandidateParams, candidate_models
from .params import register


class TrueOutcome(NamedTuple):
    """What the first attempt of a request on one model would do."""

    answers: bool  # an answer within the timeout
    acceptable: bool  # that answer would be acceptable
    cost_usd: float  # its charge, at the price in force at arrival


#: The harness's hook: each model's true outcome for a request.
GroundTruth = Callable[[Request], Mapping[str, TrueOutcome]]


class OracleParams(CandidateParams):
    pass


@register("oracle")
class Oracle(BasePolicy):
    Params = OracleParams
    description = ("Upper bound (simulation only): knows each request's true outcome and picks the cheapest model "
                   "that succeeds; never a candidate for production.")
    #: Reports mark a policy with this attribute as an unreachable upper bound.
    upper_bound = True
    reads = frozenset()

    def __init__(self, **params):
        self.p = self.Params(**params)
        self._truth: GroundTruth | None = None

    def bind_ground_truth(self, truth: GroundTruth) -> None:
        self._truth = truth

    def route(self, request: Request, view: RouterView) -> Decision:
        if self._truth is None:
            raise RuntimeError("the oracle needs the simulator's ground truth; it cannot route real traffic")
        truth = self._truth(request)
        names = [m.name for m in candidate_models(view, self.p.models)]
        # Acceptable answers first, then any answer, then the rest; cheapest first within each.
        names.sort(key=lambda n: (not (truth[n].answers and truth[n].acceptable), not truth[n].answers,
                                  truth[n].cost_usd))
        return Decision(tuple(names), "oracle")
