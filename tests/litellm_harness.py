"""Drive the real ``litellm.Router`` and routesim's emulation of it on the same
schedule, for the conformance tests (tests/test_litellm_conformance.py).

The LiteLLM side: mock deployments (a ``CustomLLM`` provider that answers at
once, or raises LiteLLM's exception for a status code while the schedule says
the deployment fails), one request at a time, requests ``gap_s`` apart on the
wall clock. Each request's start time and the deployments it reached are
recorded. Requests with tags go through ``Router.acompletion`` (the path a
LiteLLM proxy takes; litellm 1.110.2's synchronous ``completion`` does not filter
by tags, measured), their tags in the request's metadata.

The routesim side: the same config through ``routesim import litellm``, the
recorded start times as the trace, each failure window as a fault from the
start of its first request to the start of the request after its last, and
deployments that answer in about a millisecond.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network: the bundled price map


@dataclass
class Case:
    """A LiteLLM config, a schedule of requests and the deployments' failure windows."""

    model_list: list[dict]
    router_settings: dict
    requests: int
    gap_s: float
    failures: list[tuple[str, int, int, int]] = field(default_factory=list)  # (deployment, first, end, status)
    group: str = "g"
    tags: list[tuple[str, ...]] | None = None  # each request's tags (then the asynchronous path)


@dataclass
class Served:
    """What happened to each request, on either side."""

    start_s: list[float]  # when each request started
    attempts: list[list[str]]  # the deployments it reached, in order
    ok: list[bool]
    latency_s: list[float] = field(default_factory=list)  # from its start to its end
    minute_s: float = 0.0  # the second of the wall-clock minute at which time 0 fell (LiteLLM's side)

    def served_by(self, i: int) -> str | None:
        return self.attempts[i][-1] if self.ok[i] and self.attempts[i] else None


