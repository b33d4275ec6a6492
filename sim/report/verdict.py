"""The report's verdicts: one sentence per policy against the baseline, naming
every paired difference whose 95% interval excludes no change, and saying which
cost decides.

Cost per request and cost per answered request disagree when two policies answer
different shares of the traffic: failed requests cost nothing, so a policy that
drops a third of its requests looks cheap per request. When availability differs
(its interval excludes zero) cost per answered request decides, and the verdict
says so; a policy that answers more and is cheaper per answer is never called
more expensive.

Quality is split the same way: availability (failures count as quality 0) and
the quality of the answers given, with the combined figure kept.
"""

from __future__ import annotations

from .format import fmt_named, fmt_value


def sign(metric: dict) -> int:
    """+1 or -1 when a paired difference is clearly above or below zero (its CI excludes
    zero; with one replication, the mean's sign), else 0."""
    mean, (lo, hi) = metric["mean"], metric["ci95"]
    if mean is None:
        return 0
    if lo is None:
        return (mean > 0) - (mean < 0)
    return 1 if lo > 0 else -1 if hi < 0 else 0


_CHEAPER = {1: "cheaper", -1: "more expensive", 0: "no clear cost difference"}
_PER_REQUEST = {1: "it is cheaper", -1: "it costs more", 0: "the difference is unclear"}
_BETTER = {1: "better", -1: "worse", 0: "not clearly different"}
_AVAILABLE = {1: "answers more requests", -1: "answers fewer requests", 0: "answers about as many requests"}


def _points(metric: dict) -> str:
    """A share difference in percentage points, with its interval."""
    mean, (lo, hi) = metric["mean"], metric["ci95"]
    if mean is None:
        return "n/a"
    text = f"{mean * 100:+.2f} pp"
    return text + (f" [{lo * 100:+.2f}, {hi * 100:+.2f}]" if lo is not None else "")


def cost_decides_per_answer(s: dict) -> bool:
    """Cost per answered request decides when the two answer clearly different shares."""
    return sign(s["availability_delta_vs_baseline"]) != 0


def _cost(s: dict, baseline: str) -> str:
    per_request, per_answer = sign(s["savings_vs_baseline"]), sign(s["savings_per_answer_vs_baseline"])
    savings, savings_per_answer = fmt_named(s, "savings_vs_baseline"), fmt_named(s, "savings_per_answer_vs_baseline")
    if not cost_decides_per_answer(s):
        lead = _CHEAPER[per_request].capitalize() + ("" if per_request == 0 else f" than {baseline}")
        return f"{lead} (savings {savings} per request, {savings_per_answer} per answered request)"
    lead = (f"{_CHEAPER[per_answer].capitalize()} per answered request"
            + ("" if per_answer == 0 else f" than {baseline}"))
    text = f"{lead} (savings {savings_per_answer}), which decides because the two answer different shares of the traffic"
    if per_request != per_answer:
        more = sign(s["availability_delta_vs_baseline"]) > 0
        text += (f"; per request {_PER_REQUEST[per_request]} (savings {savings}) only because it answers "
                 f"{'more' if more else 'fewer'} requests, and a failed request costs nothing")
    return text


def _quality(s: dict) -> str:
    availability = sign(s["availability_delta_vs_baseline"])
    answered = sign(s["answered_quality_delta_vs_baseline"])
    combined = sign(s["quality_delta_vs_baseline"])
    return (f"It {_AVAILABLE[availability]} (availability {fmt_named(s, 'success_rate', with_ci=False)}, "
            f"{_points(s['availability_delta_vs_baseline'])}) and its answers are {_BETTER[answered]} "
            f"(quality of answered requests Δ {fmt_named(s, 'answered_quality_delta_vs_baseline')}); over all "
            f"requests, failures counting 0, quality is {_BETTER[combined]} "
            f"(Δ {fmt_named(s, 'quality_delta_vs_baseline')})")


def _latency(s: dict) -> str:
    """The latency percentiles that clearly moved, or that none did."""
    moved = []
    for metric, label in (("latency_p95_change_vs_baseline", "p95"), ("latency_p99_change_vs_baseline", "p99")):
        direction = sign(s[metric])
        if direction:
            moved.append(f"{label} latency {'slower' if direction > 0 else 'faster'} by "
                         f"{fmt_value(abs(s[metric]['mean']), 'pct')} (change {fmt_named(s, metric)})")
    return "; ".join(moved) if moved else "no clear change in p95 or p99 latency"


def workload_drops(run, name: str, max_drop: float | None) -> list[str]:
    """Workloads whose quality (over all requests, means over replications) fell from the
    baseline's by more than ``max_drop`` (the quality gate), whatever the mean did."""
    if max_drop is None or name == run.baseline:
        return []
    mine, theirs = run.series[name].workloads, run.series[run.baseline].workloads
    out = []
    for workload in mine.index.intersection(theirs.index):
        drop = theirs.loc[workload, "mean_quality"] - mine.loc[workload, "mean_quality"]
        if drop > max_drop:
            out.append(f"{workload} {theirs.loc[workload, 'mean_quality']:.3f} → "
                       f"{mine.loc[workload, 'mean_quality']:.3f} (−{drop:.3f})")
    return out


def verdict(run, name: str, max_drop: float | None = None) -> str:
    """One policy's sentence. ``max_drop``: the quality gate the workload flags use (None: no flags)."""
    s, b = run.summary[name], run.summary[run.baseline]
    if name == run.baseline:
        return (f"The baseline: {fmt_named(s, 'cost_per_1k_requests_usd', with_ci=False)} per 1k requests "
                f"({fmt_named(s, 'cost_per_1k_successes_usd', with_ci=False)} per 1k answered), "
                f"availability {fmt_named(s, 'success_rate', with_ci=False)}, "
                f"quality of answered requests {fmt_named(s, 'answered_quality', with_ci=False)}.")
    sentence = ("Not deployable (it sees the ground truth); for scale: " if name in run.upper_bounds else "")
    sentence += f"{_cost(s, run.baseline)}. {_quality(s)}; {_latency(s)}"
    if s["fault_success_rate"]["mean"] is not None and b["fault_success_rate"]["mean"] is not None:
        sentence += (f"; during faults {fmt_named(s, 'fault_success_rate', with_ci=False)} answered vs "
                     f"{fmt_named(b, 'fault_success_rate', with_ci=False)}")
    sentence += "."
    drops = workload_drops(run, name, max_drop)
    if drops:
        sentence += (f" Quality falls by more than the gate's {max_drop:g} in: {'; '.join(drops)}, "
                     "whatever the mean does.")
    return sentence

