"""``threshold``: RouteLLM's strong/weak split on a difficulty estimate.

A request whose difficulty estimate reaches the threshold goes to the strong
model first, the rest to the weak one (each is the other's fallback). RouteLLM
calibrates the threshold offline so that a target share of calls goes to the
strong model; here it is calibrated online the same way, as the
(1 - strong_share) quantile of the estimates seen recently (``threshold`` until
``warmup`` estimates have been seen). Requests without an estimate go strong. Each decision's reason carries the
estimate as its ``score``, from which the report draws the routing curve.
"""

from __future__ import annotations

from collections import deque

from pydantic import Field

from .base import DIFFICULTY_SIGNAL, BasePolicy, Decision, Request, RouterView
from .params import PolicyParams, register


class ThresholdParams(PolicyParams):
    strong: str
    weak: str
    strong_share: float = Field(0.3, ge=0, le=1)  # target share of calls to the strong model
    threshold: float = 0.0  # used until the calibration has enough estimates
    window: int = Field(2000, ge=10)  # recent estimates the calibration uses
    warmup: int = Field(50, ge=1)

    def referenced_models(self):
        return [(self.strong, ("strong",)), (self.weak, ("weak",))]


@register("threshold")
class Threshold(BasePolicy):
    Params = ThresholdParams
    description = "RouteLLM-style strong/weak split on the difficulty estimate, calibrated to a share of strong calls."
    reads = frozenset({DIFFICULTY_SIGNAL})

    def __init__(self, **params):
        self.p = self.Params(**params)
        self._recent: deque = deque(maxlen=self.p.window)
        self._threshold = self.p.threshold
        self._since_calibration = 0
        self._strong_first = (self.p.strong, self.p.weak)
        self._weak_first = (self.p.weak, self.p.strong)

    @property
    def threshold(self) -> float:
        return self._threshold

    def _calibrate(self) -> None:
        # Re-sorting every 50 requests keeps the quantile fresh at a small cost.
        ordered = sorted(self._recent)
        k = min(len(ordered) - 1, max(0, int(round((1 - self.p.strong_share) * len(ordered)))))
        self._threshold = ordered[k] if self.p.strong_share < 1 else float("-inf")

    def route(self, request: Request, view: RouterView) -> Decision:
        estimate = request.difficulty_estimate
        if estimate is None:
            return Decision(self._strong_first, "threshold: no difficulty estimate, strong model")
        self._recent.append(estimate)
        self._since_calibration += 1
        if len(self._recent) >= self.p.warmup and self._since_calibration >= 50:
            self._calibrate()
            self._since_calibration = 0
        # The score lets the report sweep the whole routing curve (APGR, AIQ).
        if estimate >= self._threshold:
            return Decision(self._strong_first, {"route": "strong", "threshold": self._threshold}, score=estimate)
        return Decision(self._weak_first, {"route": "weak", "threshold": self._threshold}, score=estimate)
