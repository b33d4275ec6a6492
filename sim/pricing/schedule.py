"""A model's prices over time, from its scenario ``price:`` block: its list price from t = 0,
or the genai-prices catalog's dated and time-of-day prices."""

from __future__ import annotations

from datetime import datetime

from .catalog import catalog_schedule
from .points import PricePoint, Tier


def price_schedule(price, provider: str, name: str, start: datetime | None,
                   horizon_s: float) -> list[tuple[float, PricePoint]]:
    """(time, price) pairs, sorted, for a model ``name`` of ``provider`` whose scenario price
    block is ``price`` (a ``schema.deployments`` Price); catalog prices from ``start`` to
    ``horizon_s`` seconds after it (``start`` may be None for a list price)."""
    if price.catalog is None:
        tiers = tuple(Tier(t.above_input_tokens, t.input_per_mtok, t.output_per_mtok, t.cached_input_per_mtok)
                      for t in price.tiers)
        return [(0.0, PricePoint(price.input_per_mtok, price.output_per_mtok, price.cached_input_per_mtok, tiers))]
    return catalog_schedule(price.provider or provider, price.model or name, start, horizon_s)
