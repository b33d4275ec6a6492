"""The sweep's report: ``sweep.md`` and its figures, from the rows of sweep.parquet.

- one figure per headline metric (savings, quality change, success rate, cost
  per 1k requests) against the first swept parameter, a line per policy (the
  mean over seeds, bars for the seeds' spread or, with one seed, the run's 95%
  interval); with a second parameter, a panel per value of it; further
  parameters are listed, not averaged away: each combination is its own line;
- when the first two parameters are numbers, a heatmap of each metric over
  them, a panel per policy;
- the cost-quality frontier over every (cell, policy): the settings no other
  setting beats on both cost and quality, marked, labelled and listed; a policy
  the swept values do not reach (the same cost and quality in every cell) is one
  point, not one per cell.

``sweep.html`` is the same report as one self-contained page (figures embedded),
formatted as a run's report: the same number formats, policy colours and a
glossary; ``reports/index.html`` lists it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.verdicts.claims import metric_triple, verdicts
from sim.files import atomic_file
from sim.metrics.registry import BY_NAME
from .format import fmt_metric, fmt_value, usd_decimals
from .render import markdown_text

if TYPE_CHECKING:
    from sim.experiments.sweep import LoadedSweep

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
        _frontier_figure(rows, frontier, parameters, out / "sweep_frontier.png")
        figures.append("sweep_frontier.png")
    context = sweep_context(sweep, rows, parameters, frontier, figures)
    with atomic_file(out / "sweep.md", "sweep report") as tmp:
        tmp.write_text(_markdown(context), encoding="utf-8")
    with atomic_file(out / SWEEP_PAGE, "sweep report") as tmp:
        tmp.write_text(_html(context, out), encoding="utf-8")
    record = {"name": context["name"], "runs": context["runs"], "cells": context["cells_count"],
              "seeds": context["seeds"], "parameters": parameters,
              "claim": None if context["claim"] is None else
              {"policy": context["claim"]["policy"], "holds": context["claim"]["holds"],
               "total": context["claim"]["total"]}}
    with atomic_file(out / SWEEP_RECORD, "sweep record") as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return figures


SWEEP_PAGE = "sweep.html"
SWEEP_RECORD = "sweep.json"  # what the index of runs lists of a sweep


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
    and mean quality (higher), cheapest first; a policy with the same point in every cell of a
    seed (the sweep does not reach it) counts once, its row marked ``every_cell``."""
    points = [r for r in collapse_unswept(rows) if r.get("cost_per_1k_requests_usd_mean") is not None
              and r.get("mean_quality_mean") is not None]
    points.sort(key=lambda r: (r["cost_per_1k_requests_usd_mean"], -r["mean_quality_mean"]))
    frontier, best = [], -math.inf
    for r in points:
        if r["mean_quality_mean"] > best:
            frontier.append(r)
            best = r["mean_quality_mean"]
    return frontier


def collapse_unswept(rows: list[dict]) -> list[dict]:
    """``rows`` with each (policy, seed) whose cost and quality are the same in every cell kept
    once, as its first row with ``every_cell`` set: the swept values do not reach that policy."""
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by_key[(r["policy"], r["seed"])].append(r)
    constant = {key for key, found in by_key.items() if len(found) > 1 and len(
        {(r.get("cost_per_1k_requests_usd_mean"), r.get("mean_quality_mean")) for r in found}) == 1}
    out, kept = [], set()
    for r in rows:
        key = (r["policy"], r["seed"])
        if key not in constant:
            out.append(r)
        elif key not in kept:
            out.append({**r, "every_cell": True})
            kept.add(key)
    return out


def _policy_order(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["policy"] for r in rows))  # the base scenario's order, as its runs


# --------------------------------------------------------------------------- figures
def _metric_figure(rows, parameters, metric, label, percent, path: Path) -> None:
    import matplotlib.pyplot as plt

    from .figures import save_figure

    from .figures import policy_colours

    lines = _lines(rows, parameters, metric)
    colours = policy_colours(_policy_order(rows))
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
            ax.errorbar(xs, means, yerr=err, marker="o", capsize=3, label=name,
                        color=colours[name.split(", ", 1)[0]] if name.split(", ", 1)[0] in colours else None)
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


