"""The scenario's models as arrays indexed by model number, for the engine.

TTFT and tokens/s are each a lognormal (``distributions.Lognormal``: TTFT by
median and p95, tokens/s by median and p5, its slow tail) or an empirical
quantile table (``distributions.QuantileTable``); a prefill rate adds time per
input token to TTFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.distributions import Lognormal, QuantileTable
from sim.errors import InputError
from sim.pricing.points import PricePoint
from sim.pricing.schedule import price_schedule
from sim.scenario.load import LoadedScenario, start_instant
from sim.scenario.schema.deployments import ModelSpec

#: ModelTable prices are resolved this far past the last arrival (attempts outlive it).
_PRICE_MARGIN_S = 3600.0


@dataclass(frozen=True)
class ModelTable:
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


def build_model_table(loaded: LoadedScenario, workloads: list[str], horizon_s: float = 0.0) -> ModelTable:
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
    return ModelTable(
        names=list(sc.models),
        providers=[s.provider for s in specs],
        context_window=[s.context_window for s in specs],
        prices=[_price_schedule(loaded, name, spec, horizon_s) for name, spec in sc.models.items()],
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


def _price_schedule(loaded: LoadedScenario, name: str, spec: ModelSpec, horizon_s: float):
    """A model's prices over time, a catalog's problem named at the model's ``price`` field."""
    start = None if spec.price.catalog is None else start_instant(loaded.scenario)  # a list price needs none
    try:
        return price_schedule(spec.price, spec.provider, name, start, horizon_s + _PRICE_MARGIN_S)
    except InputError as exc:
        raise InputError([loaded.problem(("models", name, "price"), q.message) for q in exc.problems]) from None
