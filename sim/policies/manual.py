"""``manual``: a hand-made table of one model per workload (endpoint)."""

from __future__ import annotations

from pydantic import field_validator

from .base import BasePolicy, Decision, Request, RouterView
from .params import PolicyParams, register


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class ManualParams(PolicyParams):
    routes: dict[str, str | list[str]]  # workload -> model, or [model, fallback, ...]
    default: str | list[str] | None = None  # for workloads without a route
    fallbacks: list[str] = []  # tried after the route's own models, for every workload

    @field_validator("routes")
    @classmethod
    def _non_empty(cls, value):
        if not value:
            raise ValueError("needs at least one route")
        for workload, models in value.items():
            if not _as_list(models):
                raise ValueError(f"route for '{workload}' names no model")
        return value

    def referenced_models(self):
        refs = []
        for workload, models in self.routes.items():
            refs += [(m, ("routes", workload) if isinstance(models, str) else ("routes", workload, i))
                     for i, m in enumerate(_as_list(models))]
        if self.default is not None:
            refs += [(m, ("default",)) for m in _as_list(self.default)]
        refs += [(m, ("fallbacks", i)) for i, m in enumerate(self.fallbacks)]
        return refs

    def workload_problems(self, workloads):
        if self.default is not None:
            return []
        missing = [w for w in workloads if w not in self.routes]
        if not missing:
            return []
        return [(("routes",), f"no route for workload(s) {', '.join(missing)} of the trace, and no 'default'")]


@register("manual")
class ManualPolicy(BasePolicy):
    """Looks the request's workload up in the table; unknown workloads use ``default``."""

    Params = ManualParams
    description = "A model per workload from a hand-made table, with optional fallbacks."
    reads = frozenset()

    def __init__(self, **params):
        p = self.Params(**params)
        self._decisions = {w: self._decision(_as_list(m), f"manual: route for '{w}'", p.fallbacks)
                           for w, m in p.routes.items()}
        self._default = (None if p.default is None
                         else self._decision(_as_list(p.default), "manual: default route", p.fallbacks))

    @staticmethod
    def _decision(models: list[str], reason: str, fallbacks: list[str]) -> Decision:
        return Decision(tuple(dict.fromkeys(models + fallbacks)), reason)

    def route(self, request: Request, view: RouterView) -> Decision:
        decision = self._decisions.get(request.workload, self._default)
        if decision is None:
            raise LookupError(f"no route for workload '{request.workload}' and no default")
        return decision
