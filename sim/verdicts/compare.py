"""``routesim compare RUN_A RUN_B``: what changed between two finished runs, and
what it did to the policies they share.

What changed: the resolved scenarios field by field (an added or removed list
item, such as a price event, is named as one), the seed, the replications and
routesim's version. What it did: every headline metric of each shared policy in
both runs and the difference B − A with its 95% interval. With the same seed the
two runs faced the same traffic and draws wherever the change does not reach
(common random numbers), so the difference is taken replication by replication;
with different seeds the runs are independent samples and Welch's interval is
used (scipy). Both are read from each run's ``replications.parquet``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import InputError, Problem
from .gate import policy_runs
from sim.metrics.registry import BY_NAME
from sim.run.folder import read_run_files
from sim.metrics.stats import mean_ci

#: The metrics compared, in the report's headline order (per-run metrics only: the paired ones
#: are against each run's own baseline).
COMPARED = ("cost_per_1k_requests_usd", "cost_per_1k_successes_usd", "cost_usd", "success_rate",
            "answered_quality", "mean_quality", "fault_success_rate", "latency_p95_s", "latency_p99_s",
            "time_to_failover_s")
_MISSING = object()
HTML_MARKER = "<!-- written by routesim compare -->"


@dataclass(frozen=True)
class Change:
    path: str  # field path in scenario.resolved.yaml ("models.gpt-5.price.input_per_mtok", "events[+]")
    before: Any  # _MISSING when added
    after: Any  # _MISSING when removed

    def describe(self) -> str:
        if self.before is _MISSING:
            return f"{self.path}: added {_short(self.after)}"
        if self.after is _MISSING:
            return f"{self.path}: removed {_short(self.before)}"
        return f"{self.path}: {_short(self.before)} → {_short(self.after)}"


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def scenario_changes(a: Any, b: Any, path: str = "") -> list[Change]:
    """Every difference between two resolved scenarios, as field paths. Lists of equal length
    are compared item by item; otherwise the items only one of them has are added or removed."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            out += scenario_changes(a.get(key, _MISSING), b.get(key, _MISSING), sub)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) == len(b):
            return [c for k, (x, y) in enumerate(zip(a, b))
                    for c in scenario_changes(x, y, f"{path}[{k}]{_item_label(x)}")]
        return ([Change(f"{path}[−]", item, _MISSING) for item in a if item not in b]
                + [Change(f"{path}[+]", _MISSING, item) for item in b if item not in a])
    if a is _MISSING or b is _MISSING or a != b:
        return [Change(path, a, b)]
    return []


def _item_label(item: Any) -> str:
    """What a list item is, for a reader of its path: an event's kind, what it hits and when
    (``events[1] (price, big, at 300 s)``); nothing for an item without those fields."""
    if not isinstance(item, dict):
        return ""
    parts = [str(item[key]) for key in ("kind", "name", "model", "provider") if isinstance(item.get(key), str)]
    if "at_s" in item:
        parts.append(f"at {item['at_s']:g} s")
    elif "start_s" in item:
        parts.append(f"{item['start_s']:g}–{item['end_s']:g} s" if "end_s" in item else f"from {item['start_s']:g} s")
    return f" ({', '.join(parts)})" if parts else ""


@dataclass
class MetricDifference:
    metric: str
    a: float | None  # means over replications
    b: float | None
    difference: dict  # {"mean", "ci95"} of B − A
    paired: bool


@dataclass
class RunComparison:
    a: Path
    b: Path
    a_summary: dict
    b_summary: dict
    changes: list[Change]  # the scenarios, field by field (seed and replications included)
    version_a: str
    version_b: str
    shared: list[str]
    only_a: list[str]
    only_b: list[str]
    paired: bool  # same seed: differences per replication
    differences: dict[str, list[MetricDifference]]  # policy -> one per COMPARED metric


def _welch(a: list[float], b: list[float]) -> dict:
    """Mean of B − A and Welch's 95% interval (None with fewer than two values a side)."""
    from scipy import stats

    a = [v for v in a if math.isfinite(v)]
    b = [v for v in b if math.isfinite(v)]
    if not a or not b:
        return {"mean": None, "ci95": [None, None]}
    mean = sum(b) / len(b) - sum(a) / len(a)
    if len(a) < 2 or len(b) < 2:
        return {"mean": mean, "ci95": [None, None]}
    if len(set(a)) == 1 and len(set(b)) == 1:  # no spread on either side: the difference is exact
        return {"mean": mean, "ci95": [mean, mean]}
    with warnings.catch_warnings():  # nearly equal values: scipy warns of precision, the interval is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    return {"mean": mean, "ci95": [float(interval.low), float(interval.high)]}


