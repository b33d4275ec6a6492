"""``routesim import litellm-logs``: a LiteLLM proxy's logs (its ``LiteLLM_SpendLogs``
table, or an export of it) into a calibrated scenario and the trace it replays.

One pass over the log (``ingest.spend_logs.read_spend_logs``) feeds both the per-deployment
tallies (``log_calibration``) and the trace writer (``log_trace``). The scenario
written:

- ``models``: one per deployment the log names (``model_id``, else the model),
  with its provider, its fitted prices (the first stretch's; later stretches
  become ``price`` events at the minute they start), its latency fitted from
  its answered streamed calls (``latency_fit``, empirical quantiles by default)
  with ``fail_fast_s`` the mean duration of its failed calls, and its error rate
  outside fault windows; quality is unknown to a log (``default: 0``);
- ``events``: the fault windows (outages, partial outages; 429 storms as
  partial outages with status 429), each with its counts;
- ``router``: no health hold (the proxy's routing is in the log), at most as
  many attempts as the log shows for a request, the per-attempt timeout the
  longest logged call, and a response cache answering the logged share of
  cache hits;
- ``policies``: ``logged-routing`` (``replay``: production's logged routes and
  fallbacks), production's policy and the baseline; with ``--config``, the
  proxy's config as ``litellm-router`` (``routesim import litellm``'s mapping),
  which then is production's policy and the baseline, the replay beside it;
- ``backtest``: what the log measured, for ``routesim backtest``.

Everything inferred carries a comment saying where it came from (counts, dates,
fit quality), so a reviewer can check it before trusting the backtest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import yaml

from sim.errors import InputError, Problem
from sim.files import atomic_file, first_line_is
from .log_calibration import DeploymentTally, PriceStretch, tally_chunk
from sim.limits import MAX_PRICE_PER_MTOK
from .log_trace import WORKLOAD_SOURCES, LoggedTrace, write_logged_trace
from .database_url import is_database_url, printable
from .spend_logs import TABLE, Window, read_spend_logs

REPLAY = "logged-routing"
LITELLM_POLICY = "litellm-config"
LATENCY_KINDS = ("quantiles", "lognormal")  # --latency: latency_fit's empirical quantiles, or a lognormal
PLACEHOLDER_LATENCY = {"ttft_s": {"median": 1.0, "p95": 3.0}, "tokens_per_s": {"median": 50.0, "p5": 20.0}}


@dataclass
class LogImport:
    trace: LoggedTrace
    deployments: int
    events: int
    notes: list[str]


def import_litellm_logs(source: str, out: Path, trace_out: Path, window: Window = Window(),
                        workload: str = "model_group", latency_kind: str = "quantiles",
                        config: Path | None = None) -> LogImport:
    """Write the scenario at ``out`` and its trace at ``trace_out`` from the log at ``source``."""
    out, trace_out = Path(out), Path(trace_out)
    if latency_kind not in LATENCY_KINDS:  # every option is checked before the log is read or anything written
        raise InputError(Problem(f"--latency {latency_kind}: one of {', '.join(LATENCY_KINDS)}"))
    if workload not in WORKLOAD_SOURCES:
        raise InputError(Problem(f"--workload {workload}: one of {', '.join(WORKLOAD_SOURCES)}"))
    if out.resolve() == trace_out.resolve():
        raise InputError(Problem("the scenario and the trace must be two files", file=str(out)))
    _refuse_others(out, trace_out)
    parsed_config = None
    if config is not None:  # a bad config fails before the long read
        from .litellm_config import read_config

        parsed_config = read_config(Path(config))
    where = _printable(source)
    tallies: dict[str, DeploymentTally] = {}
    spend_by_group: dict[str, float] = {}

    def tallied(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for chunk in chunks:
            tally_chunk(tallies, chunk)
            for group, spend in chunk.groupby("model_group").spend_usd.sum().items():
                spend_by_group[group] = spend_by_group.get(group, 0.0) + float(spend)
            yield chunk

    # The trace moves into place only beside a scenario that validates: a log whose figures
    # make no scenario (a spend that is not USD) leaves neither file behind.
    with atomic_file(trace_out, "trace") as staged_trace:
        logged = write_logged_trace(tallied(read_spend_logs(source, window)), staged_trace, workload, where)
        scenario, comments, notes = calibrated_scenario(tallies, logged, spend_by_group, where, latency_kind)
        scenario["trace"] = {"path": os.path.relpath(trace_out.resolve(), out.resolve().parent)}
        if parsed_config is not None:
            _add_litellm_policy(scenario, parsed_config, Path(config), notes)
        text = render(scenario, comments, notes, where, logged)
        _check_valid(text, where)
        with atomic_file(out, "scenario") as tmp:
            tmp.write_text(text, encoding="utf-8")
    return LogImport(logged, len(scenario["models"]), len(scenario["events"]), notes)


def _check_valid(text: str, where: str) -> None:
    """Refuse, blaming the log, a scenario that ``validate`` would refuse: what the import
    writes must run."""
    from pydantic import ValidationError

    from sim.scenario.load import Scenario, pydantic_problems

    data = yaml.safe_load(text)
    try:
        Scenario.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, data)
        raise InputError([Problem(f"the scenario made from this log would not validate: {p.path}: {p.message}; "
                                  "nothing written", file=where) for p in problems]) from None


HEADER = "# Calibrated by `routesim import litellm-logs`."  # the first line of every scenario it writes


def _refuse_others(out: Path, trace_out: Path) -> None:
    """Replace only what an earlier import wrote: a scenario opening with HEADER, a trace
    carrying log_trace's mark."""
    from .log_trace import is_logged_trace

    problems = []
    if out.exists() and not first_line_is(out, HEADER):
        problems.append(Problem("exists and was not written by routesim import litellm-logs: not replaced; give "
                                "another -o", file=str(out)))
    if trace_out.exists() and not is_logged_trace(trace_out):
        problems.append(Problem("exists and was not written by routesim import litellm-logs: not replaced; give "
                                "another --trace", file=str(trace_out)))
    if problems:
        raise InputError(problems)


