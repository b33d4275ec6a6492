"""``routesim catalog fit-latency``'s text: the fitted ``latency:`` block as YAML, headed by
comments that say what it came from and, with ``--check``, how well it reproduces the
measurements. Text only: the fit is latency_fit's, the check latency_check's, so neither
of those imports the other (they were a cycle through this function)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from sim.ingest.latency_check import check_fit
from sim.ingest.latency_fit import SHORT_ANSWER_SHARE, fit_latency, read_measurements


def describe_fit(path: Path, kind: str = "quantiles", check: bool = False) -> str:
    """The fitted ``latency:`` block as YAML, headed by comments that say what it came from
    (and, with ``check``, how well it reproduces the measurements)."""
    m = read_measurements(path)
    block = fit_latency(m, kind)
    short = int((m.output_tokens < SHORT_ANSWER_SHARE * np.median(m.output_tokens)).sum())
    header = [f"# Fitted by routesim catalog fit-latency from {Path(path).name}: {len(m.e2e_s)} successful requests"
              f" ({m.skipped} errors or unusable rows left out).",
              "# Decode speed = output tokens / (end-to-end latency - TTFT), per request"
              f"{f'; {short} short answer(s) left out of it' if short else ''}.",
              f"# Measured: TTFT median {np.median(m.ttft_s):.4g} s, end-to-end p50 {np.median(m.e2e_s):.4g} s, "
              f"p99 {np.quantile(m.e2e_s, 0.99):.4g} s."]
    body = yaml.safe_dump({"latency": block}, sort_keys=False, default_flow_style=None, width=100)
    text = "\n".join(header) + "\n"
    if check:
        text += check_fit(m, block).text()
    return text + body