def _frontier_figure(rows, frontier, parameters, path: Path) -> None:
    import matplotlib.pyplot as plt

    from .figures import place_labels, policy_colours, save_figure

    fig, ax = plt.subplots(figsize=(7.4, 5.0))
    colours = policy_colours(_policy_order(rows))
    by_policy: dict[str, list[dict]] = defaultdict(list)
    for r in collapse_unswept(rows):
        if r.get("cost_per_1k_requests_usd_mean") is not None and r.get("mean_quality_mean") is not None:
            by_policy[r["policy"]].append(r)
    for policy in _policy_order(rows):
        found = by_policy.get(policy, [])
        if found:
            ax.scatter([r["cost_per_1k_requests_usd_mean"] for r in found], [r["mean_quality_mean"] for r in found],
                       s=18, alpha=0.7, label=policy, color=colours[policy])
    texts = []
    if frontier:
        ax.plot([r["cost_per_1k_requests_usd_mean"] for r in frontier], [r["mean_quality_mean"] for r in frontier],
                color="black", linewidth=1, drawstyle="steps-post", label="frontier (no setting beats it on both)")
        texts = [ax.text(r["cost_per_1k_requests_usd_mean"], r["mean_quality_mean"], point_label(r, parameters),
                         fontsize=7) for r in frontier]
    ax.margins(0.12)
    ax.set_xlabel("cost per 1k requests (USD)")
    ax.set_ylabel("mean quality (share of acceptable answers)")
    ax.set_title("Cost vs quality of every setting; the frontier's points labelled")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if texts:
        place_labels(fig, ax, texts, [r["cost_per_1k_requests_usd_mean"] for r in frontier],
                     [r["mean_quality_mean"] for r in frontier])
    save_figure(fig, path)


def point_label(row: dict, parameters: list[str]) -> str:
    """What a frontier point is: its policy and the swept values of its cell (none for a policy
    the sweep does not reach)."""
    if row.get("every_cell"):
        return f"{row['policy']} (every cell)"
    return f"{row['policy']}: " + ", ".join(f"{p.rsplit('.', 1)[-1]}={_value(row[p])}" for p in parameters)


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- sweep.md and sweep.html
#: The columns of the tables of cells: (metric, title), formatted in the metric's unit as a run's report.
CELL_COLUMNS = [("savings_vs_baseline", "Savings per request"), ("quality_delta_vs_baseline", "Quality Δ"),
                ("success_rate", "Availability"), ("cost_per_1k_requests_usd", "Cost / 1k req")]


def sweep_context(sweep, rows, parameters, frontier, figures) -> dict:
    """What both pages show, every number formatted once (format.fmt_value, as a run's report)."""
    from .context import PERCENTAGE_POINTS, glossary_entry, plain_definition

    spec = sweep.spec
    seeds = sorted({c.seed for c in sweep.cells})
    decimals = usd_decimals(v for r in rows for v in metric_triple(r, "cost_per_1k_requests_usd"))
    frontier_decimals = usd_decimals(r["cost_per_1k_requests_usd_mean"] for r in frontier)

    def where(r):
        return {"cell": "every" if r.get("every_cell") else str(r["cell"]),
                "values": ["—" if r.get("every_cell") else _value(r[p]) for p in parameters],
                "seed": str(r["seed"]), "policy": r["policy"]}

    cells = [{**where(r), "metrics": [_interval(metric_triple(r, m), BY_NAME[m].unit, decimals)
                                      for m, _ in CELL_COLUMNS]} for r in rows]
    front = [{**where(r), "cost": fmt_value(r["cost_per_1k_requests_usd_mean"], "usd", frontier_decimals),
              "quality": fmt_value(r["mean_quality_mean"], "ratio")} for r in frontier]
    shown = [m for m, _ in CELL_COLUMNS] + ["mean_quality"]
    titles = dict(CELL_COLUMNS) | {"mean_quality": "Quality (all requests)"}
    glossary = [glossary_entry(m, titles[m], plain_definition(BY_NAME[m].definition)) for m in shown]
    return {"name": spec.name, "description": spec.description or "", "base": spec.base,
            "runs": len(sweep.cells), "cells_count": len(sweep.cells) // max(1, len(seeds)), "seeds": seeds,
            "replications": sweep.cells[0].replications if sweep.cells else 0, "parameters": parameters,
            "figures": figures, "claim": _claim_context(spec.claim, rows, parameters) if spec.claim else None,
            "frontier": front, "cells": cells, "columns": [title for _, title in CELL_COLUMNS],
            "glossary": glossary + [glossary_entry("pp", "pp", PERCENTAGE_POINTS)]}


def _interval(triple: tuple, unit: str, decimals: int | None = None) -> str:
    """(mean, lo, hi) as ``mean [lo, hi]`` in ``unit``, as a run's report shows it."""
    mean, lo, hi = triple
    return fmt_metric({"mean": mean, "ci95": [lo, hi]}, unit, usd_decimals=decimals)