# --------------------------------------------------------------------------- LiteLLM
def run_litellm(case: Case, seed: int = 1) -> Served:
    """``seed`` seeds the ``random`` module, whose global generator LiteLLM's shuffle uses."""
    import random

    import litellm
    from litellm import CustomLLM

    errors = {500: litellm.InternalServerError, 429: litellm.RateLimitError, 503: litellm.ServiceUnavailableError,
              400: litellm.ContextWindowExceededError}  # 400 here: the request is too long for the deployment
    state = {"i": 0, "calls": []}

    def failing(name: str) -> int | None:
        return next((code for dep, lo, hi, code in case.failures if dep == name and lo <= state["i"] < hi), None)

    class Mock(CustomLLM):
        def completion(self, model, messages, *args, **kwargs):
            state["calls"].append(model)
            code = failing(model)
            if code is not None:
                raise errors[code](message=f"mock {code}", llm_provider="mock", model=model)
            return litellm.ModelResponse(model=model, choices=[{"message": {"role": "assistant", "content": "ok"}}],
                                         usage={"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11})

        async def acompletion(self, model, messages, *args, **kwargs):
            return self.completion(model, messages)

    litellm.custom_provider_map = [{"provider": "mock", "custom_handler": Mock()}]
    litellm.suppress_debug_info = True
    router = litellm.Router(model_list=case.model_list, **case.router_settings)
    random.seed(seed)
    served = Served([], [], [])
    messages = [{"role": "user", "content": "hi"}]
    loop = asyncio.new_event_loop() if case.tags is not None else None
    t0 = time.monotonic()
    served.minute_s = time.time() % 60  # LiteLLM's failure-rate tally starts afresh each wall-clock minute
    for i in range(case.requests):
        state["i"] = i
        wait = t0 + i * case.gap_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        served.start_s.append(time.monotonic() - t0)
        before = len(state["calls"])
        try:
            if loop is None:
                router.completion(model=case.group, messages=messages)
            else:
                loop.run_until_complete(router.acompletion(model=case.group, messages=messages,
                                                           metadata={"tags": list(case.tags[i])}))
            served.ok.append(True)
        except Exception:  # noqa: BLE001 - every LiteLLM failure is a failed request here
            served.ok.append(False)
        served.latency_s.append(time.monotonic() - t0 - served.start_s[-1])
        served.attempts.append([c for c in state["calls"][before:]])
    if loop is not None:
        _close(loop)
    return served


def litellm_tag_pools(model_list: list[dict], settings: dict, request_tags: list[tuple[str, ...]],
                      tries: int = 40) -> dict[tuple[str, ...], set[str]]:
    """For each request tag set, the deployments of group "g" the real Router sent ``tries``
    such requests to (empty when it refused them all), through the asynchronous path."""
    import litellm
    from litellm import CustomLLM

    calls: list[str] = []

    class Mock(CustomLLM):
        async def acompletion(self, model, messages, *args, **kwargs):
            calls.append(model)
            return litellm.ModelResponse(model=model, choices=[{"message": {"role": "assistant", "content": "ok"}}])

    litellm.custom_provider_map = [{"provider": "mock", "custom_handler": Mock()}]
    litellm.suppress_debug_info = True
    router = litellm.Router(model_list=model_list, **settings)

    async def reach(tags: tuple[str, ...]) -> set[str]:
        calls.clear()
        for _ in range(tries):
            try:
                await router.acompletion(model="g", messages=[{"role": "user", "content": "hi"}],
                                         metadata={"tags": list(tags)})
            except Exception:  # noqa: BLE001 - a refusal: no deployment reached
                pass
        return set(calls)

    loop = asyncio.new_event_loop()
    try:
        return {tags: loop.run_until_complete(reach(tags)) for tags in request_tags}
    finally:
        _close(loop)


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Close a loop LiteLLM has used: its background tasks (logging) are cancelled first, or
    they would outlive the loop and complain that it is closed."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


# --------------------------------------------------------------------------- routesim
def run_routesim(case: Case, start_s: list[float], folder: Path, seed: int = 1, minute_s: float = 0.0) -> Served:
    """routesim on LiteLLM's request times, shifted by ``minute_s``: routesim's failure-rate minutes
    run from simulated time 0, so the shift puts their boundaries where LiteLLM's wall-clock
    minutes fell, however long the real run took (a loaded machine stretches it across one)."""
    from sim.litellm_import import convert, LiteLLMConfig
    from sim.runner import run_to_folder
    from sim.scenario import load_scenario
    from datetime import datetime, timezone

    config = LiteLLMConfig.model_validate({"model_list": case.model_list, "router_settings": case.router_settings})
    scenario, _, _ = convert(config, folder / "config.yaml", datetime(2025, 6, 1, tzinfo=timezone.utc))
    groups = scenario["policies"]["litellm"]["groups"]
    in_group_order = [d for group in groups for d in case.model_list if d["model_name"] == group]
    names = {d["litellm_params"]["model"].split("/", 1)[1]: name
             for d, name in zip(in_group_order, [n for members in groups.values() for n in members])}
    too_long = {names[dep] for dep, _, _, code in case.failures if code == 400}
    for name, spec in scenario["models"].items():
        spec["price"] = {"input_per_mtok": 1.0, "output_per_mtok": 1.0}
        spec["latency"] = {"ttft_s": {"median": 0.0005, "p95": 0.001}, "tokens_per_s": {"median": 1e6, "p5": 5e5},
                           "fail_fast_s": 0.0005}
        spec["context_window"] = 1000 if name in too_long else 10_000_000
    start_s = [t + minute_s for t in start_s]
    ends = list(start_s) + [start_s[-1] + case.gap_s]
    scenario["events"] = [{"kind": "partial_outage", "model": names[dep], "start_s": ends[lo], "end_s": ends[hi],
                           "error_rate": 1.0, "status": 429 if code == 429 else 500}
                          for dep, lo, hi, code in case.failures if code != 400]
    # A 400 window: its requests are longer than the deployment's context window.
    long_requests = {i for _, lo, hi, code in case.failures if code == 400 for i in range(lo, hi)}
    trace = pd.DataFrame({"arrival_s": start_s, "output_tokens": 1, "workload": case.group,
                          "input_tokens": [5000 if i in long_requests else 10 for i in range(len(start_s))]})
    if case.tags is not None:
        trace["tags"] = [";".join(t) for t in case.tags]
    trace.to_csv(folder / "trace.csv", index=False)
    scenario.update(trace={"path": "trace.csv"}, replications=1, seed=seed)
    scenario.pop("start", None)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    run_to_folder(load_scenario(folder / "scenario.yaml"), folder / "out", report=False)
    requests = pd.read_parquet(folder / "out" / "requests.parquet").sort_values("arrival_s")
    attempts = pd.read_parquet(folder / "out" / "attempts.parquet")
    back = {name: dep for dep, name in names.items()}
    by_request = attempts.sort_values(["request_id", "attempt"]).groupby("request_id").model.apply(list)
    return Served(list(requests.arrival_s - minute_s),
                  [[back[m] for m in by_request.get(r, [])] for r in requests.request_id],
                  list(requests.status == "ok"), list(requests.latency_s), minute_s)
