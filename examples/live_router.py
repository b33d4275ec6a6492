"""A minimal live router that runs any routesim policy unchanged.

The same policy object routesim simulates is called here with a ``RouterView``
built from the wall clock and the router's own observations of real calls. The
provider calls are plain functions (fakes in the demo below; an HTTP client in
production). Nothing here imports the simulator or simpy. A team on LiteLLM does not need
this: ``sim.integrations.litellm.RoutesimStrategy(policy, router).install()`` runs the policy
inside its ``litellm.Router`` (docs/policies.md).

    python examples/live_router.py
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable

from sim.policies import ModelStatus, Outcome, Request, RouterView, build


@dataclass
class Deployment:
    """A model at a provider: its published facts and how to call it."""

    name: str
    provider: str
    input_per_mtok: float
    output_per_mtok: float
    call: Callable[[Request], int]  # returns the output tokens; raises on failure
    context_window: int = 128_000
    quality_prior: dict = field(default_factory=lambda: {"default": 0.0})
    ttft_prior_s: float = 1.0
    tokens_per_s_prior: float = 50.0


class LiveRouter:
    def __init__(self, policy, deployments: list[Deployment], clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self.deployments = {d.name: d for d in deployments}
        self.clock = clock
        self.positions = MappingProxyType({d.name: i for i, d in enumerate(deployments)})
        self.stats = {d.name: {"calls": 0, "failures": 0, "in_flight": 0, "latency": None, "errors": 0.0,
                               "consecutive": 0, "last_failure": None} for d in deployments}

    def view(self) -> RouterView:
        statuses = []
        for d in self.deployments.values():
            s = self.stats[d.name]
            statuses.append(ModelStatus(
                d.name, d.provider, d.input_per_mtok, d.output_per_mtok, d.context_window,
                MappingProxyType(d.quality_prior), d.ttft_prior_s, d.tokens_per_s_prior, None,
                s["calls"], s["failures"], s["in_flight"], s["latency"], None, None, s["errors"],
                s["consecutive"], s["last_failure"], s["consecutive"] < 3))
        return RouterView(self.clock(), tuple(statuses), self.positions)

    def complete(self, request_id: str, workload: str, input_tokens: int) -> Outcome:
        """Route one request: ask the policy, try its candidates in order, report back."""
        start = self.clock()
        request = Request(request_id, start, workload, input_tokens)
        decision = self.policy.route(request, self.view())
        attempts, cost = 0, 0.0
        for name in decision.candidates:
            deployment, s = self.deployments[name], self.stats[name]
            attempts += 1
            s["in_flight"] += 1
            began = self.clock()
            try:
                output_tokens = deployment.call(request)
            except Exception:
                s["failures"] += 1
                s["consecutive"] += 1
                s["last_failure"] = self.clock()
                s["errors"] += 0.1 * (1 - s["errors"])
                continue
            finally:
                s["in_flight"] -= 1
                s["calls"] += 1
            latency = self.clock() - began
            s["latency"] = latency if s["latency"] is None else s["latency"] + 0.1 * (latency - s["latency"])
            s["consecutive"] = 0
            s["errors"] *= 0.9
            cost += (input_tokens * deployment.input_per_mtok + output_tokens * deployment.output_per_mtok) / 1e6
            outcome = Outcome(request_id, "ok", name, attempts, self.clock() - start, None, cost, input_tokens,
                              output_tokens)
            break
        else:
            outcome = Outcome(request_id, "failed", None, attempts, self.clock() - start, None, cost, input_tokens, 0)
        if hasattr(self.policy, "observe"):
            self.policy.observe(request, outcome)
        return outcome


def demo() -> list[Outcome]:
    """Twenty requests through the built-in ``weighted`` policy; the cheap model is down."""

    def down(request: Request) -> int:
        raise ConnectionError("503 from the provider")

    def answer(request: Request) -> int:
        return 120

    deployments = [
        Deployment("cheap-model", "provider-a", 0.3, 2.5, down, quality_prior={"default": 2.0}),
        Deployment("strong-model", "provider-b", 1.25, 10.0, answer, quality_prior={"default": 3.0}),
    ]
    router = LiveRouter(build("weighted", {"weights": {"cost": 0.7, "quality": 0.3}}), deployments)
    return [router.complete(f"req-{i}", "chat", 800) for i in range(20)]


if __name__ == "__main__":
    for outcome in demo():
        print(outcome.request_id, outcome.status, outcome.model, f"attempts={outcome.attempts}", f"${outcome.cost_usd:.6f}")
