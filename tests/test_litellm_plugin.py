"""The same policy object in a real LiteLLM router: sim.integrations.litellm.RoutesimStrategy
with the pinned litellm.Router and mock deployments (no network) serves each request from the
deployment routesim's simulation of the same policy chooses for the same request sequence; a
failing deployment sends the request to the policy's next candidate and observe() sees it; a
policy that raises never fails a request."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import yaml

from conftest import ROOT
from litellm_harness import _close as close_loop

pytestmark = pytest.mark.conformance

#: Deployments: id -> (model group, the model whose LiteLLM cost-map prices it has, quality prior).
DEPLOYMENTS = {
    "mini": ("support", "gpt-4o-mini", 0.0),
    "big": ("code", "gpt-4o", 4.0),
    "haiku": ("support", "claude-haiku-4-5", 1.0),
}
REQUESTS = 40


def _messages(i: int) -> list[dict]:
    """Prompts of varied length, so token counts (and so costs) differ by request."""
    return [{"role": "user", "content": "Please review this. " + "word " * (7 * i % 53)}]


def _workload(i: int) -> str:
    return "code" if i % 3 == 0 else "support"


class _Mock:
    """A LiteLLM custom provider: deployments answer at once with the scheduled answer length,
    or raise a 500 while listed in ``failing``."""

    def __init__(self):
        import litellm
        from litellm import CustomLLM

        self.calls: list[str] = []
        self.failing: set[str] = set()
        self.output_tokens = 50
        mock = self

        class Provider(CustomLLM):
            def completion(self, model, messages, *args, **kwargs):
                mock.calls.append(model)
                if model in mock.failing:
                    raise litellm.InternalServerError(message="mock 500", llm_provider="mock", model=model)
                return litellm.ModelResponse(model=model, choices=[{"message": {"role": "assistant", "content": "ok"}}],
                                             usage={"prompt_tokens": 10, "completion_tokens": mock.output_tokens,
                                                    "total_tokens": 10 + mock.output_tokens})

            async def acompletion(self, model, messages, *args, **kwargs):
                return self.completion(model, messages)

        litellm.custom_provider_map = [{"provider": "mock", "custom_handler": Provider()}]
        litellm.suppress_debug_info = True


def _router(**settings):
    import litellm

    model_list = [{"model_name": group, "litellm_params": {"model": f"mock/{name}"},
                   "model_info": {"id": name, "base_model": base}}
                  for name, (group, base, _) in DEPLOYMENTS.items()]
    return litellm.Router(model_list=model_list, **settings)


def _prices() -> dict[str, tuple[float, float]]:
    import litellm

    return {name: (litellm.get_model_info(base)["input_cost_per_token"] * 1e6,
                   litellm.get_model_info(base)["output_cost_per_token"] * 1e6)
            for name, (_, base, _) in DEPLOYMENTS.items()}


def _simulated(tmp_path, policy: dict, outage: str | None = None) -> pd.DataFrame:
    """routesim's run of ``policy`` on the same requests: its served model per request, in order."""
    import litellm

    trace = pd.DataFrame({
        "request_id": [f"r{i:03d}" for i in range(REQUESTS)],
        "arrival_s": [100.0 * i for i in range(REQUESTS)],  # each request ends before the next, as live
        "workload": [_workload(i) for i in range(REQUESTS)],
        "input_tokens": [litellm.token_counter(model=_workload(i), messages=_messages(i)) for i in range(REQUESTS)],
        "output_tokens": [20 + 13 * i % 300 for i in range(REQUESTS)],
    })
    trace.to_csv(tmp_path / "trace.csv", index=False)
    prices = _prices()
    scenario = {
        "name": "plugin", "seed": 1, "replications": 1, "trace": {"path": "trace.csv"},
        "router_knowledge": {"difficulty_noise_sd": None},
        "models": {name: {"provider": "openai", "price": {"input_per_mtok": prices[name][0],
                                                          "output_per_mtok": prices[name][1]},
                          "latency": {"ttft_s": {"median": 0.01, "p95": 0.02}, "tokens_per_s": {"median": 5000, "p5": 4000}},
                          "quality": {"default": q}, "quality_prior": {"default": q}}
                   for name, (_, _, q) in DEPLOYMENTS.items()},
        "events": [] if outage is None else [{"kind": "outage", "model": outage, "start_s": 0, "end_s": 1e6}],
        "router": {"health": None, "max_attempts": 3},
        "policies": {"p": policy},
    }
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    done = subprocess.run([sys.executable, "-m", "sim", "run", "scenario.yaml", "--out", "run", "--no-report"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    requests = pd.read_parquet(tmp_path / "run" / "requests.parquet").sort_values("arrival_s")
    return requests.assign(output_tokens=trace.output_tokens.to_numpy())


def _live(policy, mock: _Mock, outputs, router=None, **strategy_args):
    """The live router's served deployment per request, and the strategy."""
    from sim.integrations.litellm import RoutesimStrategy

    router = router or _router(num_retries=2)
    strategy = RoutesimStrategy(policy, router, **strategy_args).install()
    served, reached = [], []
    loop = asyncio.new_event_loop()
    try:
        for i in range(REQUESTS):
            mock.output_tokens = int(outputs[i])
            before = len(mock.calls)
            answer = loop.run_until_complete(router.acompletion(model=_workload(i), messages=_messages(i)))
            served.append(answer._hidden_params.get("model_id"))
            reached.append(mock.calls[before:])
            loop.run_until_complete(_settled(strategy, i + 1))  # its outcome observed, as in the simulation
    finally:
        strategy.uninstall()
        close_loop(loop)
    return served, reached, strategy


async def _settled(strategy, requests: int) -> None:
    """Wait (at most 5 s) until LiteLLM's callbacks have reported ``requests`` requests' ends."""
    for _ in range(500):
        if strategy.ended >= requests:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"LiteLLM reported {strategy.ended} of {requests} requests' ends")


def _policy(spec: dict):
    from sim.policies import build

    return build(spec["kind"], {k: v for k, v in spec.items() if k != "kind"})


QUALITY = {name: {"default": q} for name, (_, _, q) in DEPLOYMENTS.items()}


@pytest.mark.parametrize("spec", [
    {"kind": "static", "model": "haiku"},
    {"kind": "manual", "routes": {"support": "mini", "code": ["big", "haiku"]}},
    {"kind": "weighted", "weights": {"cost": 0.7, "quality": 0.3}, "output_tokens_prior": 200,
     "workload_weights": {"code": {"cost": 0.2, "quality": 0.8}}},
    {"kind": "weighted", "weights": {"cost": 0.3, "quality": 0.7}, "workload_weights": {"support": {"cost": 1.0}}},
], ids=["static", "manual", "weighted-cheap", "weighted-good"])
def test_the_plugin_serves_what_the_simulation_chooses(tmp_path, spec):
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")
    simulated = _simulated(tmp_path, spec)
    mock = _Mock()
    served, _, strategy = _live(_policy(spec), mock, simulated.output_tokens.to_numpy(), quality=QUALITY)
    assert served == simulated.model.tolist()
    assert len(set(served)) >= (1 if spec["kind"] == "static" else 2)  # the policy's choices vary by request
    assert strategy.policy_errors == 0 and strategy.decision_us()["decisions"] == REQUESTS


def test_a_users_own_policy_class_serves_the_same(tmp_path):
    """A ``module:Class`` policy that routes by the request's token count: the live count is
    LiteLLM's token counter, the simulated one the trace's, made with the same counter."""
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")
    (tmp_path / "by_length.py").write_text(textwrap.dedent('''
        from sim.policies import Decision

        class ByLength:
            reads = frozenset()

            def route(self, request, view):
                return Decision(("big", "mini") if request.input_tokens > 40 else ("mini", "big"), "length")
    '''))
    simulated = _simulated(tmp_path, {"kind": "by_length:ByLength"})
    sys.path.insert(0, str(tmp_path))
    try:
        from by_length import ByLength
    finally:
        sys.path.remove(str(tmp_path))
    served, _, _ = _live(ByLength(), _Mock(), simulated.output_tokens.to_numpy())
    assert served == simulated.model.tolist() and set(served) == {"mini", "big"}


def test_a_failing_deployment_falls_back_to_the_policys_next_candidate(tmp_path):
    """haiku fails every call with a 500: each request goes to haiku, then to the policy's second
    candidate, as in the simulation with haiku down; observe() sees two attempts and the view
    the failures."""
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")
    spec = {"kind": "static", "model": "haiku", "fallbacks": ["mini", "big"]}
    simulated = _simulated(tmp_path, spec, outage="haiku")
    mock = _Mock()
    mock.failing = {"haiku"}
    outcomes = []

    class Watching:
        def __init__(self):
            self.inner = _policy(spec)

        def route(self, request, view):
            return self.inner.route(request, view)

        def observe(self, request, outcome):
            outcomes.append(outcome)

    # Cooldowns off: LiteLLM would otherwise cool haiku down, and the strategy skip it.
    served, reached, strategy = _live(Watching(), mock, simulated.output_tokens.to_numpy(),
                                      router=_router(num_retries=2, disable_cooldowns=True))
    assert served == simulated.model.tolist() == ["mini"] * REQUESTS
    assert reached == [["haiku", "mini"]] * REQUESTS
    assert simulated.attempts.tolist() == [o.attempts for o in outcomes] == [2] * REQUESTS
    assert [o.status for o in outcomes] == ["ok"] * REQUESTS and {o.model for o in outcomes} == {"mini"}
    haiku = strategy.observations.status("haiku", True)
    assert (haiku.calls, haiku.failures, haiku.consecutive_failures) == (REQUESTS, REQUESTS, REQUESTS)


def test_a_policy_that_raises_never_fails_a_request(tmp_path, caplog):
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")

    class Broken:
        def route(self, request, view):
            raise RuntimeError("bug in the policy")

    class Unknown:
        def route(self, request, view):
            from sim.policies import Decision

            return Decision(("no-such-deployment",), "typo")

    for policy in (Broken(), Unknown()):
        mock = _Mock()
        served, _, strategy = _live(policy, mock, [10] * REQUESTS, seed=3)
        # LiteLLM's default routing served every request from the group it asked for.
        groups = [DEPLOYMENTS[s][0] for s in served]
        assert groups == [_workload(i) for i in range(REQUESTS)]
        assert set(served) == {"mini", "haiku", "big"}  # simple-shuffle spreads "support" over both
        assert strategy.policy_errors == REQUESTS
    assert "bug in the policy" in caplog.text and "no-such-deployment" in caplog.text


def test_the_adapter_never_imports_the_simulator():
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")
    code = ("import sys; import sim.integrations.litellm; "
            "print(sorted(m for m in sys.modules if m == 'simpy' or m in ('sim.core.engine', 'sim.world.world', 'sim.core.router')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_models_name_deployments_by_id_or_by_their_litellm_model():
    """``models`` maps routesim's names to deployments: by model_info.id or by a
    litellm_params.model only one deployment has; anything else is refused, naming it."""
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")
    from sim.integrations.litellm import RoutesimStrategy

    _Mock()
    router = _router()
    policy = _policy({"kind": "static", "model": "cheap", "fallbacks": ["strong"]})
    strategy = RoutesimStrategy(policy, router, models={"cheap": "mock/mini", "strong": "big"}).install()
    loop = asyncio.new_event_loop()
    try:
        answer = loop.run_until_complete(router.acompletion(model="code", messages=_messages(1)))
    finally:
        strategy.uninstall()
        close_loop(loop)
    assert answer._hidden_params.get("model_id") == "mini"
    assert [m.name for m in strategy.observations.view(0.0).models] == ["cheap", "strong"]
    assert strategy.observations.facts["strong"].input_per_mtok == _prices()["big"][0]
    with pytest.raises(ValueError, match=r"models\['x'\] = 'mock/none': no deployment has that model_info.id"):
        RoutesimStrategy(policy, router, models={"x": "mock/none"})


def test_the_synchronous_path_routes_the_same_way():
    """router.completion (LiteLLM's synchronous path) asks the strategy's synchronous pick: the
    policy's first candidate, then its second when the first fails."""
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")
    from sim.integrations.litellm import RoutesimStrategy

    mock = _Mock()
    mock.failing = {"haiku"}
    router = _router(num_retries=2, disable_cooldowns=True)
    strategy = RoutesimStrategy(_policy({"kind": "static", "model": "haiku", "fallbacks": ["big"]}), router).install()
    try:
        answer = router.completion(model="support", messages=_messages(3))
    finally:
        strategy.uninstall()
    assert answer._hidden_params.get("model_id") == "big" and mock.calls == ["haiku", "big"]
    assert strategy.decision_us()["decisions"] == 1 and strategy.policy_errors == 0


class _CandidatesRaise:
    """A decision of the policy's own type whose ``candidates`` property raises."""

    @property
    def candidates(self):
        raise RuntimeError("candidates property broke")


def _raising_generator():
    yield "mini"
    raise RuntimeError("candidates generator broke")


#: Decisions a policy may return that are not a sequence of deployment names.
MALFORMED = {
    "an int": lambda: _decision(3),
    "nested lists": lambda: _decision([["mini"], ["big"]]),
    "a tuple holding a list": lambda: _decision((["mini"],)),
    "a string": lambda: _decision("mini"),
    "bytes": lambda: _decision(b"mini"),
    "None": lambda: _decision(None),
    "a mapping of ints": lambda: _decision({1: 2}),
    "a raising property": lambda: _CandidatesRaise(),
    "a raising generator": lambda: _decision(_raising_generator()),
    "not a decision": lambda: "mini",
    "no candidates": lambda: _decision(()),
}


def _decision(candidates):
    from sim.policies import Decision

    return Decision(candidates, "malformed on purpose")


@pytest.mark.parametrize("shape", list(MALFORMED))
def test_a_malformed_decision_never_fails_a_request(shape, caplog):
    """Whatever a policy returns, the real router answers every request (from the group asked
    for, by LiteLLM's routing) and each bad decision is one policy error."""
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")

    class Malformed:
        def route(self, request, view):
            return MALFORMED[shape]()

    served, _, strategy = _live(Malformed(), _Mock(), [10] * REQUESTS, seed=5)
    assert [DEPLOYMENTS[s][0] for s in served] == [_workload(i) for i in range(REQUESTS)]
    assert strategy.policy_errors == REQUESTS and strategy.decision_timeouts == 0
    assert caplog.text.count("routesim policy error on request") == REQUESTS


def test_a_slow_policy_is_abandoned_at_the_decision_budget():
    """route() takes 2 s: with a 50 ms budget each request waits about 50 ms, not 2 s, for
    LiteLLM's routing to serve it, and is counted as a decision timeout; while the late call
    runs, later requests go to LiteLLM's routing at once. A fast policy is unaffected."""
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")
    import threading
    import time

    from sim.integrations.litellm import RoutesimStrategy
    from sim.policies import Decision

    release = threading.Event()
    calls = []

    class Slow:
        def route(self, request, view):
            calls.append(request.request_id)
            release.wait(2.0)
            return Decision(("big",), "slow")

    _Mock()
    router = _router(num_retries=0)
    strategy = RoutesimStrategy(Slow(), router, decision_budget_s=0.05).install()
    loop = asyncio.new_event_loop()
    took, served = [], []
    try:
        for i in range(6):
            start = time.perf_counter()
            answer = loop.run_until_complete(router.acompletion(model="support", messages=_messages(i)))
            took.append(time.perf_counter() - start)
            served.append(answer._hidden_params.get("model_id"))
    finally:
        release.set()
        strategy.uninstall()
        close_loop(loop)
    assert set(served) <= {"mini", "haiku"}  # the support group, by LiteLLM's routing, never "big"
    assert strategy.decision_timeouts == 6 and strategy.policy_errors == 0
    assert len(calls) == 1  # the later requests did not queue behind the stuck call
    assert took[0] >= 0.05 and max(took) < 1.0, took  # nobody waited the policy's 2 s
    assert sorted(took)[len(took) // 2] < 0.5

    fast = RoutesimStrategy(_policy({"kind": "static", "model": "big"}), router, decision_budget_s=0.05).install()
    loop = asyncio.new_event_loop()
    try:
        answer = loop.run_until_complete(router.acompletion(model="support", messages=_messages(1)))
    finally:
        fast.uninstall()
        close_loop(loop)
    assert answer._hidden_params.get("model_id") == "big" and fast.decision_timeouts == 0


def test_the_decision_budget_must_be_a_positive_number():
    pytest.importorskip("litellm", reason="the real router (the conformance extra)")
    from sim.integrations.litellm import RoutesimStrategy

    _Mock()
    for bad in (0, -1, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="decision_budget_s must be a number of seconds > 0 or None"):
            RoutesimStrategy(_policy({"kind": "static", "model": "big"}), _router(), decision_budget_s=bad)
