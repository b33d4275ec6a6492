"""The sweep's report: ``sweep.md`` and its figures, from the rows of sweep.parquet.

- one figure per headline metric (savings, quality change, success rate, cost
  per 1k requests) against the first swept parameter, a line per policy (the
  mean over seeds, bars for the seeds' spread or, with one seed, the run's 95%
  interval); with a second parameter, a panel per value of it; further
  parameters are listed, not averaged away: each combination is its own line;
- when the first two parameters are numbers, a heatmap of each metric over
  them, a panel per policy;
- the cost-quality frontier over every (cell, policy): the settings no other
  setting beats on both cost and quality, marked and listed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import atomic_file
from .render import markdown_text

if TYPE_CHECKING:
    from ..sweep import LoadedSweep

HEADLINE = [("savings_vs_baseline", "savings vs the baseline", True), ("quality_delta_vs_baseline",
            "quality change vs the baseline", False), ("success_rate", "success rate", True),
            ("cost_per_1k_requests_usd", "cost per 1k requests (USD)", False)]
MAX_PANELS = 6


def write_sweep_report(sweep: "LoadedSweep", rows: list[dict], out: Path) -> list[str]:
    """Write the figures and sweep.md; returns the figure file names."""
    import matplotlib

    matplotlib.use("Agg")
    parameters = sweep.spec.parameters()
    figures = []
    if rows and parameters:
        two_numbers = len(parameters) >= 2 and all(
            isinstance(row[p], (int, float)) for row in rows for p in parameters[:2])
        for metric, label, percent in HEADLINE:
            name = f"sweep_{metric}.png"
            _metric_figure(rows, parameters, metric, label, percent, out / name)
            figures.append(name)
            if two_numbers:
                name = f"sweep_{metric}_heatmap.png"
                _heatmap(rows, parameters, metric, label, percent, out / name)
                figures.append(name)
    frontier = pareto_frontier(rows)
    if rows:
        _frontier_figure(rows, frontier, out / "sweep_frontier.png")
        figures.append("sweep_frontier.png")
    with atomic_file(out / "sweep.md", "sweep report") as tmp:
        tmp.write_text(_markdown(sweep, rows, parameters, frontier, figures), encoding="utf-8")
    return figures


# --------------------------------------------------------------------------- numbers
def _lines(rows: list[dict], parameters: list[str], metric: str):
    """{(panel value, line label): [(x, mean, lo, hi)]}: over seeds, the mean and its spread."""
    x_param, panel_param, rest = parameters[0], parameters[1] if len(parameters) > 1 else None, parameters[2:]
    groups: dict[tuple, dict[Any, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get(f"{metric}_mean") is None:
            continue
        label = row["policy"] + "".join(f", {p}={row[p]}" for p in rest)
        groups[(row[panel_param] if panel_param else None, label)][row[x_param]].append(row)
    lines = {}
    for key, by_x in groups.items():
        points = []
        for x, found in by_x.items():
            means = [r[f"{metric}_mean"] for r in found]
            mean = sum(means) / len(means)
            if len(means) > 1:
                lo, hi = min(means), max(means)
            else:
                lo, hi = found[0][f"{metric}_ci95_lo"], found[0][f"{metric}_ci95_hi"]
            points.append((x, mean, mean if lo is None else lo, mean if hi is None else hi))
        lines[key] = sorted(points, key=lambda p: _sort_key(p[0]))
    return lines


def _sort_key(value):
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


def pareto_frontier(rows: list[dict]) -> list[dict]:
    """The (cell, seed, policy) rows no other row beats on both cost per 1k requests (lower)
    and mean quality (higher), cheapest first."""
    points = [r for r in rows if r.get("cost_per_1k_requests_usd_mean") is not None
              and r.get("mean_quality_mean") is not None]
    points.sort(key=lambda r: (r["cost_per_1k_requests_usd_mean"], -r["mean_quality_mean"]))
    frontier, best = [], -math.inf
    for r in points:
        if r["mean_quality_mean"] > best:
            frontier.append(r)
            best = r["mean_quality_mean"]
    return frontier


# --------------------------------------------------------------------------- figures
def _metric_figure(rows, parameters, metric, label, percent, path: Path) -> None:
    import matplotlib.pyplot as plt

    from .figures import save_figure

    lines = _lines(rows, parameters, metric)
    panels = sorted({panel for panel, _ in lines}, key=_sort_key)[:MAX_PANELS]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels) + 1.5, 3.8), squeeze=False, sharey=True)
    scale = 100.0 if percent else 1.0
    for ax, panel in zip(axes[0], panels):
        for (p, name), points in sorted(lines.items(), key=lambda item: str(item[0][1])):
            if p != panel:
                continue
            xs = list(range(len(points))) if not all(isinstance(x, (int, float)) for x, *_ in points) \
                else [x for x, *_ in points]
            means = [m * scale for _, m, _, _ in points]
            err = [[(m - lo) * scale for _, m, lo, _ in points], [(hi - m) * scale for _, m, _, hi in points]]
            ax.errorbar(xs, means, yerr=err, marker="o", capsize=3, label=name)
            if xs != [x for x, *_ in points]:
                ax.set_xticks(xs, [str(x) for x, *_ in points], rotation=30)
        ax.set_xlabel(parameters[0])
        if panel is not None:
            ax.set_title(f"{parameters[1]} = {panel}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(label + (" (%)" if percent else ""))
    axes[0][-1].legend(fontsize=7, loc="best")
    save_figure(fig, path)


def _heatmap(rows, parameters, metric, label, percent, path: Path) -> None:
    """The metric over the first two swept parameters, a panel per policy (the mean over seeds
    and over any further parameters, which the panel's title says)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .figures import save_figure

    x_param, y_param = parameters[:2]
    xs = sorted({r[x_param] for r in rows})
    ys = sorted({r[y_param] for r in rows})
    policies = list(dict.fromkeys(r["policy"] for r in rows))[:MAX_PANELS]
    scale = 100.0 if percent else 1.0
    fig, axes = plt.subplots(1, len(policies), figsize=(3.6 * len(policies) + 1.0, 3.4), squeeze=False)
    for ax, policy in zip(axes[0], policies):
        grid = np.full((len(ys), len(xs)), np.nan)
        for j, y in enumerate(ys):
            for i, x in enumerate(xs):
                values = [r[f"{metric}_mean"] for r in rows if r["policy"] == policy and r[x_param] == x
                          and r[y_param] == y and r.get(f"{metric}_mean") is not None]
                if values:
                    grid[j, i] = scale * sum(values) / len(values)
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        for j in range(len(ys)):
            for i in range(len(xs)):
                if not np.isnan(grid[j, i]):
                    ax.text(i, j, f"{grid[j, i]:.3g}", ha="center", va="center", fontsize=7, color="white")
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs], fontsize=7)
        ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys], fontsize=7)
        ax.set_xlabel(x_param, fontsize=8)
        ax.set_ylabel(y_param, fontsize=8)
        ax.set_title(policy + (" (mean over " + ", ".join(parameters[2:]) + ")" if parameters[2:] else ""),
                     fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(label + (" (%)" if percent else ""), fontsize=9)
    save_figure(fig, path)


def _frontier_figure(rows, frontier, path: Path) -> None:
    import matplotlib.pyplot as plt

    from .figures import save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    by_policy: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("cost_per_1k_requests_usd_mean") is not None and r.get("mean_quality_mean") is not None:
            by_policy[r["policy"]].append(r)
    for policy, found in sorted(by_policy.items()):
        ax.scatter([r["cost_per_1k_requests_usd_mean"] for r in found], [r["mean_quality_mean"] for r in found],
                   s=18, alpha=0.7, label=policy)
    if frontier:
        ax.plot([r["cost_per_1k_requests_usd_mean"] for r in frontier], [r["mean_quality_mean"] for r in frontier],
                color="black", linewidth=1, drawstyle="steps-post", label="frontier (no setting beats it on both)")
    ax.set_xlabel("cost per 1k requests (USD)")
    ax.set_ylabel("mean quality")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


# --------------------------------------------------------------------------- sweep.md
def _claim_section(claim, rows, parameters) -> list[str]:
    from ..claims import verdicts

    found = verdicts(claim, rows, parameters)
    holds = sum(v.holds for v in found)
    beaten = sum(bool(v.beaten_by) for v in found)
    parts = []
    if claim.min_savings is not None:
        parts.append(f"saves at least {claim.min_savings:.0%} (lower 95% bound)")
    if claim.max_savings is not None:
        parts.append(f"at most {claim.max_savings:.0%} (mean)")
    if claim.max_quality_drop is not None:
        parts.append(f"loses at most {claim.max_quality_drop:g} quality over all requests and in its answers "
                     "(the 95% bound)")
    if claim.rivals:
        parts.append("and no " + " or ".join(f"`{markdown_text(r)}`" for r in claim.rivals)
                     + " reaches its quality for no more cost (means)")
    out = ["## The claim", ""]
    if claim.statement:
        out += [f"> {markdown_text(claim.statement)}", ""]
    out += [f"Checked in every run: `{markdown_text(claim.policy)}` " + ", ".join(parts) + ".", "",
            f"**It holds in {holds} of {len(found)} run(s)**; a rival beats it in {beaten}.", "",
            "| cell | " + " | ".join(markdown_text(p) for p in parameters) + " | seed | savings | quality change "
            "| holds | why not |", "|---" * (len(parameters) + 6) + "|"]
    for v in found:
        why = v.failed + [f"beaten by {markdown_text(r)}" for r in v.beaten_by] + v.notes
        savings, delta = _interval(*v.savings, percent=True), _interval(*v.quality_delta, percent=False)
        out.append(f"| {v.cell} | " + " | ".join(str(markdown_text(v.parameters[p])) for p in parameters)
                   + f" | {v.seed} | {savings} | {delta} | {'yes' if v.holds else 'no'} | {'; '.join(why)} |")
    return out + [""]



def _row_interval(row: dict, metric: str, percent: bool) -> str:
    return _interval(*(row.get(f"{metric}_{part}") for part in ("mean", "ci95_lo", "ci95_hi")), percent=percent)


def _interval(mean, lo, hi, percent: bool) -> str:
    if mean is None:
        return "n/a"
    fmt = (lambda v: f"{100 * v:.1f}%") if percent else (lambda v: f"{v:.4g}")
    return fmt(mean) if lo is None else f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]"


