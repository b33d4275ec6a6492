"""Routing policies: production code that must not import simpy or the simulator.

``from sim.policies import Request, RouterView, Decision`` is all a policy needs.
"""

from .base import (ALL_KNOWLEDGE, ANSWER_FEEDBACK, DIFFICULTY_SIGNAL, LOGGED_ROUTING, QUALITY_BELIEF, BasePolicy,
                   Decision, Feedback, Judge, ModelStatus, Outcome, Policy, Request, RouterView, knowledge_read_by,
                   sigmoid)
from .registry import PolicyParams, available, build, register, resolve

__all__ = [
    "BasePolicy", "Decision", "Feedback", "Judge", "ModelStatus", "Outcome", "Policy", "Request", "RouterView", "sigmoid",
    "ALL_KNOWLEDGE", "ANSWER_FEEDBACK", "DIFFICULTY_SIGNAL", "LOGGED_ROUTING", "QUALITY_BELIEF", "knowledge_read_by",
    "PolicyParams", "available", "build", "register", "resolve",
]
