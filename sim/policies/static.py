"""``static``: one model everywhere (the usual baseline), with optional fallbacks."""

from __future__ import annotations

from .base import BasePolicy, Decision, Request, RouterView
from .params import PolicyParams, register


class StaticParams(PolicyParams):
    model: str
    fallbacks: list[str] = []

    def referenced_models(self):
        return [(self.model, ("model",))] + [(m, ("fallbacks", i)) for i, m in enumerate(self.fallbacks)]


@register("static")
class StaticPolicy(BasePolicy):
    """Every request goes to one model; the fallbacks, if any, follow in order."""

    Params = StaticParams
    description = "One model for every request, then the listed fallbacks."
    reads = frozenset()

    def __init__(self, **params):
        p = self.Params(**params)
        # The decision never changes, so it is built once.
        self._decision = Decision(tuple(dict.fromkeys([p.model, *p.fallbacks])), f"static: {p.model}")

    def route(self, request: Request, view: RouterView) -> Decision:
        return self._decision
