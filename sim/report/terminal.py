"""The comparison table printed after a run (plain text: it goes to logs too)."""

from __future__ import annotations

from .format import backtest_cells, fmt_named, policy_label, usd_decimals_of
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


def backtest_text(record: dict, scenario: str) -> str:
    """The backtest's figures (backtest.json) for the terminal: what was compared, the aligned
    table (a MISS where a figure is off its target), and the verdict."""
    rows = [["Figure", "Logged", "Simulated", "95% CI", "Error", "Target", ""]]
    rows += [[c["figure"], c["logged"], c["simulated"], c["interval"], c["error"], c["target"], c["verdict_words"]]
             for c in backtest_cells(record)]
    noisy = [r["figure"] for r in record["rows"] if r["verdict"] == "noisy"]
    if not record["matched"]:
        verdict = ("NOT MATCHED: the figures marked MISS are off their targets; read the calibration comments in "
                   f"{scenario} before trusting the comparison below")
    elif noisy:
        verdict = (f"matched, but {', '.join(noisy)} spread wider than the target between replications (too noisy to "
                   "judge: a longer log or more replications will tell)")
    else:
        verdict = "the simulation reproduces the logs within every target"
    return (f"Backtest of {record['policy']} against {record['logged_requests']:,} logged requests "
            f"({record['since']} to {record['until']}):\n{_aligned(rows)}\n{verdict}")


def _aligned(rows: list[list[str]]) -> str:
    """Text columns: the first left-aligned, the others right-aligned, a rule under the titles."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def gate_text(folder) -> str | None:
    """The rollout decision of the scenario's ``gates:`` (the report's first section), for the
    terminal: each candidate's checks and PASS or FAIL; None when the scenario has no gates."""
    from sim.run.folder import read_run_files
    from .decision import decision_for

    summary, resolved = read_run_files(folder)
    decided = decision_for(folder, resolved, summary["baseline"], list(summary["policies"]),
                           summary.get("upper_bounds", []))
    if not decided.results:
        return None
    lines = ["Rollout gate (the scenario's gates:; a minimum passes only if the lower bound of its 95% interval "
             "reaches it, a maximum only if the upper bound stays within it):"]
    for result in decided.results:
        rows = [["check", "rule", "measured mean [95% CI]", "decided on", "result"]]
        rows += [[r.check, r.rule, r.measured, r.decided_on, "PASS" if r.passed else "FAIL"] for r in result.rows]
        lines += [_aligned(rows), f"{result.candidate} vs {result.baseline}: "
                  + ("PASS" if result.passed else f"FAIL ({', '.join(result.failed)})"), ""]
    return "\n".join(lines).rstrip()


def comparison_table(result) -> str:
    rows = [[title for title, _ in _COLUMNS]]
    summaries = [result.summary[n] for n in result.policies]
    decimals = {metric: usd_decimals_of(summaries, metric, with_ci=False) for _, metric in _COLUMNS[1:]}
    for name in result.policies:
        s = result.summary[name]
        row = [policy_label(result, name, short=True)]
        for _, metric in _COLUMNS[1:]:
            row.append(fmt_named(s, metric, with_ci=False, usd_decimals=decimals[metric]))
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
