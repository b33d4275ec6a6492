"""How well a fitted latency block reproduces the measurements it came from: the
measured requests' token counts are replayed through the simulator (a static
policy on one model with that latency, no faults, no timeout, each request
``copies`` times), and the distribution of simulated end-to-end latency is
compared with the measured one: p5, p50, p90, p99 relative errors and the
two-sample Kolmogorov–Smirnov statistic."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .latency_fit import Measurements

PERCENTILES = (5, 50, 90, 99)


class FitCheck(NamedTuple):
    requests: int  # measured requests replayed
    simulated: np.ndarray  # end-to-end seconds, every replayed copy
    relative_errors: dict[int, float]  # percentile -> simulated / measured - 1
    ks_d: float

    def text(self) -> str:
        errors = ", ".join(f"p{p} {e:+.1%}" for p, e in self.relative_errors.items())
        return (f"# Check: {self.requests} measured requests x {len(self.simulated) // self.requests} replayed through "
                f"this fit: end-to-end latency {errors}; KS D {self.ks_d:.3f}.\n")


def replay(m: Measurements, latency_block: dict, copies: int = 40, seed: int = 0):
    """Each measured request's token counts, ``copies`` times, through the simulator: a
    frame of ``input_tokens``, ``output_tokens``, ``ttft_s`` and ``latency_s``."""
    import pandas as pd
    import yaml

    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    n = len(m.e2e_s)
    with tempfile.TemporaryDirectory(prefix="routesim-fit-check-") as folder:
        folder = Path(folder)
        pd.DataFrame({"arrival_s": np.arange(n * copies, dtype=float),
                      "input_tokens": np.tile(m.input_tokens.astype(np.int64), copies),
                      "output_tokens": np.tile(m.output_tokens.astype(np.int64), copies)}
                     ).to_csv(folder / "replay.csv", index=False)
        scenario = {"name": "fit-check", "seed": seed, "replications": 1, "trace": {"path": "replay.csv"},
                    "models": {"fitted": {"provider": "measured", "price": {"input_per_mtok": 1, "output_per_mtok": 1},
                                          "latency": latency_block, "quality": {"default": 0.0},
                                          "context_window": int(1e9)}},
                    "router": {"timeout_s": 1e9, "max_attempts": 1},
                    "policies": {"fitted": {"kind": "static", "model": "fitted"}}}
        (folder / "check.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
        run_to_folder(load_scenario(folder / "check.yaml"), folder / "out", report=False)
        return pd.read_parquet(folder / "out" / "requests.parquet",
                               columns=["input_tokens", "output_tokens", "ttft_s", "latency_s"])


def check_fit(m: Measurements, latency_block: dict, copies: int = 40, seed: int = 0) -> FitCheck:
    from scipy import stats

    simulated = replay(m, latency_block, copies, seed).latency_s.to_numpy()
    errors = {p: float(np.percentile(simulated, p) / np.percentile(m.e2e_s, p) - 1.0) for p in PERCENTILES}
    return FitCheck(len(m.e2e_s), simulated, errors, float(stats.ks_2samp(simulated, m.e2e_s).statistic))
