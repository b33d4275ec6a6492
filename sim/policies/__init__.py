"""Routing policies: production code that must not import simpy or the simulator.

``from sim.policies import Request, RouterView, Decision`` is all a policy needs.
"""

from .base import BasePolicy, Decision, Judge, ModelStatus, Outcome, Policy, Request, RouterView, sigmoid
from .registry import PolicyParams, available, build, register, resolve

__all__ = [
    "BasePolicy", "Decision", "Judge", "ModelStatus", "Outcome", "Policy", "Request", "RouterView", "sigmoid",
    "PolicyParams", "available", "build", "register", "resolve",
]
