"""Events on the timeline (outages, partial outages, brownouts, latency spikes,
price changes, launches) and random provider incidents with their presets."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from sim.errors import format_number
from .common import LognormalSpec, NonNegative, Positive, PricePerMtok, Probability, Strict, require_order
from .deployments import RateLimit

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
    """Attempts fail with probability ``error_rate`` (on top of the base rate), answering
    ``status``: a 5xx error, or 429 (a rate-limit storm: the router sees rate_limited)."""

    kind: Literal["partial_outage"]
    error_rate: Annotated[float, Field(gt=0, le=1)]
    status: Literal[500, 429] = 500


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
    input_per_mtok: PricePerMtok
    output_per_mtok: PricePerMtok
    cached_input_per_mtok: PricePerMtok | None = None  # unchanged when omitted, like any tiers


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
class DurationP90(LognormalSpec):
    """A lognormal duration given by its median and 90th percentile."""

    tail, percentile = "p90", 90
    p90: Positive


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
