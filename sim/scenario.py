"""The scenario YAML as pydantic v2 models: load and validate, nothing else.

Units are in the field names (``_s`` seconds, ``_per_mtok`` USD per million
tokens). Every model forbids unknown keys and non-finite numbers. Problems are
reported all at once, each with its file, line and field path.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .distributions import Lognormal
from .limits import MAX_REPLICATIONS, MAX_REQUESTS, MAX_TOKENS
from .errors import InputError, Problem, format_number, describe_error, error_location
from .yamlio import FieldPath, format_path, line_of, load_yaml

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
TRACE_FORMATS = ("csv", "jsonl", "parquet")


class Strict(BaseModel):
    # strict: a boolean or a quoted string is not a number ('1.0' in YAML is text); an
    # integer is still a valid float. Fields that convert on purpose say strict=False.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=True)


def require_order(model: BaseModel, low: str, high: str, strict: bool = False) -> None:
    """Raise unless ``model.<low> <= model.<high>`` (``<`` when strict), naming both fields."""
    lo, hi = getattr(model, low), getattr(model, high)
    if hi < lo or (strict and hi == lo):
        relation = "must be after" if strict else "must be >="
        raise ValueError(f"{high} ({format_number(hi)}) {relation} {low} ({format_number(lo)})")


# --------------------------------------------------------------------------- distributions
class MedianP95(Strict):
    """A lognormal given by its median and 95th percentile."""

    median: Positive
    p95: Positive

    def distribution(self) -> Lognormal:
        return Lognormal.from_percentile(self.median, self.p95, 95)

    @model_validator(mode="after")
    def _ordered(self):
        require_order(self, "median", "p95")
        return self


class MedianP5(Strict):
    """A lognormal given by its median and 5th percentile (for rates: the slow tail)."""

    median: Positive
    p5: Positive

    def distribution(self) -> Lognormal:
        return Lognormal.from_percentile(self.median, self.p5, 5)

    @model_validator(mode="after")
    def _ordered(self):
        require_order(self, "p5", "median")
        return self


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


class PriceTier(Strict):
    """Prices for requests whose input tokens exceed ``above_input_tokens`` (all their tokens)."""

    above_input_tokens: Annotated[int, Field(ge=0)]
    input_per_mtok: NonNegative
    output_per_mtok: NonNegative
    cached_input_per_mtok: NonNegative | None = None


class Price(Strict):
    """List prices (USD per million tokens), or where to find them in a price catalog."""

    input_per_mtok: NonNegative | None = None
    output_per_mtok: NonNegative | None = None
    cached_input_per_mtok: NonNegative | None = None  # prompt-cache reads; None: the input price
    tiers: list[PriceTier] = Field(default_factory=list)
    catalog: Literal["genai-prices"] | None = None
    provider: str | None = None  # the catalog's provider id (default: the model's provider)
    model: str | None = None  # the catalog's model name (default: the model's name)

    @model_validator(mode="after")
    def _listed_or_catalog(self):
        listed = [k for k in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "tiers")
                  if getattr(self, k)]
        if self.catalog is not None:
            if listed:
                raise ValueError(f"give either 'catalog' or list prices, not both (found {', '.join(listed)})")
        else:
            missing = [k for k in ("input_per_mtok", "output_per_mtok") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"missing {' and '.join(missing)} (or 'catalog: genai-prices')")
            for key in ("provider", "model"):
                if getattr(self, key) is not None:
                    raise ValueError(f"'{key}' goes with 'catalog'")
        thresholds = [t.above_input_tokens for t in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tiers must have increasing above_input_tokens")
        return self


class LatencySpec(Strict):
    ttft_s: MedianP95
    tokens_per_s: MedianP5
    fail_fast_s: NonNegative = 0.1  # how long an error, outage or context overflow takes to come back


class RateLimit(Strict):
    """Requests and/or tokens (input + output) per minute, as token buckets."""

    rpm: Positive | None = None
    tpm: Positive | None = None

    @model_validator(mode="after")
    def _some_limit(self):
        if self.rpm is None and self.tpm is None:
            raise ValueError("give 'rpm', 'tpm' or both")
        return self


class CapacitySpec(Strict):
    """At most ``concurrency`` attempts served at once; the rest queue (FIFO)."""

    concurrency: Annotated[int, Field(ge=1)]
    queue_timeout_s: Positive | None = None  # a queued attempt gives up with an error after this


class ModelSpec(Strict):
    provider: str
    price: Price
    latency: LatencySpec
    # Item-response ability per workload (logit scale); 'default' covers the rest.
    quality: dict[str, float] = Field(default_factory=dict)
    # What the router believes (published benchmarks); defaults to ``quality``.
    quality_prior: dict[str, float] | None = None
    context_window: Annotated[int, Field(gt=0)] = 128_000
    error_rate: Probability = 0.0
    carbon_g_per_mtok: NonNegative | None = None
    rate_limit: RateLimit | None = None
    capacity: CapacitySpec | None = None


# --------------------------------------------------------------------------- events
class _Targeted(Strict):
    """A fault on one model or on every model of a provider, during [start_s, end_s)."""

    provider: str | None = None
    model: str | None = None
    start_s: NonNegative
    end_s: NonNegative

    @model_validator(mode="after")
    def _check(self):
        if (self.provider is None) == (self.model is None):
            raise ValueError("give exactly one of 'provider' or 'model'")
        require_order(self, "start_s", "end_s", strict=True)
        return self


class OutageEvent(_Targeted):
    """Every attempt started in the window fails fast with a 5xx-like error."""

    kind: Literal["outage"]


class PartialOutageEvent(_Targeted):
    """Attempts fail with probability ``error_rate`` (on top of the base rate)."""

    kind: Literal["partial_outage"]
    error_rate: Annotated[float, Field(gt=0, le=1)]


class BrownoutEvent(_Targeted):
    """Slower answers (latency x ``latency_x``) and/or extra errors."""

    kind: Literal["brownout"]
    latency_x: Annotated[float, Field(ge=1)] = 1.0
    error_rate: Probability = 0.0

    @model_validator(mode="after")
    def _does_something(self):
        if self.latency_x == 1.0 and self.error_rate == 0.0:
            raise ValueError("a brownout needs latency_x > 1 or error_rate > 0")
        return self


class LatencySpikeEvent(_Targeted):
    """Latency x ``latency_x``, no extra errors."""

    kind: Literal["latency_spike"]
    latency_x: Annotated[float, Field(gt=1)]


class PriceEvent(Strict):
    """From ``at_s`` on, new attempts to ``model`` are charged these prices."""

    kind: Literal["price"]
    model: str
    at_s: NonNegative
    input_per_mtok: NonNegative
    output_per_mtok: NonNegative
    cached_input_per_mtok: NonNegative | None = None  # unchanged when omitted, like any tiers


class LaunchEvent(Strict):
    """``model`` becomes available at ``at_s``: before, policies do not see it and
    the router never sends to it."""

    kind: Literal["launch"]
    model: str
    at_s: NonNegative


FaultEvent = Union[OutageEvent, PartialOutageEvent, BrownoutEvent, LatencySpikeEvent]
Event = Annotated[Union[OutageEvent, PartialOutageEvent, BrownoutEvent, LatencySpikeEvent, PriceEvent, LaunchEvent],
                  Field(discriminator="kind")]


# --------------------------------------------------------------------------- providers
class DurationP90(Strict):
    """A lognormal duration given by its median and 90th percentile."""

    median: Positive
    p90: Positive

    def distribution(self) -> Lognormal:
        return Lognormal.from_percentile(self.median, self.p90, 90)

    @model_validator(mode="after")
    def _ordered(self):
        require_order(self, "median", "p90")
        return self


#: Incident processes calibrated to public status-page data (Chu et al., ICPE 2025,
#: via ../shared/data/README.md): incidents per month give the mean time between
#: failures, the Jan-Aug 2024 median and all-time p90 durations the lognormal,
#: and the error rate during an incident is set so that the long-run share of
#: failed attempts equals the published unavailability (OpenAI API 99.58%,
#: api.anthropic.com 99.72%): error_rate = (1 - availability) / (incidents per
#: second x mean duration). Most status-page incidents are partial degradations.
OUTAGE_PRESETS = {
    "openai-2024": {"mtbf_s": 30.4375 * 86400 / 17.4, "duration_s": {"median": 82 * 60, "p90": 305 * 60},
                    "availability": 0.9958},
    "anthropic-2024": {"mtbf_s": 30.4375 * 86400 / 13.9, "duration_s": {"median": 37 * 60, "p90": 251 * 60},
                       "availability": 0.9972},
}


class OutageProcess(Strict):
    """Incidents at random: ``mtbf_s`` apart on average (start to start),
    lognormal durations, and ``error_rate`` during each (1 = full outage)."""

    preset: Literal["openai-2024", "anthropic-2024"] | None = None
    mtbf_s: Positive | None = None
    duration_s: DurationP90 | None = None
    error_rate: Annotated[float, Field(gt=0, le=1)] | None = None

    @model_validator(mode="after")
    def _complete(self):
        if self.preset is None and (self.mtbf_s is None or self.duration_s is None):
            raise ValueError("give a 'preset', or both 'mtbf_s' and 'duration_s'")
        mtbf, duration, _ = self.resolved()
        mean_duration = duration.distribution().mean
        if mtbf <= mean_duration:
            raise ValueError(f"mtbf_s ({format_number(mtbf)}) must exceed the mean incident duration "
                             f"({mean_duration:.0f} s): it is the time from one incident's start to the next")
        return self

    def resolved(self) -> tuple[float, DurationP90, float]:
        """(mean time between failures, duration distribution, error rate), preset filled in."""
        preset = OUTAGE_PRESETS.get(self.preset or "", {})
        mtbf = self.mtbf_s if self.mtbf_s is not None else preset["mtbf_s"]
        duration = self.duration_s if self.duration_s is not None else DurationP90(**preset["duration_s"])
        if self.error_rate is not None:
            rate = self.error_rate
        elif preset:
            rate = min(1.0, (1 - preset["availability"]) * mtbf / duration.distribution().mean)
        else:
            rate = 1.0
        return mtbf, duration, rate


class ProviderSpec(Strict):
    outages: OutageProcess | None = None
    rate_limit: RateLimit | None = None  # shared by all the provider's models


# --------------------------------------------------------------------------- router, policies
class HealthSpec(Strict):
    """The router's own view of health: after this many consecutive failures a
    model is seen as unhealthy until ``cooldown_s`` after its last failure."""

    consecutive_failures: Annotated[int, Field(ge=1)] = 3
    cooldown_s: NonNegative = 30.0


Fraction = Annotated[float, Field(gt=0, le=1)]
RETRYABLE = ("error", "rate_limited", "timeout")


class BackoffSpec(Strict):
    """Exponential backoff: the n-th retry waits up to min(cap_s, base_s x 2^n),
    jittered as AWS describes (none, full, equal, decorrelated)."""

    base_s: Positive = 0.5
    cap_s: Positive = 8.0
    jitter: Literal["none", "full", "equal", "decorrelated"] = "full"

    @model_validator(mode="after")
    def _ordered(self):
        require_order(self, "base_s", "cap_s")
        return self


class RetrySpec(Strict):
    """Retry the same model after a failure whose outcome is listed."""

    on_outcomes: list[Literal["error", "rate_limited", "timeout"]] = list(RETRYABLE)
    per_model: Annotated[int, Field(ge=1, le=10)] = 1  # retries of one model before moving on
    backoff: BackoffSpec = BackoffSpec()
    # Envoy's retry budget: retries in progress <= budget x active requests
    # (never fewer than min_retry_concurrency). None: no budget.
    budget: Fraction | None = None
    min_retry_concurrency: Annotated[int, Field(ge=0)] = 3


class CircuitBreakerSpec(Strict):
    """Resilience4j's circuit breaker, one per model."""

    window: Literal["count", "time"] = "count"
    size: Annotated[int, Field(ge=1)] = 20  # calls (count) or seconds (time)
    min_calls: Annotated[int, Field(ge=1)] = 10
    failure_rate: Fraction = 0.5
    slow_call_s: Positive | None = None
    slow_call_rate: Fraction = 1.0
    open_s: Positive = 30.0
    half_open_calls: Annotated[int, Field(ge=1)] = 3

    @model_validator(mode="after")
    def _fits(self):
        if self.window == "count" and self.min_calls > self.size:
            raise ValueError(f"min_calls ({self.min_calls}) can never be reached in a count window of size {self.size}")
        return self