def _printable(source: str) -> str:
    return printable(source) if is_database_url(source) else str(source)


def calibrated_scenario(tallies: dict[str, DeploymentTally], logged: LoggedTrace, spend_by_group: dict[str, float],
                        where: str, latency_kind: str) -> tuple[dict, dict[str, str], list[str]]:
    """(scenario without its trace, comments by model name and by event index, notes)."""
    origin = logged.first_start
    origin_s = origin.value / 1e9
    models: dict[str, dict] = {}
    comments: dict[str, str] = {}
    events: list[tuple[dict, str]] = []  # each with its comment, until they are in time order
    notes: list[str] = []
    latency_figures: dict[str, dict] = {}
    for name, t in sorted(tallies.items()):
        spec: dict[str, Any] = {"provider": t.provider or "unknown"}
        said = [f"{name} (model group {t.model_group}): {t.calls:,} calls, {t.failures:,} failed, "
                f"{t.timeouts:,} timed out, {t.cache_hits:,} cache hits"]
        stretches = t.price_stretches()
        for stretch in stretches:
            _check_price(name, stretch, where)
        if stretches:
            first = stretches[0]
            spec["price"] = _price(first)
            said.append(_price_words(first, stretches))
            for stretch in stretches[1:]:
                events.append(({"kind": "price", "model": name,
                                "at_s": round(max(0.0, stretch.from_s - origin_s), 3), **_price(stretch)},
                               f"{name}'s prices from {_when(stretch.from_s)}: fitted on {stretch.calls:,} answered "
                               f"calls, RMS residual {stretch.residual:.2%} of the mean spend"))
        else:
            spec["price"] = {"input_per_mtok": 0.0, "output_per_mtok": 0.0}
            said.append("prices: TODO too few answered calls of different sizes to fit them (0 written)")
            notes.append(f"{name}: prices could not be fitted from its calls; 0 written")
        block = t.latency_block(latency_kind)
        if block is None:
            spec["latency"] = dict(PLACEHOLDER_LATENCY)
            said.append("latency: TODO placeholder, too few answered streamed calls to fit")
            notes.append(f"{name}: too few answered streamed calls (with a completionStartTime) to fit a latency")
        else:
            spec["latency"] = block
            said.append(f"latency fitted ({latency_kind}) on {len(t.measurements().ttft_s):,} answered streamed calls"
                        + (f" (a sample spread evenly over {t.seen_streamed:,})" if t.stride > 1 else ""))
        fail_fast = t.fail_fast_s()
        if fail_fast is not None:
            spec["latency"]["fail_fast_s"] = _round(fail_fast)
            said.append(f"a failure came back after {fail_fast:.3g} s on average (fail_fast_s)")
        windows = t.fault_windows(origin)
        for window in windows:
            window.update(start_s=round(window["start_s"], 3), end_s=round(window["end_s"], 3))
            events.append((window, _window_words(t, window, origin_s)))
        spec["error_rate"] = round(t.error_rate(), 6)
        said.append(f"error rate {t.error_rate():.3%} outside its {len(windows)} fault window(s)")
        spec["quality"] = {"default": 0.0}
        models[name] = spec
        comments[name] = "; ".join(said)
        e2e = t.e2e_sample()
        if len(e2e):
            latency_figures[name] = {"calls": int(len(e2e)), **{f"p{q}_s": _round(float(np.quantile(e2e, q / 100)))
                                                                 for q in (50, 95, 99)}}
    events.sort(key=lambda pair: pair[0].get("start_s", pair[0].get("at_s", 0.0)))
    comments.update({f"event {i}": comment for i, (_, comment) in enumerate(events)})
    cache_hits = sum(t.cache_hits for t in tallies.values())
    longest = max(logged.longest_s, 1.0)
    router: dict[str, Any] = {
        "timeout_s": _round(longest),
        "max_attempts": int(min(max(logged.most_attempts, 1), 20)),
        "health": None,
    }
    if cache_hits:
        router["response_cache"] = {"hit_share": round(cache_hits / logged.requests, 6)}
    fallbacks = {d: [n for n, _ in sorted(after.items(), key=lambda kv: (-kv[1], kv[0]))]
                 for d, after in sorted(logged.fallback_next.items())}
    groups = {name: t.model_group for name, t in sorted(tallies.items())}
    backtest = {
        "policy": REPLAY,
        "groups": groups,
        "logged": {
            "since": _iso(logged.first_start), "until": _iso(logged.last_start), "rows": logged.rows,
            "requests": logged.requests, "spend_usd": round(sum(spend_by_group.values()), 9),
            "spend_by_group": {g: round(v, 9) for g, v in sorted(spend_by_group.items())},
            "success_rate": round(logged.answered / logged.requests, 6),
            "failover_rate": round(logged.failovers / logged.requests, 6),
            "latency": latency_figures,
        },
    }
    scenario = {
        "name": "backtest",
        "description": f"Calibrated from {TABLE} at {where}, {_iso(logged.first_start)} to {_iso(logged.last_start)}.",
        "seed": 1,
        "replications": 5,
        "start": _iso(origin),
        "trace": None,
        "models": models,
        "events": [event for event, _ in events],
        "router": router,
        "policies": {REPLAY: {"kind": "replay", "fallbacks": fallbacks}},
        "baseline": REPLAY,
        "backtest": backtest,
    }
    return scenario, comments, notes


