"""Pieces several built-in policies share."""

from __future__ import annotations

from typing import Sequence

from .base import ModelStatus, RouterView
from .params import PolicyParams


class CandidateParams(PolicyParams):
    """Parameters of a policy that chooses among ``models`` (all the router's when omitted)."""

    models: list[str] | None = None

    def referenced_models(self):
        return [(m, ("models", i)) for i, m in enumerate(self.models or [])]


def candidate_models(view: RouterView, names: list[str] | None) -> Sequence[ModelStatus]:
    """The view's models, or the named ones it has (a model not launched yet is absent)."""
    if names is None:
        return view.models
    return [view.model(name) for name in names if name in view.positions]
