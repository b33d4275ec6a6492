"""The comparison table printed after a run (plain text: it goes to logs too)."""

from __future__ import annotations

from .format import fmt_named, policy_label
from .notes import run_warnings

_COLUMNS = (  # (title, metric); formats follow the registry's units
    ("policy", None),
    ("cost/1k req", "cost_per_1k_requests_usd"),
    ("cost/1k answered", "cost_per_1k_successes_usd"),
    ("savings", "savings_vs_baseline"),
    ("savings/answer", "savings_per_answer_vs_baseline"),
    ("success", "success_rate"),
    ("answer quality", "answered_quality"),
    ("quality", "mean_quality"),
    ("Δ quality", "quality_delta_vs_baseline"),
    ("p95 s", "latency_p95_s"),
    ("fallback", "fallback_rate"),
)


#: How a backtest figure's verdict reads in a table.
VERDICT_WORDS = {"ok": "ok", "noisy": "too noisy to judge", "miss": "MISS"}


def backtest_table(rows: list[dict]) -> str:
    """The backtest's figures (``backtest.table_rows``), aligned, a MISS where one is off its target."""
    lines = [["Figure", "Logged", "Simulated", "95% CI", "Error", "Target", ""]]
    lines += [[r["figure"], r["logged"], r["simulated"], r["interval"], r["error"], r["target"],
               VERDICT_WORDS[r["verdict"]]] for r in rows]
    return _aligned(lines)


def _aligned(rows: list[list[str]]) -> str:
    """Text columns: the first left-aligned, the others right-aligned, a rule under the titles."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def comparison_table(result) -> str:
    rows = [[title for title, _ in _COLUMNS]]
    for name in result.policies:
        s = result.summary[name]
        row = [policy_label(result, name, short=True)]
        for _, metric in _COLUMNS[1:]:
            row.append(fmt_named(s, metric, with_ci=False))
        rows.append(row)
    lines = _aligned(rows).split("\n")
    for name in result.upper_bounds:
        given = result.knowledge.get(name, {}).get("exact_truth") or "ground truth"
        lines.append(f"\n† {name}: given {given}; an unreachable upper bound for scale, never a policy to deploy.")
    lines.append(f"\n* baseline. Means over {result.replications} replication(s), seed {result.seed}; "
                 "confidence intervals in report.md and summary.json. When availability differs, compare cost per "
                 "answered request: failed requests cost nothing.")
    lines += [f"warning: {w}" for w in run_warnings(result)]
    return "\n".join(lines)
