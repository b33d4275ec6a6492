"""The ground truth an upper-bound policy (the oracle) is allowed to see.

Only the runner hands this to a policy that declares ``upper_bound``; no other
policy ever gets it. It answers, for a request at its arrival, what the first
attempt on each model would do, from the same world state and per-attempt
variates the router uses (so the oracle's foresight is exact for that attempt).
"""

from __future__ import annotations

from .models import ModelTable
from sim.policies.base import Request
from sim.policies.oracle import TrueOutcome
from sim.pricing.points import charge_usd
from sim.rng import BLOCK_SIZE
from sim.scenario.schema.routing import RouterSpec
from .world import World


class GroundTruth:
    def __init__(self, world: World, catalog: ModelTable, router: RouterSpec):
        self.world = world
        self.names = catalog.names
        self.context = catalog.context_window
        self.index = {request_id: i for i, request_id in enumerate(world.trace.request_id.tolist())}
        self.wait_s = router.timeout_s if router.deadline_s is None else min(router.timeout_s, router.deadline_s)
        self.input = world.trace.input_tokens
        self.output = world.trace.output_tokens

    def __call__(self, request: Request) -> dict[str, TrueOutcome]:
        i = self.index[request.request_id]
        now = request.arrival_s
        world, n_models, n_attempts = self.world, len(self.names), self.world.n_attempts
        block = world.block(i // BLOCK_SIZE)
        tokens_in, tokens_out = int(self.input[i]), int(self.output[i])
        truth = {}
        for m, name in enumerate(self.names):
            at = ((i % BLOCK_SIZE) * n_models + m) * n_attempts  # the first attempt on m
            down, error_rate, latency_x, _ = world.state(m, now)
            answers = (not down and tokens_in + tokens_out <= self.context[m]
                       and block.error_u[at] >= error_rate
                       and block.latency_s[at] * latency_x <= self.wait_s)
            cost = charge_usd(world.prices.price(m, now), tokens_in, int(world.cached_input_tokens[i]), tokens_out)
            truth[name] = TrueOutcome(answers, bool(block.accept[at]), cost)
        return truth