class CooldownSpec(Strict):
    """LiteLLM's deployment cooldown: more than ``allowed_fails`` failures in the
    current minute, or a 429 when the request has another candidate, takes the
    model out of rotation for ``cooldown_s``."""

    allowed_fails: Annotated[int, Field(ge=0)] = 3
    cooldown_s: Positive = 5.0


class HedgeSpec(Strict):
    """After a delay, send the next candidate too; the first answer wins and the
    others are cancelled (and charged as the provider would)."""

    after_s: Positive | None = None
    after_percentile: Annotated[float, Field(gt=0, lt=1)] | None = None  # of the model's observed latency
    max_hedges: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _one_delay(self):
        if (self.after_s is None) == (self.after_percentile is None):
            raise ValueError("give exactly one of 'after_s' or 'after_percentile'")
        return self


class RouterSpec(Strict):
    timeout_s: Positive = 60.0  # per attempt
    # Whole request, all attempts and waits included; each attempt gets at most
    # what is left (Envoy's per-try timeout within the route timeout).
    deadline_s: Positive | None = None
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    default_model: str | None = None  # used when the policy fails or returns nothing usable
    # What an abandoned (timed-out) attempt costs: the tokens generated until it
    # was abandoned, the whole answer, or nothing.
    abandoned_charge: Literal["generated", "full", "none"] = "generated"
    health: HealthSpec = HealthSpec()
    retry: RetrySpec | None = None
    circuit_breaker: CircuitBreakerSpec | None = None
    cooldown: CooldownSpec | None = None
    hedge: HedgeSpec | None = None
    # On a context-window overflow, try these next (LiteLLM's context_window_fallbacks).
    context_window_fallbacks: dict[str, list[str]] = Field(default_factory=dict)


