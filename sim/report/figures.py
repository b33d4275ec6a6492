"""The report's figures, one PNG each, drawn from a run's ``RunData``.

Each ``draw`` function returns a matplotlib Figure, or None when the figure would
show nothing (success over time in a run where no request failed); the report
then leaves it out. Point labels are placed by adjustText inside the axes, and
legends sit outside the data, so nothing hides a point or another label.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sim.metrics.research import nondecreasing_hull  # noqa: E402

_METADATA = {"Software": None}  # keep PNG bytes independent of the matplotlib build
_FAULT_COLOURS = {"outage": "red", "incident": "orange", "partial_outage": "orange", "brownout": "purple",
                  "latency_spike": "blue"}


def save_figure(fig, path: Path, layout: bool = True) -> None:
    """Save and close ``fig``; ``layout``: lay it out tightly first (False: its draw function
    already did, and placed labels that a new layout would move)."""
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=_METADATA)
    plt.close(fig)


def _err(metric: dict):
    lo, hi = metric["ci95"]
    if lo is None or metric["mean"] is None:
        return None
    return [[metric["mean"] - lo], [hi - metric["mean"]]]


def policy_colours(policies) -> dict[str, str]:
    """Each policy's colour by its place among the scenario's policies: the same in every figure
    of a run, whichever policies a figure leaves out, and in a sweep's figures over it."""
    return {name: f"C{k % 10}" for k, name in enumerate(policies)}


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


def cost_vs_quality(run):
    """Every policy's mean point, and the frontier the deployable ones span: the
    non-decreasing convex hull (what mixing them at random could reach)."""
    fig, ax = plt.subplots(figsize=(7.4, 5.0))
    deployable = [run.summary[n] for n in run.policies if n not in run.upper_bounds]
    points = [(s["cost_per_1k_requests_usd"]["mean"], s["mean_quality"]["mean"]) for s in deployable]
    points = [(c, q) for c, q in points if c is not None and q is not None]
    if points:
        xs, ys = nondecreasing_hull(*zip(*points))
        ax.plot(xs, ys, color="grey", linestyle="--", linewidth=1, zorder=0,
                label="frontier (non-decreasing convex hull)")
    at: dict[tuple[float, float], list[str]] = {}  # policies on the same point share one label
    for name in run.policies:
        s = run.summary[name]
        x, q = s["cost_per_1k_requests_usd"], s["mean_quality"]
        if x["mean"] is None or q["mean"] is None:
            continue
        bound = name in run.upper_bounds
        label = name + (" (upper bound)" if bound else "")
        ax.errorbar([x["mean"]], [q["mean"]], xerr=_err(x), yerr=_err(q), fmt="*" if bound else "o",
                    markersize=11 if bound else 6, capsize=3, label=label, color=policy_colours(run.policies)[name])
        at.setdefault((round(x["mean"], 9), round(q["mean"], 9)), []).append(label)
    texts = [ax.text(x, q, " = ".join(labels), fontsize=8) for (x, q), labels in at.items()]
    ax.margins(0.12)  # room for the labels beside the outermost points
    _y_at_least(ax, 0.02)  # quality a few 1e-5 apart is no difference: do not blow it up
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel("cost per 1k requests (USD)")
    ax.set_ylabel("mean quality (share of acceptable answers)")
    ax.set_title("Cost vs quality (95% CI over replications)")
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    place_labels(fig, ax, texts, [x for x, _ in at], [q for _, q in at])
    return fig


