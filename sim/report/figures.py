"""The report's figures, one PNG each."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..research import nondecreasing_hull  # noqa: E402

_METADATA = {"Software": None}  # keep PNG bytes independent of the matplotlib build


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=_METADATA)
    plt.close(fig)


def cost_vs_quality(result, path: Path) -> None:
    """Every policy's mean point, and the frontier the deployable ones span: the
    non-decreasing convex hull (what mixing them at random could reach)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    deployable = [result.summary[n] for n in result.policies if n not in result.upper_bounds]
    points = [(s["cost_per_1k_requests_usd"]["mean"], s["mean_quality"]["mean"]) for s in deployable]
    points = [(c, q) for c, q in points if c is not None and q is not None]
    if points:
        xs, ys = nondecreasing_hull(*zip(*points))
        ax.plot(xs, ys, color="grey", linestyle="--", linewidth=1, zorder=0,
                label="frontier (non-decreasing convex hull)")
    for name in result.policies:
        s = result.summary[name]
        x, q = s["cost_per_1k_requests_usd"], s["mean_quality"]
        xerr = _err(x)
        yerr = _err(q)
        bound = name in result.upper_bounds
        label = name + (" (upper bound)" if bound else "")
        ax.errorbar([x["mean"]], [q["mean"]], xerr=xerr, yerr=yerr, fmt="*" if bound else "o",
                    markersize=11 if bound else 6, capsize=3, label=label)
        ax.annotate(label, (x["mean"], q["mean"]), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("cost per 1k requests (USD)")
    ax.set_ylabel("mean quality (share of acceptable answers)")
    ax.set_title("Cost vs quality (95% CI over replications)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, path)


def _err(metric: dict):
    lo, hi = metric["ci95"]
    if lo is None or metric["mean"] is None:
        return None
    return [[metric["mean"] - lo], [hi - metric["mean"]]]


def latency_cdf(result, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    plotted = 0
    for name, res in result.policies.items():
        curves = np.array(res.latency_quantiles)
        if not np.isfinite(curves).any():
            continue  # no successful request in any replication
        curve = np.nanmean(curves, axis=0)
        ax.plot(curve, np.linspace(0, 1, len(curve)), label=name)
        plotted += 1
    if not plotted:
        ax.text(0.5, 0.5, "no successful requests", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    ax.set_xlabel("latency of successful requests (s, log scale)")
    ax.set_ylabel("share of requests")
    ax.set_title("Latency CDF (quantiles averaged over replications)")
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)


def success_over_time(result, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    colours = {"outage": "red", "incident": "orange", "partial_outage": "orange", "brownout": "purple",
               "latency_spike": "blue"}
    labelled = set()
    for start, end, kind, target in result.fault_windows:
        ax.axvspan(start, end, color=colours.get(kind, "grey"), alpha=0.12,
                   label=None if kind in labelled else kind.replace("_", " "))
        labelled.add(kind)
    for k, at in enumerate(result.price_changes):
        ax.axvline(at, color="grey", linestyle="--", linewidth=1, label="price change" if k == 0 else None)
    edges = np.linspace(0, max(result.horizon_s, 1e-9), len(next(iter(result.policies.values())).success_total) + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for name, res in result.policies.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(res.success_total > 0, res.success_ok / np.maximum(res.success_total, 1), np.nan)
        ax.plot(centres, rate, label=name, linewidth=1.2)
    ax.set_xlabel("arrival time (s)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Success rate over time (all replications)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    _save(fig, path)


FIGURES = {
    "cost_vs_quality.png": ("Cost vs quality, with the frontier of the deployable policies", cost_vs_quality),
    "latency_cdf.png": ("Latency CDF", latency_cdf),
    "success_over_time.png": ("Success rate over time", success_over_time),
}


def write_figures(result, folder: Path) -> dict[str, str]:
    """Write every figure; returns file name -> caption."""
    for file, (_, draw) in FIGURES.items():
        draw(result, folder / file)
    return {file: caption for file, (caption, _) in FIGURES.items()}