class PolicySpec(BaseModel):
    """``kind`` plus its parameters, given inline or under ``params:``."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    router: dict[str, Any] | None = None  # overrides parts of the scenario's router

    def all_params(self) -> dict[str, Any]:
        inline = dict(self.model_extra or {})
        overlap = sorted(set(inline) & set(self.params))
        if overlap:
            raise ValueError(f"{', '.join(overlap)} given both inline and under 'params'")
        # A deep copy: whoever uses them (a policy's constructor) cannot change the scenario.
        return copy.deepcopy({**self.params, **inline})


class Gates(Strict):
    """Rollout-gate thresholds (fractions, not percents) for ``routesim gate``."""

    candidate: str | None = None  # the policy to check (``--candidate`` overrides)
    baseline: str | None = None  # default: the scenario's baseline
    min_savings: float | None = None
    max_quality_drop: NonNegative | None = None
    min_success_rate: Probability | None = None
    min_fault_success_rate: Probability | None = None
    max_p95_latency_ratio: Positive | None = None
    max_p99_latency_ratio: Positive | None = None
    max_decision_p99_us: Positive | None = None


class Objectives(Strict):
    """Service-level objectives the report measures against."""

    availability: Annotated[float, Field(gt=0, lt=1)] | None = None  # e.g. 0.999: error budget 0.1%
    decision_p99_ms: Positive = 100.0  # a policy slower than this at the 99th percentile is flagged


class Features(Strict):
    """Request features policies may see. ``difficulty_noise_sd``: when set, each
    request carries ``difficulty_estimate`` = true difficulty + N(0, sd)."""

    difficulty_noise_sd: NonNegative | None = None


# --------------------------------------------------------------------------- scenario
#: One folder name: the default output folder is reports/<name>/, so a name must not be a path.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class Scenario(Strict):
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    seed: Annotated[int, Field(ge=0)] = 0
    replications: Annotated[int, Field(ge=1, le=MAX_REPLICATIONS)] = 5
    trace: TraceSpec
    workloads: dict[str, WorkloadSpec] = Field(default_factory=dict)
    models: dict[str, ModelSpec]
    events: list[Event] = Field(default_factory=list)
    providers: dict[str, ProviderSpec] = Field(default_factory=dict)
    router: RouterSpec = RouterSpec()
    features: Features = Features()
    slo: Objectives = Objectives()
    gates: Gates = Gates()
    policies: dict[str, PolicySpec]
    baseline: str | None = None
    #: The instant simulated time 0 stands for: catalog prices by date and time of day follow it.
    start: Annotated[datetime, Field(strict=False)] | None = None
    routesim_version: str | None = None  # written into scenario.resolved.yaml; informational

    @field_validator("name")
    @classmethod
    def _one_folder_name(cls, value):
        if not SAFE_NAME.fullmatch(value):
            raise ValueError(f"must be a plain folder name (it names the default output folder reports/<name>/): "
                             f"letters, digits, '-', '_' and '.', starting with a letter or digit, at most 100 "
                             f"characters (got {value!r})")
        return value

    @field_validator("models", "policies")
    @classmethod
    def _not_empty(cls, value):
        if not value:
            raise ValueError("needs at least one entry")
        return value

    @property
    def baseline_policy(self) -> str:
        """The named baseline, else the first policy that is not an upper bound."""
        if self.baseline:
            return self.baseline
        return next((name for name in self.policies if not self.is_upper_bound(name)), next(iter(self.policies)))

    def is_upper_bound(self, policy: str) -> bool:
        """An upper bound (the oracle) sees the ground truth: it is reported, never a candidate or the baseline."""
        from .policies.registry import PolicyConfigError, resolve  # lazily: it may import user code

        try:
            return bool(getattr(resolve(self.policies[policy].kind), "upper_bound", False))
        except PolicyConfigError:
            return False  # reported by the scenario's own checks

    def router_for(self, policy: str) -> RouterSpec:
        """The scenario's router with the policy's own overrides applied."""
        override = self.policies[policy].router
        if not override:
            return self.router
        return RouterSpec.model_validate(_deep_merge(self.router.model_dump(), override))

    def max_attempts(self) -> int:
        return max(self.router_for(p).max_attempts for p in self.policies)


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# --------------------------------------------------------------------------- loading
class LoadedScenario:
    """A validated scenario and where it came from (for relative paths and messages)."""

    def __init__(self, scenario: Scenario, path: Path, lines: dict[FieldPath, int]):
        self.scenario = scenario
        self.path = path
        self.lines = lines

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def trace_path(self) -> Path | None:
        p = self.scenario.trace.path
        return None if p is None else (self.base_dir / p)

    def problem(self, path: FieldPath, message: str) -> Problem:
        return Problem(message, path=format_path(path), file=str(self.path), line=line_of(self.lines, path))


def pydantic_problems(exc: ValidationError, data: Any, where: "LoadedScenario | None" = None,
                      prefix: FieldPath = (), file: str = "") -> list[Problem]:
    problems = []
    for err in exc.errors():
        path = prefix + error_location(data, tuple(err["loc"]))
        if where is not None:
            problems.append(where.problem(path, describe_error(err)))
        else:
            problems.append(Problem(describe_error(err), path=format_path(path), file=file))
    return problems


def load_scenario(path: str | Path) -> LoadedScenario:
    """Parse and validate the scenario file (structure and cross-references).

    Raises ``InputError`` listing every problem found.
    """
    path = Path(path)
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError(Problem("a scenario must be a YAML mapping (name:, trace:, models:, policies:, ...)",
                                 file=str(path), line=1))
    holder = LoadedScenario(None, path, lines)  # type: ignore[arg-type]
    try:
        holder.scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, data, holder)
        # Report every problem in one pass: cross-check what did validate, with the
        # names the file declares (an entry with an error is still declared).
        pruned = _without_invalid(data, exc)
        try:
            holder.scenario = Scenario.model_validate(pruned) if pruned is not None else None
        except ValidationError:
            holder.scenario = None
        if holder.scenario is not None:
            problems += [p for p in reference_problems(holder, _declared_names(data)) if p not in problems]
        raise InputError(problems) from None
    problems = reference_problems(holder)
    if problems:
        raise InputError(problems)
    return holder


_NAMED_SECTIONS = ("models", "policies", "workloads", "providers")
#: Stand-ins for required sections with an error, so the rest can still be cross-checked.
_PLACEHOLDERS = {"name": "x", "trace": {"synthetic": {"duration_s": 1.0, "rate_per_s": 1.0}}}


def _without_invalid(data: dict, exc: ValidationError) -> dict | None:
    """``data`` without the entries pydantic refused (a model, a policy, an event, a
    top-level setting, which then takes its default); None when a whole required
    section is unusable."""
    pruned = copy.deepcopy(data)
    drop_events: set[int] = set()
    for err in exc.errors():
        loc = err["loc"]
        top = loc[0] if loc else None
        if top in _NAMED_SECTIONS and len(loc) >= 2 and isinstance(pruned.get(top), dict):
            pruned[top].pop(loc[1], None)
        elif top == "events" and len(loc) >= 2 and isinstance(loc[1], int):
            drop_events.add(loc[1])
        elif top in _PLACEHOLDERS:
            pruned[top] = _PLACEHOLDERS[top]
        elif top in ("models", "policies"):
            return None  # the section itself is wrong (empty, not a mapping)
        elif top is not None:
            pruned.pop(top, None)
    if drop_events and isinstance(pruned.get("events"), list):
        pruned["events"] = [e for i, e in enumerate(pruned["events"]) if i not in drop_events]
    return pruned


def _declared_names(data: dict) -> dict[str, set]:
    """Names the file declares, valid entries or not."""
    names = {key: set(data[key]) if isinstance(data.get(key), dict) else set() for key in _NAMED_SECTIONS}
    models = data.get("models") if isinstance(data.get("models"), dict) else {}
    names["model_providers"] = {m.get("provider") for m in models.values()
                                if isinstance(m, dict) and isinstance(m.get("provider"), str)}
    return names


def reference_problems(loaded: LoadedScenario, declared: dict[str, set] | None = None) -> list[Problem]:
    """Names that must refer to something declared elsewhere in the scenario
    (``declared``: the names to accept, when some entries were left out for errors)."""
    sc = loaded.scenario
    declared = declared or {"models": set(sc.models), "policies": set(sc.policies), "workloads": set(sc.workloads),
                            "model_providers": {m.provider for m in sc.models.values()}}
    models, providers = declared["models"], declared["model_providers"]
    workloads, policies = declared["workloads"], declared["policies"]
    problems: list[Problem] = []

    def need_model(name: str | None, path: FieldPath) -> None:
        if name is not None and name not in models:
            problems.append(loaded.problem(path, f"unknown model '{name}' (models: {', '.join(sorted(models))})"))

    for name, spec in sc.models.items():
        problems.extend(_catalog_problems(loaded, name, spec))
        for key in ("quality", "quality_prior"):
            table = getattr(spec, key) or {}
            for workload in table:
                if workload != "default" and workloads and workload not in workloads:
                    problems.append(loaded.problem(("models", name, key, workload),
                                                   f"unknown workload '{workload}' (workloads: {', '.join(sorted(workloads))})"))
    for i, event in enumerate(sc.events):
        if getattr(event, "model", None) is not None:
            need_model(event.model, ("events", i, "model"))
        if getattr(event, "provider", None) is not None and event.provider not in providers:
            problems.append(loaded.problem(("events", i, "provider"),
                                           f"unknown provider '{event.provider}' (providers: {', '.join(sorted(providers))})"))
    for name in sc.providers:
        if name not in providers:
            problems.append(loaded.problem(("providers", name),
                                           f"unknown provider '{name}' (providers: {', '.join(sorted(providers))})"))
    _router_references(sc.router, ("router",), need_model)
    if sc.baseline is not None and sc.baseline not in policies:
        problems.append(loaded.problem(("baseline",), f"unknown policy '{sc.baseline}' (policies: {', '.join(sorted(policies))})"))
    for key in ("candidate", "baseline"):
        name = getattr(sc.gates, key)
        if name is not None and name not in policies:
            problems.append(loaded.problem(("gates", key), f"unknown policy '{name}' (policies: {', '.join(sorted(policies))})"))
    if sc.baseline is not None and sc.baseline in sc.policies and sc.is_upper_bound(sc.baseline):
        problems.append(loaded.problem(("baseline",), f"'{sc.baseline}' is an upper bound that sees the ground truth; "
                                                      "the baseline must be a policy you could deploy"))
    for name, spec in sc.policies.items():
        problems.extend(_policy_problems(loaded, name, spec, need_model))
    if sc.trace.path is not None and not loaded.trace_path().exists():
        problems.append(loaded.problem(("trace", "path"), f"file not found: {loaded.trace_path()}"))
    return problems


def _catalog_problems(loaded: LoadedScenario, name: str, spec: ModelSpec) -> list[Problem]:
    """A catalog price must exist in the catalog, and needs the scenario's start instant."""
    if spec.price.catalog is None:
        return []
    from .prices import find_model  # lazily: the catalog is an optional extra

    path = ("models", name, "price")
    problems = []
    if loaded.scenario.start is None:
        problems.append(loaded.problem(path + ("catalog",), "catalog prices need the scenario's 'start' "
                                       "(e.g. start: 2025-06-01T14:00:00Z), so dated and time-of-day prices "
                                       "are the same in every run"))
    try:
        find_model(spec.price.provider or spec.provider, spec.price.model or name)
    except InputError as exc:
        problems += [loaded.problem(path, p.message) for p in exc.problems]
    return problems