def _claim_context(claim, rows, parameters) -> dict:

    found = verdicts(claim, rows, parameters)
    parts = []
    if claim.min_savings is not None:
        parts.append(f"saves at least {claim.min_savings:.0%} (lower 95% bound)")
    if claim.max_savings is not None:
        parts.append(f"at most {claim.max_savings:.0%} (mean)")
    if claim.max_quality_drop is not None:
        parts.append(f"loses at most {claim.max_quality_drop:g} quality over all requests and in its answers "
                     "(the 95% bound)")
    if claim.rivals:
        parts.append("and no " + " or ".join(claim.rivals) + " reaches its quality for no more cost (means)")
    runs = [{"cell": str(v.cell), "values": [_value(v.parameters[p]) for p in parameters], "seed": str(v.seed),
             "savings": _interval(v.savings, "pct"), "quality": _interval(v.quality_delta, "delta"),
             "holds": v.holds, "why": "; ".join(v.failed + [f"beaten by {r}" for r in v.beaten_by] + v.notes)}
            for v in found]
    return {"statement": claim.statement or "", "policy": claim.policy, "parts": ", ".join(parts),
            "holds": sum(v.holds for v in found), "total": len(found),
            "beaten": sum(bool(v.beaten_by) for v in found), "runs": runs}


def _markdown(c: dict) -> str:
    md = markdown_text
    out = [f"# Sweep: {md(c['name'])}", ""]
    if c["description"]:
        out += [md(c["description"]), ""]
    out += [f"Base scenario: `{md(c['base'])}`; {c['runs']} run(s): {c['cells_count']} cell(s) x {len(c['seeds'])} "
            f"seed(s) ({', '.join(map(str, c['seeds']))}), {c['replications']} replication(s) each, common random "
            "numbers across cells. Swept: " + ", ".join(f"`{md(p)}`" for p in c["parameters"]) + ".", ""]
    for figure in c["figures"]:
        out += [f"![{figure}]({figure})", ""]
    names = " | ".join(md(p) for p in c["parameters"])
    if c["claim"]:
        claim = c["claim"]
        out += ["## The claim", ""]
        if claim["statement"]:
            out += [f"> {md(claim['statement'])}", ""]
        out += [f"Checked in every run: `{md(claim['policy'])}` {md(claim['parts'])}.", "",
                f"**It holds in {claim['holds']} of {claim['total']} run(s)**; a rival beats it in {claim['beaten']}.",
                "", f"| cell | {names} | seed | savings | quality change | holds | why not |",
                "|---" * (len(c["parameters"]) + 6) + "|"]
        out += [f"| {r['cell']} | " + " | ".join(md(v) for v in r["values"]) + f" | {r['seed']} | {r['savings']} | "
                f"{r['quality']} | {'yes' if r['holds'] else 'no'} | {md(r['why'])} |" for r in claim["runs"]]
        out += [""]
    out += ["## The cost-quality frontier", "",
            "Settings no other setting of the sweep beats on both cost and quality, cheapest first (a policy the "
            "swept values do not reach is one row, cell \"every\"):", "",
            f"| cell | {names} | seed | policy | Cost / 1k req | Quality (all requests) |",
            "|---" * (len(c["parameters"]) + 5) + "|"]
    out += [f"| {r['cell']} | " + " | ".join(md(v) for v in r["values"])
            + f" | {r['seed']} | {md(r['policy'])} | {r['cost']} | {r['quality']} |" for r in c["frontier"]]
    out += ["", "## Every cell", "",
            "Means with 95% intervals over the replications (sweep.parquet has every summary metric).", "",
            f"| cell | {names} | seed | policy | " + " | ".join(c["columns"]) + " |",
            "|---" * (len(c["parameters"]) + 7) + "|"]
    out += [f"| {r['cell']} | " + " | ".join(md(v) for v in r["values"]) + f" | {r['seed']} | {md(r['policy'])} | "
            + " | ".join(r["metrics"]) + " |" for r in c["cells"]]
    out += ["", "## Glossary", ""]
    out += [f"- **{g['label']}**" + (f" (`{g['name']}`)" if g["label"] != g["name"] else "") + f": {g['definition']}"
            for g in c["glossary"]]
    return "\n".join(out) + "\n"


def _html(c: dict, folder: Path) -> str:
    from .render import embedded_images, render_page

    return render_page("sweep.html.j2", c=c, images=embedded_images(folder, c["figures"]))
