"""Defences that made things worse: a policy that is another policy of the run
plus router settings of its own (a circuit breaker, a cooldown, hedging) and
answers clearly fewer requests than that policy without them.

The comparison is paired by replication (both faced the same traffic and faults),
from ``replications.parquet``, as the gate pairs a candidate with its baseline.
"""

from __future__ import annotations

from sim.verdicts.gate import policy_runs
from sim.metrics.stats import mean_ci
from .format import fmt_metric
from .verdict import sign

#: What the note compares: (metric, words), overall and during faults.
_COMPARED = (("success_rate", "availability"), ("fault_success_rate", "availability during faults"))


def _without_router(spec: dict) -> dict:
    return {key: value for key, value in spec.items() if key != "router"}


def defence_pairs(resolved: dict) -> list[tuple[str, str]]:
    """(policy with its own router settings, the same policy without them) in the scenario."""
    policies = resolved.get("policies", {})
    plain = {name: spec for name, spec in policies.items() if not spec.get("router")}
    pairs = []
    for name, spec in policies.items():
        if spec.get("router"):
            twin = next((other for other, s in plain.items() if _without_router(s) == _without_router(spec)), None)
            if twin is not None:
                pairs.append((name, twin))
    return pairs


def defence_regressions(run) -> list[str]:
    """A warning for each defended policy whose availability (overall or during faults) is
    below its undefended twin's: clearly (the interval of the paired difference is below zero),
    or on average by more than the scenario's error budget (1 − slo.availability) when the
    interval is too wide to tell."""
    availability = (run.resolved.get("slo") or {}).get("availability")
    budget = None if availability is None else 1.0 - availability
    out = []
    for defended, twin in defence_pairs(run.resolved):
        mine, theirs = policy_runs(run.folder, defended), policy_runs(run.folder, twin)
        both = [r for r in sorted(mine) if r in theirs]
        worse = []
        for metric, words in _COMPARED:
            differences = [mine[r][metric] - theirs[r][metric] for r in both]
            difference = mean_ci(differences)
            mean = difference["mean"]
            if mean is None or mean >= 0:
                continue
            clearly = sign(difference) < 0  # the verdicts' rule: the interval (one replication: the mean) below 0
            if not clearly and (budget is None or -mean <= budget):
                continue
            lower = sum(d < 0 for d in differences if d == d)
            how = "" if clearly else (f": lower in {lower} of {len(both)} replications and by more than the "
                                      f"{budget:.2%} error budget on average, though the interval does not exclude "
                                      "no change")
            worse.append((clearly, f"{words} {fmt_metric(run.summary[defended][metric], 'pct', with_ci=False)} vs "
                                   f"{fmt_metric(run.summary[twin][metric], 'pct', with_ci=False)}, a paired "
                                   f"difference of {fmt_metric(difference, 'pct')}{how}"))
        if worse:
            settings = ", ".join(sorted(run.resolved["policies"][defended]["router"]))
            verb = "made it worse" if any(clearly for clearly, _ in worse) else "made it worse on average"
            out.append(f"{defended}: its own router settings ({settings}) {verb} than {twin} without them. "
                       f"{'. '.join(text[0].upper() + text[1:] for _, text in worse)}. See the per-fault table and "
                       "the success-over-time figure for when the requests were lost.")
    return out