def start_instant(scenario: "Scenario") -> datetime:
    """The scenario's start as an aware UTC datetime (a naive one is taken as UTC)."""
    start = scenario.start
    return start.replace(tzinfo=timezone.utc) if start.tzinfo is None else start.astimezone(timezone.utc)


def _router_references(router: RouterSpec, path: FieldPath, need_model, only: dict | None = None) -> None:
    """Model names in a router block; ``only``: check just the keys a policy overrides."""
    if only is None or "default_model" in only:
        need_model(router.default_model, path + ("default_model",))
    if only is None or "context_window_fallbacks" in only:
        for model, fallbacks in router.context_window_fallbacks.items():
            need_model(model, path + ("context_window_fallbacks", model))
            for i, fallback in enumerate(fallbacks):
                need_model(fallback, path + ("context_window_fallbacks", model, i))


def _policy_problems(loaded: LoadedScenario, name: str, spec: PolicySpec, need_model) -> list[Problem]:
    # Imported lazily: the registry may import user code named in the scenario.
    from .policies.registry import PolicyConfigError, validate_params

    base: FieldPath = ("policies", name)
    problems: list[Problem] = []
    try:
        params = spec.all_params()
    except ValueError as exc:
        return [loaded.problem(base, str(exc))]
    if spec.router:
        try:
            router = loaded.scenario.router_for(name)
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, spec.router, loaded, base + ("router",)))
        else:
            _router_references(router, base + ("router",), need_model, only=spec.router)
    try:
        referenced = validate_params(spec.kind, params)
    except PolicyConfigError as exc:
        for sub_path, message in exc.problems:
            in_params = base + (("params",) if spec.params else ()) + sub_path
            problems.append(loaded.problem(in_params if sub_path else base + ("kind",), message))
        return problems
    for model_name, sub_path in referenced:
        need_model(model_name, base + (("params",) if spec.params else ()) + sub_path)
    return problems
