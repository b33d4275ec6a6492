"""A deployment's latency: time to first token and output speed, each a lognormal
(median and a tail percentile) or an empirical quantile table fitted from
measurements, optionally a prefill rate that makes TTFT grow with the input, and
the correlation of TTFT and speed."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag, field_validator

from sim.distributions import QuantileTable
from .common import NonNegative, Positive, Strict
from .traffic import MedianP5, MedianP95


class QuantileSpec(Strict):
    """``quantiles: [[0.0, v0], [0.05, v1], ..., [1.0, vn]]``: the value at each
    probability, linear in between; probabilities rise from 0 to 1, values never fall."""

    quantiles: Annotated[list[Annotated[list[float], Field(min_length=2, max_length=2)]],
                         Field(min_length=2, max_length=1001)]

    @field_validator("quantiles")
    @classmethod
    def _a_quantile_function(cls, points):
        for i, (p, v) in enumerate(points):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"point {i}: the probability must be within [0, 1] (got {p})")
            if not v > 0.0:
                raise ValueError(f"point {i}: the value must be positive (got {v})")
        probabilities = [p for p, _ in points]
        if probabilities[0] != 0.0 or probabilities[-1] != 1.0:
            raise ValueError("the probabilities must start at 0 and end at 1")
        if any(b <= a for a, b in zip(probabilities, probabilities[1:])):
            raise ValueError("the probabilities must rise strictly")
        values = [v for _, v in points]
        if any(b < a for a, b in zip(values, values[1:])):
            raise ValueError("the values must not fall as the probability rises")
        return points

    def distribution(self) -> QuantileTable:
        return QuantileTable(tuple(p for p, _ in self.quantiles), tuple(v for _, v in self.quantiles))

    @property
    def median(self) -> float:
        return self.distribution().median


def _table_or_lognormal(data: Any) -> str:
    """A mapping with ``quantiles`` is a table; anything else is checked as a lognormal
    (so a mistake is reported against the form the user wrote, not against both)."""
    # Called with the YAML mapping when validating and with the model when serialising.
    if isinstance(data, QuantileSpec) or isinstance(data, dict) and "quantiles" in data:
        return "table"
    return "lognormal"


TtftSpec = Annotated[Union[Annotated[MedianP95, Tag("lognormal")], Annotated[QuantileSpec, Tag("table")]],
                     Discriminator(_table_or_lognormal)]
SpeedSpec = Annotated[Union[Annotated[MedianP5, Tag("lognormal")], Annotated[QuantileSpec, Tag("table")]],
                      Discriminator(_table_or_lognormal)]


class LatencySpec(Strict):
    """TTFT = the ``ttft_s`` draw (+ input tokens / ``prefill_tokens_per_s``); then
    output tokens at the ``tokens_per_s`` draw."""

    ttft_s: TtftSpec
    tokens_per_s: SpeedSpec
    # Input tokens read per second before the first token: TTFT grows with the prompt. None: it does not.
    prefill_tokens_per_s: Positive | None = None
    # Correlation of the normal scores of TTFT and decode speed (a Gaussian copula): a server
    # whose queue delays the first token may also decode slower (or faster). 0: independent.
    ttft_speed_correlation: Annotated[float, Field(ge=-0.99, le=0.99)] = 0.0
    fail_fast_s: NonNegative = 0.1  # how long an error, outage or context overflow takes to come back
