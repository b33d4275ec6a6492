"""Feedback channels: which answers a judge or user ratings score, whether each
verdict is right, and when it reaches the router.

The uniforms behind them are drawn per replication, keyed by the channel's name
and indexed by request, and shared by every policy (common random numbers): a
channel with a larger share scores a superset of the answers a smaller one
scores, and two policies with the same channel get the same verdicts on the
requests both answered with the same model.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.rng import Stream, generator, name_key
from sim.scenario.schema.knowledge import FeedbackSpec


class Channel(NamedTuple):
    name: str
    share: float
    accuracy: float
    delay_s: float
    scored_u: list[float]  # per request: scored when below the share
    correct_u: list[float]  # per request: the verdict is right when below the accuracy


def channel_uniforms(name: str, n_requests: int, seed: int, replication: int) -> tuple[np.ndarray, np.ndarray]:
    rng = generator(seed, replication, Stream.FEEDBACK, name_key(name))
    return rng.random(n_requests), rng.random(n_requests)


def channels(spec: FeedbackSpec, uniforms) -> list[Channel]:
    """The configured channels with their draws; ``uniforms(name)`` gives them (cached by the caller)."""
    out = []
    for name, channel in spec.channels().items():
        if channel.share > 0:
            scored, correct = uniforms(name)
            out.append(Channel(name, channel.share, channel.accuracy, channel.delay_s, scored, correct))
    return out


def verdict(channel: Channel, i: int, acceptable: float) -> float | None:
    """The channel's verdict on request ``i``'s answer (None: not scored)."""
    if channel.scored_u[i] >= channel.share:
        return None
    return acceptable if channel.correct_u[i] < channel.accuracy else 1.0 - acceptable
