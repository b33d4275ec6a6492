"""What a built-in policy module needs of the registry, and nothing else: the base of
parameter models, the ``@register`` decorator and the table it fills, and how a policy class
is constructed. A leaf: the registry imports the policy modules, the policy modules import
this, so neither imports the other."""

from __future__ import annotations

import copy
import inspect
from typing import Any

from pydantic import BaseModel, ConfigDict

_BUILTINS: dict[str, type] = {}  # filled as the built-in modules are imported (registry._load_builtins)


class PolicyParams(BaseModel):
    """Base of built-in policies' parameter models."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=True)  # as the scenario

    def referenced_models(self) -> list[tuple[str, tuple]]:
        """(model name, field path) for every model name these parameters mention."""
        return []

    def workload_problems(self, workloads: list[str]) -> list[tuple[tuple, str]]:
        """(field path, message) for what these parameters cannot handle among the
        trace's ``workloads``; checked before a run."""
        return []


def register(name: str):
    """Class decorator that makes a built-in policy available by ``name``."""

    def wrap(cls: type) -> type:
        _BUILTINS[name] = cls
        cls.kind = name
        return cls

    return wrap


def builtin(name: str) -> type:
    """The built-in policy class registered as ``name`` (its module imported already)."""
    return _BUILTINS[name]


def construct(cls: type, params: dict[str, Any], seed: int | None = None):
    """``cls(**params)``, with ``seed`` when its constructor declares one; the parameters are
    copied, so a constructor that mutates them cannot change the scenario."""
    kwargs = copy.deepcopy(params)
    if seed is not None and _accepts(cls, "seed"):
        kwargs["seed"] = seed
    return cls(**kwargs)


def _accepts(cls: type, name: str) -> bool:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return name in params  # declared by name: a **kwargs catch-all is not an opt-in
