"""The report's figures, one PNG each, drawn from a run's ``RunData``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..research import nondecreasing_hull  # noqa: E402

_METADATA = {"Software": None}  # keep PNG bytes independent of the matplotlib build
_FAULT_COLOURS = {"outage": "red", "incident": "orange", "partial_outage": "orange", "brownout": "purple",
                  "latency_spike": "blue"}


def save_figure(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=_METADATA)
    plt.close(fig)


def _err(metric: dict):
    lo, hi = metric["ci95"]
    if lo is None or metric["mean"] is None:
        return None
    return [[metric["mean"] - lo], [hi - metric["mean"]]]


def _edges(run) -> np.ndarray:
    bins = len(next(iter(run.series.values())).success_total)
    return np.linspace(0, max(run.horizon_s, 1e-9), bins + 1)


def _mark_events(ax, run, shade: bool = True) -> None:
    """Fault windows as shaded spans (or, over filled areas, their edges), price changes as dashed lines."""
    labelled = set()
    for start, end, kind, target in run.fault_windows:
        colour, label = _FAULT_COLOURS.get(kind, "grey"), None if kind in labelled else kind.replace("_", " ")
        if shade:
            ax.axvspan(start, end, color=colour, alpha=0.12, label=label)
        else:
            ax.axvline(start, color=colour, linewidth=1.2, label=label)
            ax.axvline(end, color=colour, linewidth=1.2)
        labelled.add(kind)
    for k, at in enumerate(run.price_changes):
        ax.axvline(at, color="grey", linestyle="--", linewidth=1, label="price change" if k == 0 else None)


def cost_vs_quality(run, path: Path) -> None:
    """Every policy's mean point, and the frontier the deployable ones span: the
    non-decreasing convex hull (what mixing them at random could reach)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    deployable = [run.summary[n] for n in run.policies if n not in run.upper_bounds]
    points = [(s["cost_per_1k_requests_usd"]["mean"], s["mean_quality"]["mean"]) for s in deployable]
    points = [(c, q) for c, q in points if c is not None and q is not None]
    if points:
        xs, ys = nondecreasing_hull(*zip(*points))
        ax.plot(xs, ys, color="grey", linestyle="--", linewidth=1, zorder=0,
                label="frontier (non-decreasing convex hull)")
    for name in run.policies:
        s = run.summary[name]
        x, q = s["cost_per_1k_requests_usd"], s["mean_quality"]
        bound = name in run.upper_bounds
        label = name + (" (upper bound)" if bound else "")
        ax.errorbar([x["mean"]], [q["mean"]], xerr=_err(x), yerr=_err(q), fmt="*" if bound else "o",
                    markersize=11 if bound else 6, capsize=3, label=label)
        ax.annotate(label, (x["mean"], q["mean"]), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("cost per 1k requests (USD)")
    ax.set_ylabel("mean quality (share of acceptable answers)")
    ax.set_title("Cost vs quality (95% CI over replications)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def latency_cdf(run, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    plotted = 0
    for name in run.policies:
        curve = run.series[name].latency_quantiles
        if not np.isfinite(curve).any():
            continue  # no successful request in any replication
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
    save_figure(fig, path)


def success_over_time(run, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    _mark_events(ax, run)
    edges = _edges(run)
    centres = (edges[:-1] + edges[1:]) / 2
    for name in run.policies:
        s = run.series[name]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(s.success_total > 0, s.success_ok / np.maximum(s.success_total, 1), np.nan)
        ax.plot(centres, rate, label=name, linewidth=1.2)
    ax.set_xlabel("arrival time (s)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Success rate over time (all replications)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    save_figure(fig, path)


def traffic_share(run, path: Path) -> None:
    """Per policy, the share of answered requests each model served over time (stacked)."""
    policies = run.policies
    models = sorted({m for name in policies for m in run.series[name].served_by_model})
    colours = dict(zip(models, plt.get_cmap("tab10").colors * 3))
    fig, axes = plt.subplots(len(policies), 1, figsize=(7.2, 1.7 * len(policies) + 0.8), sharex=True, squeeze=False)
    edges = _edges(run)
    centres = (edges[:-1] + edges[1:]) / 2
    for ax, name in zip(axes[:, 0], policies):
        served = run.series[name].served_by_model
        if not served:
            ax.text(0.5, 0.5, "no answered requests", ha="center", va="center", transform=ax.transAxes)
            ax.set_ylabel(name, fontsize=8)
            continue
        total = np.maximum(sum(served.values(), np.zeros(len(centres))), 1)
        shares = [served.get(m, np.zeros(len(centres))) / total for m in models]
        ax.stackplot(centres, shares, colors=[colours[m] for m in models], labels=models)
        _mark_events(ax, run, shade=False)
        ax.set_ylim(0, 1)
        ax.set_ylabel(name, fontsize=8)
    axes[0, 0].set_title("Traffic share by model over time (answered requests, all replications)")
    axes[-1, 0].set_xlabel("arrival time (s)")
    if models:
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[m]) for m in models]
        fig.legend(handles, models, fontsize=7, loc="lower center", ncol=min(len(models), 5))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110, metadata=_METADATA)
    plt.close(fig)


def cumulative_cost(run, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    _mark_events(ax, run)
    edges = _edges(run)
    for name in run.policies:
        ax.plot(edges[1:], run.series[name].cumulative_cost, label=name, linewidth=1.2)
    ax.set_xlabel("arrival time (s)")
    ax.set_ylabel("USD spent (mean over replications)")
    ax.set_title("Cumulative cost over time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)


def per_workload(run, path: Path) -> None:
    """Cost per 1k requests and mean quality per workload, side by side for every policy."""
    workloads = sorted({w for name in run.policies for w in run.series[name].workloads.index})
    fig, (cost_ax, quality_ax) = plt.subplots(1, 2, figsize=(8.4, 3.8))
    width = 0.8 / max(len(run.policies), 1)
    x = np.arange(len(workloads))
    for k, name in enumerate(run.policies):
        table = run.series[name].workloads.reindex(workloads)
        cost_ax.bar(x + k * width, table.cost_per_1k_usd, width, label=name)
        quality_ax.bar(x + k * width, table.mean_quality, width, label=name)
    for ax, title in ((cost_ax, "cost per 1k requests (USD)"), (quality_ax, "mean quality")):
        ax.set_xticks(x + width * (len(run.policies) - 1) / 2, workloads, fontsize=8)
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
    quality_ax.legend(fontsize=7)
    fig.suptitle("Per workload (means over replications)")
    save_figure(fig, path)


FIGURES = {
    "cost_vs_quality.png": ("Cost vs quality, with the frontier of the deployable policies", cost_vs_quality),
    "latency_cdf.png": ("Latency CDF", latency_cdf),
    "success_over_time.png": ("Success rate over time", success_over_time),
    "traffic_share.png": ("Traffic share by model over time", traffic_share),
    "cumulative_cost.png": ("Cumulative cost over time", cumulative_cost),
    "per_workload.png": ("Per-workload cost and quality", per_workload),
}


def write_figures(run, folder: Path) -> dict[str, str]:
    """Write every figure; returns file name -> caption."""
    for file, (_, draw) in FIGURES.items():
        draw(run, folder / file)
    return {file: caption for file, (caption, _) in FIGURES.items()}
