"""Price schedules from the genai-prices catalog.

The catalog is the optional ``genai-prices`` package (``pip install
routesim[prices]``), whose data ships with it (no network). Its dated price
changes and time-of-day prices (e.g. DeepSeek's off-peak discount) become price
points (``points.PricePoint``) on the simulated clock, given the instant the
simulation starts.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from sim.errors import InputError, Problem

from .points import PricePoint, Tier

CATALOG = "genai-prices"


def catalog_installed() -> bool:
    """Whether the genai-prices catalog (the prices extra) can be imported."""
    import importlib.util

    return importlib.util.find_spec("genai_prices") is not None


def _snapshot():
    try:
        from genai_prices import data_snapshot
    except ImportError:
        raise InputError(Problem("the genai-prices catalog is not installed: pip install 'routesim[prices]'")) from None
    return data_snapshot.get_snapshot()


def find_model(provider: str | None, model: str):
    """(provider info, model info) from the catalog; InputError naming what is missing."""
    snapshot = _snapshot()
    providers = [p for p in snapshot.providers if provider is None or p.id == provider]
    if not providers:
        known = ", ".join(sorted(p.id for p in snapshot.providers))
        raise InputError(Problem(f"genai-prices has no provider '{provider}' (providers: {known})"))
    for p in providers:
        found = p.find_model(model)
        if found is not None:
            return p, found
    where = f"provider '{provider}'" if provider else "any provider"
    raise InputError(Problem(f"genai-prices has no model '{model}' at {where}"))


def _number(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    return float(value.base)  # TieredPrices


def _price_at(value, input_tokens: int) -> float | None:
    """One price key's price for a request of ``input_tokens`` (cliff tiers)."""
    if value is None or isinstance(value, Decimal):
        return _number(value)
    for tier in reversed(value.tiers):
        if input_tokens > tier.start:
            return float(tier.price)
    return float(value.base)


def point_from_catalog(model_price) -> PricePoint:
    """A genai-prices ``ModelPrice`` as a ``PricePoint``."""
    keys = (model_price.input_mtok, model_price.output_mtok, model_price.cache_read_mtok)
    thresholds = sorted({t.start for v in keys if v is not None and not isinstance(v, Decimal) for t in v.tiers})
    tiers = tuple(Tier(start, _price_at(keys[0], start + 1) or 0.0, _price_at(keys[1], start + 1) or 0.0,
                       _price_at(keys[2], start + 1)) for start in thresholds)
    return PricePoint(_number(keys[0]) or 0.0, _number(keys[1]) or 0.0, _number(keys[2]), tiers)


def catalog_schedule(provider: str | None, model: str, start: datetime, horizon_s: float) -> list[tuple[float, PricePoint]]:
    """(seconds from ``start``, price) at the start and wherever the catalog's
    price changes within the horizon: dated changes and time-of-day windows."""
    _, info = find_model(provider, model)
    instants = [start] + [t for t in _boundaries(info, start, horizon_s) if start < t < start + timedelta(seconds=horizon_s)]
    schedule: list[tuple[float, PricePoint]] = []
    for instant in sorted(set(instants)):
        point = point_from_catalog(info.get_prices(instant))
        if not schedule or schedule[-1][1] != point:
            schedule.append(((instant - start).total_seconds(), point))
    return schedule


def _boundaries(info, start: datetime, horizon_s: float) -> list[datetime]:
    """Instants at which one of the model's conditional prices may switch on or off."""
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    conditions = info.prices if isinstance(info.prices, list) else []
    out = []
    days = int(horizon_s // 86400) + 2
    for conditional in conditions:
        c = conditional.constraint
        if isinstance(c, StartDateConstraint):
            out.append(datetime.combine(c.start_date, time(0, tzinfo=timezone.utc)))
        elif isinstance(c, TimeOfDateConstraint):
            for d in range(-1, days):
                day = (start + timedelta(days=d)).date()
                out += [_at(day, c.start_time), _at(day, c.end_time)]
    return out


def _at(day: date, moment: time) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return datetime.combine(day, moment).astimezone(timezone.utc)


def describe_model(provider: str | None, model: str, at: datetime | None = None) -> str:
    """What ``routesim catalog show`` prints for one model."""
    p, info = find_model(provider, model)
    at = at or datetime.now(timezone.utc)
    point = point_from_catalog(info.get_prices(at))
    lines = [f"{p.id}/{info.id} ({info.name or info.id}), context window {info.context_window or 'unknown'}",
             f"  at {at.isoformat()}: input ${point.input_per_mtok:g}, output ${point.output_per_mtok:g}"
             + (f", cached input ${point.cached_input_per_mtok:g}" if point.cached_input_per_mtok is not None else "")
             + " per million tokens"]
    for tier in point.tiers:
        lines.append(f"  above {tier.above_input_tokens:,} input tokens: input ${tier.input_per_mtok:g}, "
                     f"output ${tier.output_per_mtok:g}"
                     + (f", cached ${tier.cached_input_per_mtok:g}" if tier.cached_input_per_mtok is not None else ""))
    if isinstance(info.prices, list):  # the last condition that holds wins; the first is the fallback
        for conditional in info.prices:
            when = "otherwise" if conditional.constraint is None else _constraint_text(conditional.constraint)
            lines.append(f"  {when}: {conditional.prices}")
    return "\n".join(lines)


def _constraint_text(c) -> str:
    if hasattr(c, "start_date"):
        return f"from {c.start_date.isoformat()}"
    return f"daily {c.start_time.strftime('%H:%M')}-{c.end_time.strftime('%H:%M')} UTC"
