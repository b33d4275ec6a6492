"""Number formatting shared by the report and the terminal table."""

from __future__ import annotations

from sim.metrics.registry import BY_NAME


def fmt_value(value: float | None, kind: str, usd_decimals: int | None = None) -> str:
    """One number as the reports show it: ``kind`` is usd, pct, delta, seconds, count or ratio.
    ``usd_decimals``: a table column's (``usd_decimals_of``), so one column never mixes $4.48
    and $0.9876; alone, a dollar figure under $1 gets four."""
    if value is None or value != value:  # None or NaN: nothing was measured
        return "n/a"
    if kind == "usd":
        decimals = usd_decimals if usd_decimals is not None else 4 if abs(value) < 1 else 2
        return f"${value:,.{decimals}f}"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "delta":
        return f"{value:+.4f}"
    if kind == "seconds":
        return f"{value:.3f}"
    if kind == "count":
        return f"{value:,.1f}"
    return f"{value:.4f}"


def fmt_metric(metric: dict, kind: str, with_ci: bool = True, usd_decimals: int | None = None) -> str:
    """``mean [lo, hi]`` for a summary entry ``{"mean": x, "ci95": [lo, hi]}``."""
    text = fmt_value(metric["mean"], kind, usd_decimals)
    lo, hi = metric["ci95"]
    if with_ci and lo is not None and hi is not None:
        text += f" [{fmt_value(lo, kind, usd_decimals)}, {fmt_value(hi, kind, usd_decimals)}]"
    return text


def fmt_named(entries: dict, name: str, with_ci: bool = True, usd_decimals: int | None = None) -> str:
    """Metric ``name`` of a summary's entries, shown in its registry unit."""
    return fmt_metric(entries[name], BY_NAME[name].unit, with_ci, usd_decimals)


def usd_decimals(shown) -> int:
    """The decimals of a dollar column showing the figures ``shown``: four when any is under $1,
    else two (missing ones left out)."""
    return 4 if any(abs(v) < 1 for v in shown if v is not None and v == v) else 2


def usd_decimals_of(entries: list[dict], name: str, with_ci: bool = True) -> int | None:
    """``usd_decimals`` of metric ``name`` over several policies' summary ``entries`` (their means,
    and bounds when the column shows them); None for a metric in another unit."""
    if BY_NAME[name].unit != "usd":
        return None
    return usd_decimals(v for e in entries for v in (e[name]["mean"], *(e[name]["ci95"] if with_ci else ())))


#: How a backtest figure's verdict (``backtest.BacktestRow.verdict``) reads.
VERDICT_WORDS = {"ok": "ok", "noisy": "too noisy to judge", "miss": "MISS"}
_BACKTEST_KINDS = {"usd": "usd", "share": "pct", "seconds": "seconds"}  # a backtest unit -> fmt_value's kind


def backtest_cells(record: dict) -> list[dict]:
    """A backtest record's rows (backtest.json) as text cells, for the terminal and the report."""

    def value(unit: str, x: float) -> str:
        text = fmt_value(x, _BACKTEST_KINDS[unit])
        return f"{text} s" if unit == "seconds" and text != "n/a" else text

    cells = []
    for r in record["rows"]:
        unit, error = r["unit"], r["error"]
        cells.append({
            "figure": r["figure"], "logged": value(unit, r["logged"]), "simulated": value(unit, r["simulated"]),
            "interval": f"[{value(unit, r['ci95'][0])}, {value(unit, r['ci95'][1])}]",
            "error": "n/a" if error != error else f"{error * 100:+.2f} pts" if unit == "share" else f"{error:+.2%}",
            "target": f"±{r['target'] * 100:g} pts" if unit == "share" else f"±{r['target']:.0%}",
            "verdict": r["verdict"], "verdict_words": VERDICT_WORDS[r["verdict"]]})
    return cells


def policy_label(result, name: str, short: bool = False) -> str:
    """A policy's name as tables show it: the baseline and any upper bound marked."""
    if name == result.baseline:
        return name + (" *" if short else " (baseline)")
    if name in result.upper_bounds:
        return name + (" †" if short else " (upper bound, unreachable)")
    return name
