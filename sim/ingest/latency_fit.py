"""Fit a deployment's latency block from per-request measurements: llmperf's JSON
(ray-project/llmperf's ``*_individual_responses.json``) or a table (CSV/Parquet)
of time to first token, end-to-end latency, input and output tokens.

Decode speed is derived per request as output tokens / (end-to-end latency −
TTFT): the tokens/s the simulator draws is the speed *after* the first token.
llmperf's ``request_output_throughput_token_per_s`` divides by the whole
latency, TTFT included, so using it as the speed puts latencies too high.

The default fit is an empirical quantile table of TTFT and of decode speed; a
lognormal (median and p95 / p5) is the other choice. Short answers (under half
the median output) are left out of the speed fit: the fixed end-of-stream cost
they carry makes their per-token speed look slow, and drawn for a full-length
answer it would invent a slow tail (llmperf anyscale Llama-2-70B: p99 +41%).
The correlation of TTFT and speed is fitted as the correlation of their normal
scores (a Gaussian copula). Where the input length varies and TTFT grows with it
(a significant positive least-squares slope), the slope becomes a prefill rate
and the table is fitted to TTFT without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sim.errors import InputError, Problem
from sim.files import check_input_file

#: Probabilities of the quantile table: dense in the tails, where latency targets live.
TABLE_PROBABILITIES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65,
                       0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0)
MIN_REQUESTS = 20  # fewer usable measurements than this fit nothing worth simulating
SHORT_ANSWER_SHARE = 0.5  # answers shorter than this share of the median output are left out of the speed fit
PREFILL_P_VALUE = 0.01  # a slope of TTFT on input tokens below this significance is no prefill rate
#: Each measurement's column names in a table (the first is the one the docs give)...
TABLE_COLUMNS = {"ttft_s": ("ttft_s", "ttft"), "e2e_s": ("end_to_end_latency_s", "e2e_s", "latency_s"),
                 "input_tokens": ("input_tokens", "number_input_tokens"),
                 "output_tokens": ("output_tokens", "number_output_tokens")}
#: ...and its key in llmperf's per-request records.
LLMPERF_KEYS = {"ttft_s": "ttft_s", "e2e_s": "end_to_end_latency_s", "input_tokens": "number_input_tokens",
                "output_tokens": "number_output_tokens"}


class Measurements(NamedTuple):
    """Successful requests only: per request TTFT and end-to-end seconds, token counts."""

    ttft_s: np.ndarray
    e2e_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    skipped: int  # errors and unusable rows left out

    @property
    def decode_tokens_per_s(self) -> np.ndarray:
        return self.output_tokens / (self.e2e_s - self.ttft_s)


def read_measurements(path: Path) -> Measurements:
    """Read llmperf JSON (a list of per-request records) or a CSV/Parquet table."""
    path = Path(path)
    check_input_file(path)
    if path.suffix == ".json":
        columns = _llmperf_columns(path)
    elif path.suffix in (".csv", ".parquet"):
        columns = _table_columns(path)
    else:
        raise InputError(Problem(f"unknown format '{path.suffix}': give llmperf's .json, or a .csv or .parquet "
                                 "table", file=str(path)))
    ttft, e2e, tokens_in, tokens_out = (np.asarray(columns[k], dtype=float) for k in TABLE_COLUMNS)
    with np.errstate(invalid="ignore"):
        usable = (np.isfinite(ttft) & np.isfinite(e2e) & np.isfinite(tokens_in) & np.isfinite(tokens_out)
                  & (ttft > 0) & (e2e > ttft) & (tokens_out > 0) & (tokens_in >= 0))
    usable &= columns["ok"]
    if usable.sum() < MIN_REQUESTS:
        raise InputError(Problem(f"only {int(usable.sum())} successful requests with 0 < ttft < end-to-end latency "
                                 f"and output tokens > 0; at least {MIN_REQUESTS} are needed", file=str(path)))
    return Measurements(ttft[usable], e2e[usable], tokens_in[usable], tokens_out[usable], int((~usable).sum()))


def _llmperf_columns(path: Path) -> dict:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Problem(f"not valid JSON ({exc})", file=str(path))) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(Problem("expected llmperf's per-request list of records", file=str(path)))
    columns: dict = {"ok": np.array([r.get("error_code") is None for r in records], dtype=bool)}
    for name, key in LLMPERF_KEYS.items():
        if records and not any(key in r for r in records):
            raise InputError(Problem(f"no record has '{key}'", file=str(path)))
        columns[name] = [_number(r.get(key)) for r in records]
    return columns


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def _table_columns(path: Path) -> dict:
    import pandas as pd

    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas and pyarrow raise many types for a damaged file
        raise InputError(Problem(f"cannot read the table ({type(exc).__name__}: {exc})", file=str(path))) from None
    columns: dict = {"ok": np.ones(len(frame), dtype=bool)}
    for name, keys in TABLE_COLUMNS.items():
        found = next((k for k in keys if k in frame.columns), None)
        if found is None:
            raise InputError(Problem(f"missing column '{keys[0]}' (or {', '.join(repr(k) for k in keys[1:])})",
                                     file=str(path)))
        columns[name] = pd.to_numeric(frame[found], errors="coerce").to_numpy(dtype=float)
    if "error_code" in frame.columns:
        columns["ok"] = frame["error_code"].isna().to_numpy()
    return columns


def prefill_rate(m: Measurements) -> float | None:
    """Input tokens per second of prefill, where TTFT grows significantly with the input."""
    from scipy import stats

    if np.ptp(m.input_tokens) == 0:
        return None  # one prompt length: nothing to fit
    fit = stats.linregress(m.input_tokens, m.ttft_s)
    if fit.slope <= 0 or fit.pvalue >= PREFILL_P_VALUE:
        return None
    return float(1.0 / fit.slope)


def quantile_table(values: np.ndarray) -> dict:
    points = np.quantile(values, TABLE_PROBABILITIES)
    return {"quantiles": [[p, _round(v)] for p, v in zip(TABLE_PROBABILITIES, points)]}


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Each value's rank mapped to the standard normal quantile (ties share the mean rank)."""
    from scipy import stats
    from scipy.special import ndtri

    return ndtri((stats.rankdata(values) - 0.5) / len(values))


