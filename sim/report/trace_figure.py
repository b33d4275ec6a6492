"""The figure of ``routesim trace inspect``: arrival rate over time and token histograms per workload."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import plt, save_figure

_RATE_BINS = 200


def trace_figure(trace, path: Path) -> None:
    fig, (rate_ax, in_ax, out_ax) = plt.subplots(3, 1, figsize=(7.2, 8.4))
    duration = max(trace.duration_s, 1e-9)
    edges = np.linspace(0.0, duration, _RATE_BINS + 1)
    counts, _ = np.histogram(trace.arrival_s, bins=edges)
    rate_ax.plot((edges[:-1] + edges[1:]) / 2, counts / np.diff(edges), linewidth=1)
    rate_ax.set_xlabel("arrival time (s)")
    rate_ax.set_ylabel("requests/s")
    rate_ax.set_title(f"Arrival rate ({duration / _RATE_BINS:.3g} s bins)")
    for ax, column, label in ((in_ax, trace.input_tokens, "input tokens"), (out_ax, trace.output_tokens, "output tokens")):
        top = max(int(column.max()), 1)
        bins = np.unique(np.geomspace(1, top + 1, 50).astype(int))
        for code, name in enumerate(trace.workloads):
            values = column[trace.workload == code]
            if len(values):
                ax.hist(np.maximum(values, 1), bins=bins, histtype="step", label=name)
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} (log scale; 0 counted as 1)")
        ax.set_ylabel("requests")
        ax.legend(fontsize=8)
    for ax in (rate_ax, in_ax, out_ax):
        ax.grid(alpha=0.3)
    save_figure(fig, path)
