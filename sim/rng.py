"""Named random streams and the pre-drawn per-(request, model, attempt) variates.

Every random number in routesim comes from here. Replication ``r`` and stream
``k`` draw from ``SeedSequence(seed, spawn_key=(r, k))``. Per-attempt variates
are drawn in blocks of requests, and each block of each (model, attempt on that
model) has its own stream, ``SeedSequence(seed, spawn_key=(r, k, name_key(model),
attempt, b))``: the draws of request ``i``'s ``a``-th attempt on model ``m``
depend on the seed, the replication, ``m``'s *name*, ``a`` and ``i`` only. So
every policy that sends request ``i`` to ``m`` sees the same latency, error and
quality draws (common random numbers), and adding or removing a model, a policy
or another policy's ``max_attempts`` leaves them where they were.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

#: Requests per block of pre-drawn variates: large enough to amortise numpy's
#: per-call overhead, small enough to keep memory flat on long traces.
BLOCK_SIZE = 4096


class Stream(IntEnum):
    """Stream identities; their numbers are part of the seeding contract."""

    TRACE = 0  # synthetic arrivals, workloads, token counts
    WORLD = 1  # stochastic faults (later issues)
    LATENCY = 2  # TTFT and tokens/s draws
    ERRORS = 3  # base and fault error draws
    QUALITY = 4  # acceptable-answer draws
    POLICY = 5  # seeds handed to randomised policies
    DIFFICULTY = 6  # per-request difficulty when the trace has none
    FEATURES = 7  # noise on the difficulty estimate policies may see
    BACKOFF = 8  # retry jitter
    JUDGE = 9  # a cascade judge's verdict on each answer
    IMPORT = 10  # jitter that spreads a source trace's rounded timestamps
    DECISION = 11  # a policy's modelled decision latency (a classifier or embedding call), keyed by its name
    BELIEF = 12  # the router's believed quality: truth + noise, keyed by model and workload names
    FEEDBACK = 13  # which answers a feedback channel scores and whether its verdict is right, keyed by channel name
    CACHE = 14  # which requests the response cache answers


def generator(seed: int, replication: int, stream: Stream, *sub_keys: int) -> np.random.Generator:
    """The generator of one named stream, optionally narrowed by sub-keys (a name's
    key, an attempt number, a block of requests)."""
    key = (replication, int(stream), *sub_keys)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def name_key(name: str) -> int:
    """A stable number for a name (a policy, a provider): streams keyed by it do not move
    when other names are added, removed or reordered."""
    return zlib.crc32(name.encode("utf-8"))


def policy_seed(seed: int, replication: int, policy_name: str) -> int:
    """An integer seed for a randomised policy's own ``random.Random``/``Generator``, keyed
    by the policy's name (not its position in the scenario)."""
    seq = np.random.SeedSequence(seed, spawn_key=(replication, int(Stream.POLICY), name_key(policy_name)))
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class AttemptDraws:
    """Raw variates of one block: arrays of shape (requests, models, attempts).

    ``ttft_z`` and ``tps_z`` are standard normals (lognormal latency), ``error_u``
    and ``quality_u`` uniforms on [0, 1). float32 keeps a block small; the
    precision is far below any latency or probability that matters.
    """

    ttft_z: np.ndarray
    tps_z: np.ndarray
    error_u: np.ndarray
    quality_u: np.ndarray
    retry_u: np.ndarray  # (requests, attempts): jitter of the request's n-th retry
    judge_u: np.ndarray  # compared with the judge's error rates


def draw_block(seed: int, replication: int, block: int, n_requests: int, model_names: list[str],
               n_attempts: int) -> AttemptDraws:
    """Draw block ``block`` of the per-attempt variates.

    Each (model, attempt) column comes from its own streams, keyed by the model's
    name and the attempt number; ``n_attempts`` (the largest ``max_attempts`` of
    any policy) and the list of models only decide how many columns are drawn,
    never what is in one. Retry jitter is keyed by the retry's number alone.
    """
    shape = (n_requests, len(model_names), n_attempts)
    ttft_z = np.empty(shape, dtype=np.float32)
    tps_z = np.empty(shape, dtype=np.float32)
    error_u = np.empty(shape, dtype=np.float32)
    quality_u = np.empty(shape, dtype=np.float32)
    judge_u = np.empty(shape, dtype=np.float32)
    for m, name in enumerate(model_names):
        model_key = name_key(name)
        for k in range(n_attempts):
            latency = generator(seed, replication, Stream.LATENCY, model_key, k, block)
            ttft_z[:, m, k] = latency.standard_normal(n_requests, dtype=np.float32)
            tps_z[:, m, k] = latency.standard_normal(n_requests, dtype=np.float32)
            error_u[:, m, k] = generator(seed, replication, Stream.ERRORS, model_key, k, block).random(
                n_requests, dtype=np.float32)
            quality_u[:, m, k] = generator(seed, replication, Stream.QUALITY, model_key, k, block).random(
                n_requests, dtype=np.float32)
            judge_u[:, m, k] = generator(seed, replication, Stream.JUDGE, model_key, k, block).random(
                n_requests, dtype=np.float32)
    retry_u = np.empty((n_requests, n_attempts))
    for n in range(n_attempts):
        retry_u[:, n] = generator(seed, replication, Stream.BACKOFF, n, block).random(n_requests)
    return AttemptDraws(ttft_z, tps_z, error_u, quality_u, retry_u, judge_u)
