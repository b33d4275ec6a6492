"""What a policy can estimate about a request before it is answered."""

from __future__ import annotations

from .base import Outcome, Request


class OutputTokens:
    """Expected output length per workload: the mean of answers observed so far
    (the true length is only known once the answer arrives), ``prior`` until then."""

    def __init__(self, prior: float):
        self.prior = float(prior)
        self._sum: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def expected(self, workload: str) -> float:
        count = self._count.get(workload)
        return self._sum[workload] / count if count else self.prior

    def observe(self, request: Request, outcome: Outcome) -> None:
        if outcome.status == "ok":
            w = request.workload
            self._sum[w] = self._sum.get(w, 0.0) + outcome.output_tokens
            self._count[w] = self._count.get(w, 0) + 1
