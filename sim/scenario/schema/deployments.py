"""A deployment (a model at a provider): prices (listed, tiered, cached, or from
the genai-prices catalog), latency, rate limits, serving capacity, quality."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import CarbonPerMtok, NonNegative, Positive, PricePerMtok, Probability, Strict
from .latency import LatencySpec

class PriceTier(Strict):
    """Prices for requests whose input tokens exceed ``above_input_tokens`` (all their tokens)."""

    above_input_tokens: Annotated[int, Field(ge=0)]
    input_per_mtok: PricePerMtok
    output_per_mtok: PricePerMtok
    cached_input_per_mtok: PricePerMtok | None = None


class Price(Strict):
    """List prices (USD per million tokens), or where to find them in a price catalog."""

    input_per_mtok: PricePerMtok | None = None
    output_per_mtok: PricePerMtok | None = None
    cached_input_per_mtok: PricePerMtok | None = None  # prompt-cache reads; None: the input price
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
    carbon_g_per_mtok: CarbonPerMtok | None = None
    rate_limit: RateLimit | None = None
    capacity: CapacitySpec | None = None
