"""Drive the real ``litellm.Router`` and routesim's emulation of it on the same
schedule, for the conformance tests (tests/test_litellm_conformance.py).

The LiteLLM side: mock deployments (a ``CustomLLM`` provider that answers in
``CALL_S``, or raises LiteLLM's exception for a status code while the schedule
says the deployment fails), one request at a time, requests ``gap_s`` apart,
in a Python process of its own whose clocks stand still but for the schedule:
libfaketime (preloaded) freezes the real-time and the monotonic clock, for
Python and for LiteLLM's native code alike (its cooldown store keeps its TTLs
on the monotonic clock, out of reach of a Python-level patch), and the harness
moves them at each request, at each mock call and at each of LiteLLM's backoff
sleeps (its ``PythonHost.sleep``/``sleep_sync``: the host LiteLLM builds a
router with). So cooldowns and per-minute tallies fall on the request times
whatever the machine's load, and the same seed gives the same calls. Each
request's start time and the deployments it reached are recorded. Requests
with tags go through ``Router.acompletion`` (the path a LiteLLM proxy takes;
litellm 1.110.2's synchronous ``completion`` does not filter by tags,
measured), their tags in the request's metadata.

The routesim side: the same config through ``routesim import litellm``, the
recorded start times as the trace, each failure window as a fault from the
start of its first request to the start of the request after its last, and
deployments that answer in about a millisecond.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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
    busy_s: float = 0.0  # real CPU time each mock call burns, as a loaded machine would stretch it


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
#: Where LiteLLM's clock starts: 10 s into a minute (its failure-rate tally restarts each minute).
START = datetime(2025, 6, 1, 9, 0, 10, tzinfo=timezone.utc)
CALL_S = 0.001  # how long a mock deployment takes to answer or fail, on LiteLLM's clock


def run_litellm(case: Case, seed: int = 1) -> Served:
    """The real Router on ``case``, in a Python of its own whose clocks stand still but for the
    schedule (``FakedClock``). ``seed`` seeds the ``random`` module, whose global generator
    LiteLLM's shuffle uses."""
    import json
    import subprocess
    import sys

    env = {**os.environ, **faked_clock_environment(), "PYTHONPATH": os.pathsep.join(sys.path)}
    asked = json.dumps({"case": case.__dict__, "seed": seed})
    done = subprocess.run([sys.executable, __file__], input=asked, capture_output=True, text=True, env=env,
                          timeout=600)
    if done.returncode:
        raise RuntimeError(f"the LiteLLM side failed:\n{done.stderr[-3000:]}")
    return Served(**json.loads(done.stdout.splitlines()[-1]))


def faked_clock_environment() -> dict[str, str]:
    """libfaketime (the PyPI package's build of it) preloaded, every clock of the process faked
    (the real time and the monotonic one: LiteLLM keeps its cooldowns in native code, on the
    monotonic clock, which no Python-level patch reaches), read afresh at each call, frozen at
    ``START`` until the harness moves it."""
    import importlib.util

    spec = importlib.util.find_spec("libfaketime")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("libfaketime is not installed (the conformance extra)")
    library = Path(list(spec.submodule_search_locations)[0]) / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    return {"LD_PRELOAD": str(library), "FAKETIME_NO_CACHE": "1", "DONT_FAKE_MONOTONIC": "0", "TZ": "UTC",
            "FAKETIME": FakedClock.format(0.0)}


class FakedClock:
    """The LiteLLM process's clocks (libfaketime, preloaded): frozen, moved only by ``advance``
    (the schedule, the mock calls, LiteLLM's own backoff sleeps)."""

    def __init__(self):
        self._now_s = 0.0

    @staticmethod
    def format(seconds: float) -> str:
        return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")

    def now_s(self) -> float:
        """Seconds since ``START``."""
        return self._now_s

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._now_s += seconds
            os.environ["FAKETIME"] = self.format(self._now_s)  # putenv: libfaketime reads it at each call


def virtual_host(clock: FakedClock):
    """LiteLLM's PythonHost (what a Router is built with), its retry backoffs moving ``clock``
    instead of sleeping: a real sleep would never end on a frozen clock."""
    from litellm.router_python_host import PythonHost

    class VirtualHost(PythonHost):
        __slots__ = ()

        def sleep(self, seconds: float):
            clock.advance(seconds)
            return asyncio.sleep(0)

        def sleep_sync(self, seconds: float) -> None:
            clock.advance(seconds)

    return VirtualHost()


def _run_litellm(case: Case, seed: int, clock: FakedClock) -> Served:
    import random
    from time import process_time

    import litellm
    from litellm import CustomLLM
    from litellm.router import Router, router_arguments
    from litellm.router_config import build_router_config

    errors = {500: litellm.InternalServerError, 429: litellm.RateLimitError, 503: litellm.ServiceUnavailableError,
              400: litellm.ContextWindowExceededError}  # 400 here: the request is too long for the deployment
    state = {"i": 0, "calls": []}

    def failing(name: str) -> int | None:
        return next((code for dep, lo, hi, code in case.failures if dep == name and lo <= state["i"] < hi), None)

    class Mock(CustomLLM):
        def completion(self, model, messages, *args, **kwargs):
            state["calls"].append(model)
            clock.advance(CALL_S)
            spin_until = process_time() + case.busy_s
            while process_time() < spin_until:  # CPU time, which libfaketime leaves real
                pass
            code = failing(model)
            if code is not None:
                raise errors[code](message=f"mock {code}", llm_provider="mock", model=model)
            return litellm.ModelResponse(model=model, choices=[{"message": {"role": "assistant", "content": "ok"}}],
                                         usage={"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11})

        async def acompletion(self, model, messages, *args, **kwargs):
            return self.completion(model, messages)

    litellm.custom_provider_map = [{"provider": "mock", "custom_handler": Mock()}]
    litellm.suppress_debug_info = True
    config = build_router_config(router_arguments(model_list=case.model_list, **case.router_settings))
    router = Router.from_config(config, virtual_host(clock))
    random.seed(seed)
    served = Served([], [], [])
    messages = [{"role": "user", "content": "hi"}]
    loop = asyncio.new_event_loop() if case.tags is not None else None
    served.minute_s = START.second + START.microsecond / 1e6  # LiteLLM's failure-rate tally restarts each minute
    for i in range(case.requests):
        state["i"] = i
        clock.advance(i * case.gap_s - clock.now_s())  # the next request, or at once after a slow one
        served.start_s.append(clock.now_s())
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
        served.latency_s.append(clock.now_s() - served.start_s[-1])
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
    from sim.ingest.litellm_config import convert, LiteLLMConfig
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario
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


if __name__ == "__main__":  # the LiteLLM side, in the process run_litellm starts on a faked clock
    import json
    import sys

    asked = json.loads(sys.stdin.read())
    case = Case(**{**asked["case"], "failures": [tuple(f) for f in asked["case"]["failures"]],
                   "tags": None if asked["case"]["tags"] is None else [tuple(t) for t in asked["case"]["tags"]]})
    result = _run_litellm(case, asked["seed"], FakedClock())
    print(json.dumps(result.__dict__))
    sys.stdout.flush()
    os._exit(0)  # LiteLLM's worker threads wait on the frozen clock: do not join them
