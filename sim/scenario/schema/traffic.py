"""The traffic of a scenario: a trace file (and how to replay it) or a synthetic
trace (arrival process, spikes, workload mix, token counts), and per-workload
settings (latency objective, difficulty, prompt-cache share)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from sim.errors import format_number
from sim.limits import MAX_REQUESTS, MAX_TOKENS
from .common import LognormalSpec, NonNegative, Positive, Probability, Strict, require_order

# --------------------------------------------------------------------------- distributions
class MedianP95(LognormalSpec):
    """A lognormal given by its median and 95th percentile."""

    tail, percentile = "p95", 95
    p95: Positive


class MedianP5(LognormalSpec):
    """A lognormal given by its median and 5th percentile (for rates: the slow tail)."""

    tail, percentile = "p5", 5
    p5: Positive


class TokenCounts(MedianP95):
    """Lognormal token counts, rounded to whole tokens, at least 1, at most ``max``
    (and never above MAX_TOKENS, the limit of a trace file's counts)."""

    max: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None

    @model_validator(mode="after")
    def _within_limit(self):
        if self.p95 > MAX_TOKENS:
            raise ValueError(f"p95 ({format_number(self.p95)}) must be at most {MAX_TOKENS:,} tokens")
        return self


# --------------------------------------------------------------------------- trace
class WorkloadMix(Strict):
    share: Positive
    input_tokens: TokenCounts | None = None  # overrides the trace-wide distribution
    output_tokens: TokenCounts | None = None


class Spike(Strict):
    """Extra Poisson arrivals at ``rate_per_s`` during [start_s, end_s), on top of the base rate."""

    start_s: NonNegative
    end_s: Positive
    rate_per_s: Positive

    @model_validator(mode="after")
    def _ordered(self):
        require_order(self, "start_s", "end_s", strict=True)
        return self


class Diurnal(Strict):
    """A sinusoidal rate: rate_per_s x (1 + amplitude x cos(2 pi (t - peak_s) / period_s))."""

    period_s: Positive = 86400.0
    amplitude: Probability = 0.5
    peak_s: NonNegative = 0.0  # when the rate is highest, seconds from the start


class Bursty(Strict):
    """A Markov-modulated Poisson process switching between a busy state and silence
    (an interrupted Poisson process), tuned to an inter-arrival CV."""

    cv: Annotated[float, Field(ge=1)] = 3.0  # Poisson is 1; the Azure code trace is about 13
    busy_share: Annotated[float, Field(gt=0, lt=1)] = 0.2  # long-run share of time in the busy state


class SyntheticTrace(Strict):
    duration_s: Positive
    rate_per_s: Positive  # the long-run mean rate
    arrival: Literal["poisson", "diurnal", "bursty"] = "poisson"
    diurnal: Diurnal = Diurnal()  # used when arrival is diurnal
    bursty: Bursty = Bursty()  # used when arrival is bursty
    spikes: list[Spike] = Field(default_factory=list)
    workloads: dict[str, Union[Positive, WorkloadMix]] = Field(default_factory=lambda: {"default": 1.0})
    input_tokens: TokenCounts = TokenCounts(median=800, p95=4000)
    output_tokens: TokenCounts = TokenCounts(median=200, p95=1000)

    @field_validator("workloads")
    @classmethod
    def _not_empty(cls, value):
        if not value:
            raise ValueError("needs at least one workload")
        return value

    @model_validator(mode="after")
    def _bounded(self):
        expected = self.expected_requests()
        if not expected <= MAX_REQUESTS:  # also catches an overflow to infinity
            raise ValueError(f"expects about {expected:.3g} requests per replication (rate_per_s x duration_s, plus "
                             f"spikes); at most {MAX_REQUESTS:,} can be simulated")
        return self

    def expected_requests(self) -> float:
        """The mean request count: every arrival process here has mean rate ``rate_per_s``."""
        spikes = sum(sp.rate_per_s * max(0.0, min(sp.end_s, self.duration_s) - sp.start_s) for sp in self.spikes)
        return self.rate_per_s * self.duration_s + spikes

    def mix(self) -> dict[str, WorkloadMix]:
        """Every workload as a ``WorkloadMix`` (a bare number is its share)."""
        return {name: (w if isinstance(w, WorkloadMix) else WorkloadMix(share=w)) for name, w in self.workloads.items()}


class Replay(Strict):
    """Shape-preserving replay of a trace file: applied in this order, tokens and order kept."""

    window_s: Annotated[tuple[NonNegative, Positive], Field(strict=False)] | None = None  # a YAML list; keep arrivals in [start, end), shifted to 0
    sample: Annotated[float, Field(gt=0, le=1)] | None = None  # keep each request with this chance (per replication)
    speedup: Positive | None = None  # divide every gap by this
    rate_per_s: Positive | None = None  # or: scale time to this mean rate

    @model_validator(mode="after")
    def _one_scale(self):
        if self.speedup is not None and self.rate_per_s is not None:
            raise ValueError("give speedup or rate_per_s, not both")
        if self.window_s is not None and self.window_s[0] >= self.window_s[1]:
            raise ValueError("window_s: the start must come before the end")
        return self


class TraceSpec(Strict):
    path: Annotated[Path, Field(strict=False)] | None = None  # relative to the scenario file
    format: Literal["csv", "jsonl", "parquet"] | None = None
    replay: Replay | None = None  # transforms of the file's trace
    synthetic: SyntheticTrace | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.path is None) == (self.synthetic is None):
            raise ValueError("give exactly one of 'path' or 'synthetic'")
        for key in ("format", "replay"):
            if getattr(self, key) is not None and self.path is None:
                raise ValueError(f"'{key}' goes with 'path'")
        return self


# --------------------------------------------------------------------------- workloads, models
class Difficulty(Strict):
    mean: float = 0.0
    sd: NonNegative = 1.0


class WorkloadSpec(Strict):
    slo_s: Positive | None = None  # latency objective; a request meets it if ok and within it
    difficulty: Difficulty = Difficulty()
    cache_hit_share: Probability = 0.0  # share of input tokens read from the prompt cache