def latency_cdf(run):
    fig, ax = plt.subplots(figsize=(7.4, 4.6))
    plotted = 0
    for name in run.policies:
        curve = run.series[name].latency_quantiles
        if not np.isfinite(curve).any():
            continue  # no successful request in any replication
        ax.plot(curve, np.linspace(0, 1, len(curve)), label=name, color=policy_colours(run.policies)[name])
        plotted += 1
    if not plotted:
        ax.text(0.5, 0.5, "no successful requests", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.set_xscale("log")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("latency of successful requests (s, log scale)")
    ax.set_ylabel("share of requests")
    ax.set_title("Latency CDF (quantiles averaged over replications)")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def success_over_time(run):
    """The success rate by arrival time, the axis zoomed to the lowest dip; None when no
    request failed (a flat line at 1 says nothing)."""
    if all((run.series[name].success_ok == run.series[name].success_total).all() for name in run.policies):
        return None
    fig, ax = plt.subplots(figsize=(7.4, 4.4))
    _mark_events(ax, run)
    edges = _edges(run)
    centres = (edges[:-1] + edges[1:]) / 2
    lowest = 1.0
    for name in run.policies:
        s = run.series[name]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(s.success_total > 0, s.success_ok / np.maximum(s.success_total, 1), np.nan)
        ax.plot(centres, rate, label=name, linewidth=1.2, color=policy_colours(run.policies)[name])
        if np.isfinite(rate).any():
            lowest = min(lowest, float(np.nanmin(rate)))
    gap = 1.0 - lowest
    ax.set_ylim(max(-0.02, lowest - 0.1 * gap - 0.002), 1.0 + 0.05 * gap + 0.002)
    ax.set_xlabel("arrival time (s)")
    ax.set_ylabel("success rate" + (" (axis zoomed)" if lowest > 0.5 else ""))
    ax.set_title("Success rate over time (all replications)")
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    fig.tight_layout()
    return fig


def traffic_share(run):
    """Per policy, the share of answered requests each model served over time (stacked);
    fault windows hatched, and stretches where requests came but none was answered marked."""
    policies = run.policies
    models = sorted({m for name in policies for m in run.series[name].served_by_model})
    colours = dict(zip(models, plt.get_cmap("tab10").colors * 3))
    fig, axes = plt.subplots(len(policies), 1, figsize=(7.4, 1.7 * len(policies) + 1.2), sharex=True, squeeze=False)
    edges = _edges(run)
    centres = (edges[:-1] + edges[1:]) / 2
    unanswered_anywhere = False
    for ax, name in zip(axes[:, 0], policies):
        series = run.series[name]
        served = series.served_by_model
        ax.set_ylabel(name, fontsize=8)
        ax.set_ylim(0, 1)
        for start, end, _, _ in run.fault_windows:
            ax.axvspan(start, end, facecolor="none", edgecolor="0.35", hatch="///", linewidth=0, zorder=3)
        if not served:
            ax.text(0.5, 0.5, "no answered requests", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            continue
        total = np.maximum(sum(served.values(), np.zeros(len(centres))), 1)
        shares = [served.get(m, np.zeros(len(centres))) / total for m in models]
        ax.stackplot(centres, shares, colors=[colours[m] for m in models], labels=models)
        unanswered = (series.success_total > 0) & (series.success_ok == 0)
        for k in np.flatnonzero(unanswered):
            ax.axvspan(edges[k], edges[k + 1], color="0.85", zorder=2)
        unanswered_anywhere |= bool(unanswered.any())
    axes[0, 0].set_title("Traffic share by model over time (answered requests, all replications)")
    axes[-1, 0].set_xlabel("arrival time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[m]) for m in models]
    names = list(models)
    if run.fault_windows:
        handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="0.35", hatch="///"))
        names.append("fault window")
    if unanswered_anywhere:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.85"))
        names.append("no request answered")
    if handles:
        fig.legend(handles, names, fontsize=7, loc="lower center", ncol=min(len(names), 4))
    rows = -(-len(names) // 4)
    fig.tight_layout(rect=(0, 0.03 + 0.035 * rows, 1, 1))
    return fig


def cumulative_cost(run):
    fig, ax = plt.subplots(figsize=(7.4, 4.4))
    _mark_events(ax, run)
    edges = _edges(run)
    for name in run.policies:
        ax.plot(edges[1:], run.series[name].cumulative_cost, label=name, linewidth=1.2,
                color=policy_colours(run.policies)[name])
    ax.set_xlabel("arrival time (s)")
    ax.set_ylabel("USD spent (mean over replications)")
    ax.set_title("Cumulative cost over time")
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    fig.tight_layout()
    return fig


def per_workload(run):
    """Cost per 1k requests and mean quality per workload, side by side for every policy;
    quality with its 95% interval, its axis zoomed to the data (a 0–1 axis hides a
    six-point drop)."""
    workloads = sorted({w for name in run.policies for w in run.series[name].workloads.index})
    fig, (cost_ax, quality_ax) = plt.subplots(1, 2, figsize=(8.4, 4.4))
    width = 0.8 / max(len(run.policies), 1)
    x = np.arange(len(workloads))
    low, high = 1.0, 0.0
    for k, name in enumerate(run.policies):
        table = run.series[name].workloads.reindex(workloads)
        colour = policy_colours(run.policies)[name]
        cost_ax.bar(x + k * width, table.cost_per_1k_usd, width, label=name, color=colour)
        quality = table.mean_quality.to_numpy(dtype=float)
        lo = table.quality_lo.to_numpy(dtype=float)
        hi = table.quality_hi.to_numpy(dtype=float)
        lo, hi = np.where(np.isnan(lo), quality, lo), np.where(np.isnan(hi), quality, hi)
        quality_ax.bar(x + k * width, quality, width, label=name, color=colour,
                       yerr=[np.nan_to_num(quality - lo), np.nan_to_num(hi - quality)], capsize=2,
                       error_kw={"linewidth": 0.8})
        if np.isfinite(lo).any():
            low, high = min(low, float(np.nanmin(lo))), max(high, float(np.nanmax(hi)))
    if low <= high:
        pad = max(0.02, 0.15 * (high - low))
        quality_ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad))
    for ax, title in ((cost_ax, "cost per 1k requests (USD)"),
                      (quality_ax, "mean quality, 95% CI (axis zoomed)")):
        ax.set_xticks(x + width * (len(run.policies) - 1) / 2, workloads, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Per workload (means over replications)")
    handles, labels = cost_ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=min(len(labels), 4))
    fig.tight_layout(rect=(0, 0.03 + 0.05 * -(-len(labels) // 4), 1, 1))
    return fig


#: file -> (caption: what to look for, draw). A draw returns a Figure, or None to leave it out.
FIGURES = {
    "cost_vs_quality.png": ("Up and to the left is better. The dashed frontier is what mixing the deployable "
                            "policies at random could reach: a policy below it is beaten by such a mix. "
                            "Bars are 95% intervals over replications.", cost_vs_quality),
    "latency_cdf.png": ("Latency of answered requests: the further left a curve, the faster; where the curves part "
                        "near the top is the slow tail (p95, p99).", latency_cdf),
    "success_over_time.png": ("Share of requests answered by arrival time, fault windows shaded: how deep each "
                              "policy dips and how fast it recovers.", success_over_time),
    "traffic_share.png": ("Which model answered, over time, per policy. Hatched: fault windows; grey: stretches "
                          "where requests came and none was answered.", traffic_share),
    "cumulative_cost.png": ("Money spent by each moment: the slope is the spend rate; a kink is a fault, a price "
                            "change or a traffic spike.", cumulative_cost),
    "per_workload.png": ("Cost and quality per workload, quality with 95% intervals on a zoomed axis: a policy "
                         "can win on average and lose on one workload.", per_workload),
}


def draw_figures(run) -> dict:
    """file -> (caption, Figure) of every figure that shows something."""
    drawn = {}
    for file, (caption, draw) in FIGURES.items():
        fig = draw(run)
        if fig is not None:
            drawn[file] = (caption, fig)
    return drawn


def write_figures(run, folder: Path) -> dict[str, str]:
    """Write every figure that shows something (removing an earlier run's copy of one left
    out: the folder is routesim's and the file its own); returns file name -> caption."""
    drawn = draw_figures(run)
    for file in FIGURES:
        if file in drawn:
            save_figure(drawn[file][1], folder / file, layout=False)
        else:
            (folder / file).unlink(missing_ok=True)
    return {file: caption for file, (caption, _) in drawn.items()}


def _y_at_least(ax, span: float) -> None:
    """Widen the y axis to at least ``span`` around its middle."""
    lo, hi = ax.get_ylim()
    if hi - lo < span:
        middle = (lo + hi) / 2
        ax.set_ylim(middle - span / 2, middle + span / 2)


def _legend_below(fig, ax) -> None:
    """The axes' legend under them, outside the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=min(len(labels), 3), frameon=False)


def place_labels(fig, ax, texts: list, xs: list[float], ys: list[float]) -> None:
    """Move point labels off each other and off the points, inside the axes (adjustText);
    a label it cannot place clear of the others is dropped (the legend still names it)."""
    from adjustText import adjust_text

    if not texts:
        return
    fig.tight_layout()  # the axes' final size first: adjustText works in display space
    quiet = logging.getLogger("adjustText")  # "labels too long": such a label is dropped below, as said
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # its logger.warn
            _, arrows = adjust_text(texts, x=xs, y=ys, ax=ax, ensure_inside_axes=True, expand_axes=False,
                                    arrowprops={"arrowstyle": "-", "color": "0.5", "linewidth": 0.5})
    finally:
        quiet.setLevel(level)
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    kept = []
    for text in texts:
        box = text.get_window_extent(renderer)
        clear = (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
                 and not any(box.overlaps(other) for other in kept))
        if clear:
            kept.append(box)
        else:  # and the line that led to it
            for arrow in arrows:
                if getattr(getattr(arrow, "arrow_patch", arrow), "patchA", None) is text:
                    arrow.remove()
            text.remove()