def _add_litellm_policy(scenario: dict, parsed, config: Path, notes: list[str]) -> None:
    """The proxy's config as a ``litellm-router`` policy (``routesim import litellm``'s mapping)
    over the logged deployments: a config deployment is the log's deployment whose model_id is
    its ``model_info.id`` (what LiteLLM logs); deployments without one, or not in the log, are
    left out with a note."""
    from .litellm_config import _chat_deployments, _settings, convert

    converted, _, config_notes = convert(parsed, Path(config), datetime.fromisoformat(scenario["start"]))
    # convert names the deployments in the order _chat_deployments lists them.
    deployments = _chat_deployments(parsed, _settings(parsed), [], [])
    logged = set(scenario["models"])
    names: dict[str, str] = {}
    for name, d in zip(converted["models"], deployments):
        found = d.model_info.get("id")
        if found is not None and str(found) in logged:
            names[name] = str(found)
        else:
            notes.append(f"config deployment {d.model_name} ({d.litellm_params.model}): "
                         + ("no model_info.id, so it cannot be matched to the log's model_id; left out" if found is None
                            else f"model_info.id {found} is not in the log; left out"))
    if not names:
        raise InputError(Problem("no deployment of the config is in the log: give each model_list entry the "
                                 "model_info.id the proxy logs as model_id", file=str(config)))
    policy = dict(converted["policies"]["litellm"])
    policy["groups"] = {g: [names[d] for d in ds if d in names] for g, ds in policy["groups"].items()}
    policy["groups"] = {g: ds for g, ds in policy["groups"].items() if ds}
    for key in ("litellm_metrics", "limits", "order", "tags"):  # keyed by deployment
        if key in policy:
            policy[key] = {names[d]: v for d, v in policy[key].items() if d in names}
    if "fallbacks" in policy:
        policy["fallbacks"] = {g: [t for t in ts if t in policy["groups"]] for g, ts in policy["fallbacks"].items()
                               if g in policy["groups"]}
    if policy["default_group"] not in policy["groups"]:
        policy["default_group"] = next(iter(policy["groups"]))
    router = {k: v for k, v in converted["router"].items() if k in ("retry", "cooldown", "max_attempts")}
    single = router.get("cooldown", {}).get("single_deployment")
    if single:
        router["cooldown"] = {**router["cooldown"], "single_deployment": {names[d]: v for d, v in single.items()
                                                                          if d in names}}
    scenario["policies"][LITELLM_POLICY] = {**policy, "router": router}
    # The config is how production routed: it is the policy the backtest checks, and the baseline.
    scenario["backtest"]["policy"] = scenario["baseline"] = LITELLM_POLICY
    for note in config_notes:  # model_info.id, which the config import leaves out, is used here
        head, _, keys = note.rpartition(": ")
        kept = [k for k in keys.split(", ") if k != "model_list[].model_info.id"]
        if kept:
            notes.append(f"config: {head}: {', '.join(kept)}" if head else f"config: {note}")


