"""Policy names -> classes: built-ins by name, ``"pkg.module:Class"`` import
paths, and the ``routesim.policies`` entry-point group for installed plug-ins."""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from .base import POLICY_FAILURES
from .params import _BUILTINS, PolicyParams, construct, register  # noqa: F401 - re-exported: sim.policies' API

ENTRY_POINT_GROUP = "routesim.policies"


class PolicyConfigError(Exception):
    """Problems with a policy's kind or parameters: (field path, message) pairs."""

    def __init__(self, problems: list[tuple[tuple, str]]):
        self.problems = problems
        super().__init__("; ".join(m for _, m in problems))


def available() -> tuple[dict[str, type], dict[str, str]]:
    """Built-ins and installed plug-ins by name, and the plug-ins that failed to load with
    why (``routesim policies`` lists both; this imports every plug-in)."""
    _load_builtins()
    found, broken = dict(_BUILTINS), {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in found:
            try:
                found[ep.name] = _policy_class(ep.load(), f"entry point '{ep.name}'")
            except PolicyConfigError as exc:  # loaded, but not a policy class
                broken[ep.name] = str(exc)
            except POLICY_FAILURES as exc:  # a broken plug-in is reported, and must not hide the others
                broken[ep.name] = f"{ep.value} failed to load: {type(exc).__name__}: {exc}"
    return found, broken


def is_builtin(kind: str) -> bool:
    """A policy shipped with routesim: a crash inside it is our bug, not bad input."""
    _load_builtins()
    return kind in _BUILTINS


def known_names() -> list[str]:
    """Built-in and plug-in names, without importing any plug-in (for error messages)."""
    _load_builtins()
    return sorted(set(_BUILTINS) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def resolve(kind: str) -> type:
    """The class for ``kind``; raises ``PolicyConfigError`` naming what is wrong.

    An import path imports its module (as a pytest plug-in would), so a scenario
    naming one runs that module's code; what it names must then be a class with a
    ``route`` method, which is checked before anything is called.
    """
    _load_builtins()
    if kind in _BUILTINS:
        return _BUILTINS[kind]
    if ":" in kind:
        module_name, _, attr = kind.partition(":")
        try:
            module = importlib.import_module(module_name)
        except POLICY_FAILURES as exc:
            raise PolicyConfigError([((), f"cannot import module '{module_name}' for policy kind '{kind}': "
                                          f"{type(exc).__name__}: {exc}")]) from None
        if not hasattr(module, attr):
            raise PolicyConfigError([((), f"module '{module_name}' has no '{attr}'")])
        return _policy_class(getattr(module, attr), f"'{kind}'")
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=kind):
        try:
            loaded = ep.load()
        except POLICY_FAILURES as exc:
            raise PolicyConfigError([((), f"entry point '{kind}' failed to load: {type(exc).__name__}: {exc}")]) from None
        return _policy_class(loaded, f"entry point '{kind}'")
    raise PolicyConfigError([((), f"unknown policy kind '{kind}' (available: {', '.join(known_names())}; "
                                  "or 'package.module:Class')")])


def _policy_class(obj: Any, what: str) -> type:
    """``obj`` if it is a class with a ``route`` method; nothing else is ever called."""
    if not isinstance(obj, type):
        kind = "module" if inspect.ismodule(obj) else "function" if callable(obj) else type(obj).__name__
        raise PolicyConfigError([((), f"{what} is a {kind}, not a policy class (a class with a "
                                      "route(request, view) method)")])
    if not callable(getattr(obj, "route", None)):
        raise PolicyConfigError([((), f"{what} is a class without a route(request, view) method, not a policy")])
    return obj


def validate_params(kind: str, params: dict[str, Any]) -> list[tuple[str, tuple]]:
    """Check ``params`` for ``kind`` without constructing the policy.

    Returns the model names the parameters reference, for the scenario to check.
    """
    cls = resolve(kind)
    params_model = getattr(cls, "Params", None)
    if params_model is not None:
        try:
            return params_model.model_validate(params).referenced_models()
        except ValidationError as exc:
            from sim.errors import describe_error, error_location

            raise PolicyConfigError([(error_location(params, tuple(e["loc"])), describe_error(e)) for e in exc.errors()]) from None
    # A user class without a Params model: check the names against its constructor.
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as exc:
        raise PolicyConfigError([((), f"parameters do not fit {cls.__name__}: {exc}")]) from None
    except ValueError:
        pass  # no signature to check against (a builtin or C class)
    return []


def workload_problems(kind: str, params: dict[str, Any], workloads: list[str]) -> list[tuple[tuple, str]]:
    """What a built-in policy's parameters cannot handle among the trace's workloads."""
    params_model = getattr(resolve(kind), "Params", None)
    if params_model is None:
        return []
    return params_model.model_validate(params).workload_problems(workloads)


def build(kind: str, params: dict[str, Any], seed: int | None = None):
    """Construct the policy; a ``seed`` is passed when the constructor accepts one."""
    return construct(resolve(kind), params, seed)


def _load_builtins() -> None:
    # Importing the modules runs their @register decorators.
    from . import (bandit, cascade, litellm, litellm_router, manual, openrouter, oracle, replay, static, threshold,  # noqa: F401
                   weighted)
