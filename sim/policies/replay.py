"""``replay``: production's own routing, as its logs show it, for a backtest.

Each request goes first to the deployments production tried for it, in order
(``Request.logged_route``, from a trace made by ``routesim import litellm-logs``),
then to the deployments the logs show production falling back to after the last
of those failed (``fallbacks``, counted over the whole log by the importer). A
deployment retried in the logs is tried once here; a scenario whose proxy
retried gives the router a ``router.retry``.

It decides nothing itself: it is the yardstick the simulator is checked against
(a backtest reproduces the logged bill, failures and latencies with it) before
the scenario's other policies are compared on the same calibrated world.
"""

from __future__ import annotations

from .base import LOGGED_ROUTING, BasePolicy, Decision, Request, RouterView
from .params import PolicyParams, register


class ReplayParams(PolicyParams):
    #: deployment -> the deployments production tried after it failed, most often first
    fallbacks: dict[str, list[str]] = {}

    def referenced_models(self):
        refs = []
        for deployment, after in self.fallbacks.items():
            refs.append((deployment, ("fallbacks", deployment)))
            refs += [(m, ("fallbacks", deployment, i)) for i, m in enumerate(after)]
        return refs


@register("replay")
class ReplayPolicy(BasePolicy):
    """The logged route, then the logged fallbacks of its last deployment."""

    Params = ReplayParams
    description = "Production's logged routing (a backtest's yardstick): the route each request took, then the fallbacks the logs show."
    reads = frozenset({LOGGED_ROUTING})

    def __init__(self, **params):
        self._fallbacks = self.Params(**params).fallbacks
        self._decisions: dict[tuple[str, ...], Decision] = {}  # one per distinct logged route

    def route(self, request: Request, view: RouterView) -> Decision:
        decision = self._decisions.get(request.logged_route)
        if decision is None:
            if not request.logged_route:
                raise LookupError(f"request {request.request_id} has no logged route: replay needs a trace made by "
                                  "routesim import litellm-logs")
            tried = list(dict.fromkeys(request.logged_route))
            candidates = tuple(dict.fromkeys(tried + self._fallbacks.get(tried[-1], [])))
            decision = self._decisions[request.logged_route] = Decision(candidates, "replay: as logged")
        return decision
