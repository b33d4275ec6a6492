"""A price point: what one model charges at one time, and the charge for one answer.

A ``PricePoint`` is USD per million input and output tokens, cached (prompt-cache read)
input tokens where the provider prices them apart, and tiers above an input size. Tiers
follow the providers' (and genai-prices') cliff rule: once a request's input tokens exceed
a tier's threshold, all of its tokens pay that tier's prices.
"""

from __future__ import annotations

from typing import NamedTuple


class Tier(NamedTuple):
    above_input_tokens: int
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None


class PricePoint(NamedTuple):
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None  # None: cached tokens pay the input price
    tiers: tuple[Tier, ...] = ()  # ascending thresholds


def charge_usd(price: PricePoint, input_tokens: float, cached_tokens: float, output_tokens: float) -> float:
    """The charge for one answer: tier by input size, cached input at its own price."""
    inp, out, cached = price.input_per_mtok, price.output_per_mtok, price.cached_input_per_mtok
    for tier in reversed(price.tiers):
        if input_tokens > tier.above_input_tokens:
            inp, out, cached = tier.input_per_mtok, tier.output_per_mtok, tier.cached_input_per_mtok
            break
    if cached is None or not cached_tokens:
        return (input_tokens * inp + output_tokens * out) / 1e6
    return ((input_tokens - cached_tokens) * inp + cached_tokens * cached + output_tokens * out) / 1e6