# --------------------------------------------------------------------------- words
def _price(stretch: PriceStretch) -> dict[str, float]:
    price = {"input_per_mtok": _round(stretch.input_per_mtok), "output_per_mtok": _round(stretch.output_per_mtok)}
    if stretch.cached_input_per_mtok is not None:
        price["cached_input_per_mtok"] = _round(stretch.cached_input_per_mtok)
    return price


def _check_price(name: str, stretch: PriceStretch, where: str) -> None:
    fitted = {"input": stretch.input_per_mtok, "output": stretch.output_per_mtok,
              "cached input": stretch.cached_input_per_mtok or 0.0}
    for kind, price in fitted.items():
        if not price <= MAX_PRICE_PER_MTOK:
            raise InputError(Problem(
                f"deployment {name}: its spend fits a price of ${price:,.6g} per million {kind} tokens from "
                f"{_when(stretch.from_s)}, past the ${MAX_PRICE_PER_MTOK:,.0f} a scenario allows: is the log's "
                "spend column in USD per call?", file=where))


def _round(value: float) -> float:
    return float(f"{float(value):.6g}")


def _iso(stamp: pd.Timestamp) -> str:
    return pd.Timestamp(stamp).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def _when(seconds: float) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").round("s").strftime("%Y-%m-%d %H:%M:%S UTC")


def _price_words(first: PriceStretch, stretches: list[PriceStretch]) -> str:
    words = (f"prices fitted on {first.calls:,} answered calls, RMS residual {first.residual:.2%} of the mean spend")
    if len(stretches) > 1:
        words += f"; {len(stretches) - 1} price change(s) found, as price events"
    return words


def _window_words(t: DeploymentTally, window: dict, origin_s: float) -> str:
    first, last = (round((origin_s + window[k]) / 60) for k in ("start_s", "end_s"))  # whole minutes, as found
    calls = sum(t.minutes.get(m, [0, 0, 0])[0] for m in range(first, last))
    failed = sum(t.minutes.get(m, [0, 0, 0])[1] for m in range(first, last))
    return (f"{window['model']}: {failed:,} of {calls:,} calls failed from {_when(origin_s + window['start_s'])} to "
            f"{_when(origin_s + window['end_s'])}")


def render(scenario: dict, comments: dict[str, str], notes: list[str], where: str, logged: LoggedTrace) -> str:
    """The scenario as YAML with a comment on every inferred value."""
    head = [HEADER, f"# From {TABLE} at {where}:",
            f"# {logged.rows:,} logged calls from {_iso(logged.first_start)} to {_iso(logged.last_start)}, grouped "
            f"into {logged.requests:,} requests",
            f"# ({logged.grouped:,} of several calls: rows sharing metadata.litellm_call_id within 10 minutes;",
            f"# {logged.unknown_output:,} failed everywhere and got their workload's mean answer length).",
            "# Check the comments before trusting the backtest: `routesim backtest` sets the simulation of",
            f"# {scenario['backtest']['policy']} against the figures under backtest.logged"
            + (f" ({REPLAY}, the logged routes replayed, beside it)." if scenario["backtest"]["policy"] != REPLAY
               else "."),
            "# quality: a log says nothing of answer quality; every model's is 0 (put in your evaluations",
            "# before comparing policies on quality)."]
    head += [f"# note: {n}" for n in notes]
    body = []
    for key, value in scenario.items():
        if key == "models":
            body.append("models:")
            for name, spec in value.items():
                body += _comment(comments[name], "  ")
                body.append(f"  {_scalar(name)}:")
                for field, v in spec.items():
                    body.append(f"    {field}: {_flow(v)}")
        elif key == "events":
            body.append("events:" if value else "events: []")
            for i, event in enumerate(value):
                if f"event {i}" in comments:
                    body += _comment(comments[f"event {i}"], "  ")
                body.append(f"  - {_flow(event)}")
        else:
            body.append(yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False).rstrip())
    return "\n".join(head) + "\n" + "\n".join(body) + "\n"


def _comment(text: str, indent: str) -> list[str]:
    import textwrap

    return [f"{indent}# {line}" for line in textwrap.wrap(text, 110 - len(indent))]


def _flow(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text[:-3].strip() if text.endswith("...") else text


def _scalar(value: str) -> str:
    return yaml.safe_dump(value).splitlines()[0]