def fit_latency(m: Measurements, kind: str = "quantiles") -> dict:
    """The ``latency`` block of a model, as a plain mapping ready for YAML."""
    rate = prefill_rate(m)
    ttft = m.ttft_s if rate is None else np.maximum(m.ttft_s - m.input_tokens / rate, np.min(m.ttft_s) * 0.01)
    full_length = m.output_tokens >= SHORT_ANSWER_SHARE * np.median(m.output_tokens)
    speed = m.decode_tokens_per_s[full_length]
    both = normal_scores(ttft[full_length]), normal_scores(speed)
    correlation = 0.0 if np.ptp(both[0]) == 0 or np.ptp(both[1]) == 0 else float(np.corrcoef(*both)[0, 1])
    if kind == "quantiles":
        block = {"ttft_s": quantile_table(ttft), "tokens_per_s": quantile_table(speed)}
    elif kind == "lognormal":
        block = {"ttft_s": {"median": _round(np.median(ttft)), "p95": _round(np.quantile(ttft, 0.95))},
                 "tokens_per_s": {"median": _round(np.median(speed)), "p5": _round(np.quantile(speed, 0.05))}}
    else:
        raise InputError(Problem(f"unknown fit '{kind}': give 'quantiles' or 'lognormal'"))
    if rate is not None:
        block["prefill_tokens_per_s"] = _round(rate)
    block["ttft_speed_correlation"] = round(min(max(correlation, -0.99), 0.99), 3)
    return block


def _round(value: float) -> float:
    return float(f"{float(value):.6g}")