def compare_runs(a: Path, b: Path) -> RunComparison:
    a, b = Path(a), Path(b)
    summary_a, resolved_a = read_run_files(a)
    summary_b, resolved_b = read_run_files(b)
    if a.resolve() == b.resolve():
        raise InputError(Problem("the same run twice: give two different run folders", file=str(a)))
    changes = scenario_changes(resolved_a, resolved_b)
    shared = [p for p in summary_a["policies"] if p in summary_b["policies"]]
    paired = summary_a["seed"] == summary_b["seed"]
    differences = {}
    for policy in shared:
        runs_a, runs_b = policy_runs(a, policy), policy_runs(b, policy)
        both = [r for r in sorted(runs_a) if r in runs_b]
        rows = []
        for metric in COMPARED:
            if paired:
                difference = mean_ci([runs_b[r][metric] - runs_a[r][metric] for r in both])
            else:
                difference = _welch([v[metric] for v in runs_a.values()], [v[metric] for v in runs_b.values()])
            rows.append(MetricDifference(metric, summary_a["policies"][policy][metric]["mean"],
                                         summary_b["policies"][policy][metric]["mean"], difference, paired))
        differences[policy] = rows
    return RunComparison(a, b, summary_a, summary_b, changes, summary_a["routesim_version"],
                         summary_b["routesim_version"], shared,
                         [p for p in summary_a["policies"] if p not in summary_b["policies"]],
                         [p for p in summary_b["policies"] if p not in summary_a["policies"]], paired, differences)


# --------------------------------------------------------------------------- output
def _value(metric: str, x: float | None) -> str:
    from sim.report.format import fmt_value

    return fmt_value(x, BY_NAME[metric].unit)


def _signed(x: float, unit: str) -> str:
    """A difference in its unit, its sign in front ("-$0.28", not "$-0.28")."""
    from sim.report.format import fmt_value

    unit = "ratio" if unit == "delta" else unit  # delta carries its own sign
    return ("-" if x < 0 else "+" if x > 0 else "") + fmt_value(abs(x), unit)


def _difference(metric: str, d: dict) -> str:
    unit = BY_NAME[metric].unit
    if d["mean"] is None:
        return "n/a"
    lo, hi = d["ci95"]
    return _signed(d["mean"], unit) + (f" [{_signed(lo, unit)}, {_signed(hi, unit)}]" if lo is not None else "")


def clear(d: dict) -> bool:
    """The interval of the difference excludes zero."""
    lo, hi = d["ci95"]
    return lo is not None and (lo > 0 or hi < 0)


@dataclass(frozen=True)
class ComparisonRow:
    """One (policy, metric) line of the comparison, formatted. A dataclass, not a dict: in the
    page's template ``row.clear`` on a dict is the dict's ``clear`` method, always true."""

    policy: str
    metric: str
    a: str
    b: str
    difference: str
    clear: bool  # the difference's interval excludes zero
    mean: float | None


def comparison_rows(c: RunComparison) -> list[ComparisonRow]:
    return [ComparisonRow(policy, row.metric, _shown(c.a_summary, policy, row.metric, row.a),
                          _shown(c.b_summary, policy, row.metric, row.b), _difference(row.metric, row.difference),
                          clear(row.difference), row.difference["mean"])
            for policy, rows in c.differences.items() for row in rows]


def _shown(summary: dict, policy: str, metric: str, mean: float | None) -> str:
    """A run's value as its report shows it: time to failover in the report's words ("never"
    when no fault window recovered: the number is then the windows' length)."""
    if metric == "time_to_failover_s":
        from sim.report.headline import failover_words

        return failover_words(_value(metric, mean), summary["policies"][policy]["never_recovered_share"]["mean"])
    return _value(metric, mean)


def terminal_text(c: RunComparison) -> str:
    lines = [f"A: {c.a} (scenario {c.a_summary['scenario']}, seed {c.a_summary['seed']}, "
             f"{c.a_summary['replications']} replication(s), routesim {c.version_a})",
             f"B: {c.b} (scenario {c.b_summary['scenario']}, seed {c.b_summary['seed']}, "
             f"{c.b_summary['replications']} replication(s), routesim {c.version_b})", "",
             "What changed (scenario.resolved.yaml, A → B):"]
    lines += [f"  {change.describe()}" for change in c.changes] or ["  nothing"]
    if c.version_a != c.version_b:
        lines.append(f"  routesim: {c.version_a} → {c.version_b}")
    lines.append("")
    if c.only_a or c.only_b:
        lines.append(f"Only in A: {', '.join(c.only_a) or '-'}; only in B: {', '.join(c.only_b) or '-'}")
    rows = [["policy", "metric", "A", "B", "B − A [95% CI]", ""]]
    rows += [[r.policy, r.metric, r.a, r.b, r.difference, "*" if r.clear else ""]
             for r in comparison_rows(c)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    table.insert(1, "  ".join("-" * w for w in widths))
    lines += table
    lines.append("")
    lines.append("* the interval excludes no change. " + (
        "Same seed: differences are paired replication by replication (common random numbers)."
        if c.paired else "Different seeds: independent samples, Welch's interval."))
    return "\n".join(lines)


def write_html(c: RunComparison, path: Path) -> None:
    """The comparison as one self-contained page. An existing file is replaced only if routesim
    compare wrote it (its first line says so)."""
    from sim.files import atomic_file, first_line_is
    from sim.report.render import render_page

    path = Path(path)
    if path.exists() and not first_line_is(path, HTML_MARKER):
        raise InputError(Problem("exists and was not written by routesim compare; it is left as it is; "
                                 "choose another --html", file=str(path)))
    html = render_page("compare.html.j2", c=c, rows=comparison_rows(c))
    with atomic_file(path, "comparison page") as tmp:
        tmp.write_text(html, encoding="utf-8")
