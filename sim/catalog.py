"""The scenario's models as arrays indexed by model number, for the engine.

TTFT and tokens/s are each a lognormal (``distributions.Lognormal``: TTFT by
median and p95, tokens/s by median and p5, its slow tail) or an empirical
quantile table (``distributions.QuantileTable``); a prefill rate adds time per
input token to TTFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distributions import Lognormal, QuantileTable
from .errors import InputError
from .prices import PricePoint, Tier, catalog_schedule
from .scenario import LoadedScenario, start_instant
from .schema.deployments import ModelSpec

#: Catalog prices are resolved this far past the last arrival (attempts outlive it).
_PRICE_MARGIN_S = 3600.0


@dataclass(frozen=True)
class Catalog:
    names: list[str]
    providers: list[str]
    context_window: list[int]
    prices: list[list[tuple[float, PricePoint]]]  # per model: (time, price) from the price spec, sorted
    ttft: list[Lognormal | QuantileTable]  # per model: the time to first token before prefill
    tokens_per_s: list[Lognormal | QuantileTable]
    prefill_s_per_token: np.ndarray  # per model: seconds of TTFT per input token (0: none)
    speed_correlation: list[float]  # per model: correlation of the normal scores of TTFT and speed
    ttft_median_s: list[float]
    tps_median: list[float]
    fail_fast_s: list[float]
    error_rate: list[float]
    carbon_g_per_mtok: list[float | None]
    ability: np.ndarray  # (models, workloads): ground truth, logit scale
    workloads: list[str]

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def models_of_provider(self, provider: str) -> list[int]:
        return [i for i, p in enumerate(self.providers) if p == provider]


def build_catalog(loaded: LoadedScenario, workloads: list[str], horizon_s: float = 0.0) -> Catalog:
    """Arrays for every model; ``workloads`` are those the trace uses, ``horizon_s``
    how far catalog price schedules must reach."""
    sc = loaded.scenario
    specs = list(sc.models.values())
    ability = np.zeros((len(specs), len(workloads)))
    problems = []
    for m, (name, spec) in enumerate(sc.models.items()):
        for w, workload in enumerate(workloads):
            value = spec.quality.get(workload, spec.quality.get("default"))
            if value is None:
                problems.append(loaded.problem(("models", name, "quality"),
                                               f"no ability for workload '{workload}' and no 'default'"))
            else:
                ability[m, w] = value
    if problems:
        raise InputError(problems)
    lat = [s.latency for s in specs]
    return Catalog(
        names=list(sc.models),
        providers=[s.provider for s in specs],
        context_window=[s.context_window for s in specs],
        prices=[price_schedule(loaded, name, spec, horizon_s) for name, spec in sc.models.items()],
        ttft=[l.ttft_s.distribution() for l in lat],
        tokens_per_s=[l.tokens_per_s.distribution() for l in lat],
        prefill_s_per_token=np.array([0.0 if l.prefill_tokens_per_s is None else 1.0 / l.prefill_tokens_per_s
                                      for l in lat]),
        speed_correlation=[l.ttft_speed_correlation for l in lat],
        ttft_median_s=[l.ttft_s.median for l in lat],
        tps_median=[l.tokens_per_s.median for l in lat],
        fail_fast_s=[l.fail_fast_s for l in lat],
        error_rate=[s.error_rate for s in specs],
        carbon_g_per_mtok=[s.carbon_g_per_mtok for s in specs],
        ability=ability,
        workloads=list(workloads),
    )


def price_schedule(loaded: LoadedScenario, name: str, spec: ModelSpec, horizon_s: float) -> list[tuple[float, PricePoint]]:
    """A model's prices over time: its list price from t = 0, or the catalog's."""
    p = spec.price
    if p.catalog is None:
        tiers = tuple(Tier(t.above_input_tokens, t.input_per_mtok, t.output_per_mtok, t.cached_input_per_mtok)
                      for t in p.tiers)
        return [(0.0, PricePoint(p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok, tiers))]
    try:
        return catalog_schedule(p.provider or spec.provider, p.model or name, start_instant(loaded.scenario),
                                horizon_s + _PRICE_MARGIN_S)
    except InputError as exc:
        raise InputError([loaded.problem(("models", name, "price"), q.message) for q in exc.problems]) from None