def _markdown(sweep, rows, parameters, frontier, figures) -> str:
    spec = sweep.spec
    seeds = sorted({c.seed for c in sweep.cells})
    out = [f"# Sweep: {markdown_text(spec.name)}", ""]
    if spec.description:
        out += [markdown_text(spec.description), ""]
    out += [f"Base scenario: `{markdown_text(spec.base)}`; {len(sweep.cells)} run(s): "
            f"{len(sweep.cells) // max(1, len(seeds))} cell(s) x {len(seeds)} seed(s) ({', '.join(map(str, seeds))}), "
            f"{sweep.cells[0].replications if sweep.cells else 0} replication(s) each, common random numbers "
            "across cells. Swept: " + ", ".join(f"`{markdown_text(p)}`" for p in parameters) + ".", ""]
    for figure in figures:
        out += [f"![{figure}]({figure})", ""]
    if spec.claim is not None:
        out += _claim_section(spec.claim, rows, parameters)
    out += ["## The cost-quality frontier", "",
            "Settings no other setting of the sweep beats on both cost and quality, cheapest first:", "",
            "| cell | " + " | ".join(markdown_text(p) for p in parameters) + " | seed | policy | cost / 1k | quality |",
            "|---" * (len(parameters) + 5) + "|"]
    for r in frontier:
        out.append(f"| {r['cell']} | " + " | ".join(str(markdown_text(r[p])) for p in parameters)
                   + f" | {r['seed']} | {markdown_text(r['policy'])} | {r['cost_per_1k_requests_usd_mean']:.4g} | "
                   f"{r['mean_quality_mean']:.4f} |")
    out += ["", "## Every cell", "",
            "Means with 95% intervals over the replications (sweep.parquet has every summary metric).", "",
            "| cell | " + " | ".join(markdown_text(p) for p in parameters)
            + " | seed | policy | savings | quality change | success rate | cost / 1k |",
            "|---" * (len(parameters) + 7) + "|"]
    for r in rows:
        out.append(f"| {r['cell']} | " + " | ".join(str(markdown_text(r[p])) for p in parameters)
                   + f" | {r['seed']} | {markdown_text(r['policy'])} | {_row_interval(r, 'savings_vs_baseline', True)} | "
                   f"{_row_interval(r, 'quality_delta_vs_baseline', False)} | {_row_interval(r, 'success_rate', True)} | "
                   f"{_row_interval(r, 'cost_per_1k_requests_usd', False)} |")
    return "\n".join(out) + "\n"
