"""What each policy's router believes, drawn from the truth and the scenario's
``router_knowledge``: the quality of each model per workload, and each request's
difficulty signal. (Feedback on answers is ``world/feedback.py``.)

Believed ability = true ability + sd x z for models the scenario gives no
``quality_prior`` (which is used as given: a leaderboard's figures). The
standard normals z are drawn per replication, keyed by the model's and the
workload's names, and shared by every policy: two policies with the same noise
believe the same thing, and one with half the noise believes the same errors at
half the size. The difficulty signal works alike, z keyed by request.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, NamedTuple

import numpy as np

from .models import ModelTable
from .feedback import Channel, channel_uniforms
from .feedback import channels as feedback_channels
from sim.rng import Stream, generator, name_key
from sim.scenario.load import Scenario
from sim.scenario.schema.knowledge import KnowledgeSpec

DEFAULT_KEY = "default"  # a quality mapping's entry for workloads it does not name


class RouterBeliefs(NamedTuple):
    """Everything a policy's router is given beyond its own observations and the prices."""

    quality: list[Mapping[str, float]]  # per model (catalog order): believed ability per workload
    difficulty_estimate: np.ndarray | None  # per request; None: no difficulty signal
    feedback: list[Channel]  # the channels that score its answers


def quality_noise(model: str, workload: str, seed: int, replication: int) -> float:
    """The standard normal behind the belief about ``model`` on ``workload``."""
    rng = generator(seed, replication, Stream.BELIEF, name_key(model), name_key(workload))
    return float(rng.standard_normal())


def believed_quality(scenario: Scenario, catalog: ModelTable, noise_sd: float, seed: int,
                     replication: int) -> list[MappingProxyType]:
    """Per model (catalog order), the ability per workload the router believes."""
    beliefs = []
    for m, name in enumerate(catalog.names):
        spec = scenario.models[name]
        if spec.quality_prior is not None:
            beliefs.append(MappingProxyType(dict(spec.quality_prior)))
            continue
        truth = {workload: float(catalog.ability[m, w]) for w, workload in enumerate(catalog.workloads)}
        if DEFAULT_KEY in spec.quality:
            truth[DEFAULT_KEY] = float(spec.quality[DEFAULT_KEY])
        if noise_sd > 0:
            truth = {w: value + noise_sd * quality_noise(name, w, seed, replication) for w, value in truth.items()}
        beliefs.append(MappingProxyType(truth))
    return beliefs


def difficulty_noise(n_requests: int, seed: int, replication: int) -> np.ndarray:
    """The standard normals behind each request's difficulty signal, shared by every policy."""
    return generator(seed, replication, Stream.FEATURES).standard_normal(n_requests)


def difficulty_estimate(difficulty: np.ndarray, noise: np.ndarray, noise_sd: float | None) -> np.ndarray | None:
    """The difficulty signal a router with this noise has (None: no signal)."""
    if noise_sd is None:
        return None
    return difficulty + noise_sd * noise


class SharedDraws:
    """One replication's draws behind every policy's beliefs, made once and shared
    (common random numbers): the noise of believed quality and of the difficulty
    signal, and the feedback channels' uniforms. Each policy scales them by its own
    ``router_knowledge``."""

    def __init__(self, scenario: Scenario, catalog: ModelTable, difficulty: np.ndarray, seed: int, replication: int):
        self.scenario, self.catalog, self.difficulty = scenario, catalog, difficulty
        self.seed, self.replication = seed, replication
        self._uniforms: dict[str, tuple[list[float], list[float]]] = {}

    def beliefs_of(self, policy: str) -> RouterBeliefs:
        knowledge = self.scenario.knowledge_for(policy)
        quality = believed_quality(self.scenario, self.catalog, knowledge.quality_noise_sd, self.seed, self.replication)
        estimate = None
        if knowledge.difficulty_noise_sd is not None:
            # Drawn again for each policy, the same numbers every time (one stream): kept between
            # policies they would be 80 MB a ten million requests for the whole replication.
            noise = difficulty_noise(len(self.difficulty), self.seed, self.replication)
            estimate = difficulty_estimate(self.difficulty, noise, knowledge.difficulty_noise_sd)
        return RouterBeliefs(quality, estimate, feedback_channels(knowledge.feedback, self._channel_uniforms))

    def _channel_uniforms(self, name: str) -> tuple[list[float], list[float]]:
        if name not in self._uniforms:
            scored, correct = channel_uniforms(name, len(self.difficulty), self.seed, self.replication)
            self._uniforms[name] = (scored.tolist(), correct.tolist())
        return self._uniforms[name]


def describe(scenario: Scenario, policy: str) -> dict[str, str]:
    """What a policy knew, in words, for the report's method section."""
    from sim.policies.base import ANSWER_FEEDBACK, DIFFICULTY_SIGNAL, QUALITY_BELIEF, knowledge_read_by
    from sim.policies.registry import resolve

    knowledge: KnowledgeSpec = scenario.knowledge_for(policy)
    cls = resolve(scenario.policies[policy].kind)
    reads = knowledge_read_by(cls)
    given = [name for name, spec in scenario.models.items() if spec.quality_prior is not None]
    drawn = [name for name in scenario.models if name not in given]
    parts = []
    if drawn:
        parts.append("exact truth" if knowledge.quality_noise_sd == 0 else
                     f"truth + N(0, {knowledge.quality_noise_sd:g}) per model and workload")
    if given:
        parts.append(f"given in the scenario for {', '.join(given)}")
    quality = "; ".join(parts)
    sd = knowledge.difficulty_noise_sd
    difficulty = "none" if sd is None else ("exact truth" if sd == 0 else f"truth + N(0, {sd:g})")
    channels = knowledge.feedback.channels()
    feedback = "none" if not channels else "; ".join(
        f"{name}: {c.share:.0%} of answers, {c.accuracy:.0%} accurate, after {c.delay_s:g} s"
        for name, c in channels.items())
    if getattr(cls, "upper_bound", False):
        truth = "ground truth: each request's true outcome on every model"
        return {"quality": truth, "difficulty": truth, "feedback": truth, "exact_truth": truth}
    return {"quality": quality if QUALITY_BELIEF in reads else f"not used ({quality})",
            "difficulty": difficulty if DIFFICULTY_SIGNAL in reads else f"not used ({difficulty})",
            "feedback": feedback if ANSWER_FEEDBACK in reads else f"not used ({feedback})",
            "exact_truth": "; ".join(scenario.exact_truth(policy))}
