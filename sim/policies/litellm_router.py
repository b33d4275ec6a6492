"""``litellm-router``: a LiteLLM proxy's routing, model groups and all.

A request asks for a model group (its workload is the group's ``model_name``,
as a LiteLLM client asks for ``model``); the group's deployments are ordered by
the configured LiteLLM strategy, lower ``order`` first (LiteLLM tries order-1
deployments before order-2 ones), and the group's ``fallbacks`` follow, each
ordered the same way. ``routesim import litellm`` writes this policy from a
proxy config.

With ``num_retries`` (and ``router.retry.reroute``) it behaves as LiteLLM 1.110.2
does: each group gets ``num_retries`` + 1 attempts, every one a fresh pick among
the group's deployments that are not cooling down (so a failed deployment may be
picked again), then the next fallback group; a group with no deployment out of
cooldown is skipped without an attempt, and with none left the request fails.

With tag filtering on (``tag_filtering``, or per group ``group_tag_filtering``),
a group's pick is among the deployments its tags allow for the request's tags
(``litellm_tags.py``); a group that allows none is skipped, as LiteLLM refuses it
and moves on to the fallbacks.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field

from .base import BasePolicy, Decision, Outcome, Request, RouterView
from .litellm import Limit
from .litellm_tags import allowed_deployments
from .params import PolicyParams, builtin, construct, register

STRATEGIES = ("simple-shuffle", "least-busy", "usage-based", "latency-based", "cost-based")
#: LiteLLM 1.110.2's retry backoff (litellm/constants.py: INITIAL_RETRY_DELAY, MAX_RETRY_DELAY, JITTER).
INITIAL_RETRY_DELAY_S, MAX_RETRY_DELAY_S, JITTER_S = 0.5, 8.0, 0.75


class LiteLLMRouterParams(PolicyParams):
    groups: dict[str, list[str]]  # model group (model_name) -> its deployments
    strategy: Literal[STRATEGIES] = "simple-shuffle"
    weights: dict[str, float] = {}  # simple-shuffle: deployment -> rpm, tpm or weight
    litellm_metrics: dict[str, dict[str, float]] = {}  # simple-shuffle, LiteLLM's rule: deployment -> weight/rpm/tpm
    limits: dict[str, Limit] = {}  # usage-based: deployment -> rpm/tpm
    order: dict[str, int] = {}  # deployment -> priority inside its group (lower first; 1 when omitted)
    fallbacks: dict[str, list[str]] = {}  # group -> groups tried after it
    default_group: str | None = None  # for workloads that name no group
    aliases: dict[str, str] = {}  # LiteLLM's model_group_alias: a name clients ask for -> the group serving it
    # LiteLLM's attempts per group are num_retries + 1, each a fresh pick (needs router.retry.reroute).
    # None: the group's deployments are each tried once, in the strategy's order.
    num_retries: int | None = Field(None, ge=0, le=19)
    # Tag-based routing (LiteLLM's enable_tag_filtering): deployment -> its tags.
    tags: dict[str, list[str]] = {}
    tag_filtering: bool = False  # router-wide
    group_tag_filtering: dict[str, bool] = {}  # per group, over the router-wide setting (model_info)
    tag_filtering_match_any: bool = True  # a deployment needs any of the request's tags (False: all)

    def referenced_models(self):
        return ([(d, ("groups", g, i)) for g, ds in self.groups.items() for i, d in enumerate(ds)]
                + [(d, ("tags", d)) for d in self.tags])

    def workload_problems(self, workloads):
        problems = []
        for g, chain in self.fallbacks.items():
            for i, name in enumerate([g] + chain):
                if name not in self.groups:
                    problems.append((("fallbacks", g) + ((i - 1,) if i else ()), f"unknown model group '{name}'"))
        problems += [(("group_tag_filtering", g), f"unknown model group '{g}'")
                     for g in self.group_tag_filtering if g not in self.groups]
        problems += [(("aliases", a), f"unknown model group '{g}'") for a, g in self.aliases.items() if g not in self.groups]
        if self.default_group is not None and self.default_group not in self.groups:
            problems.append((("default_group",), f"unknown model group '{self.default_group}'"))
        elif self.default_group is None:
            missing = [w for w in workloads if w not in self.groups and w not in self.aliases]
            if missing:
                problems.append((("groups",), f"the trace's workload(s) {', '.join(missing)} name no model group "
                                               "(workloads are the requested model_name); add default_group"))
        return problems


@register("litellm-router")
class LiteLLMRouter(BasePolicy):
    Params = LiteLLMRouterParams
    description = "A LiteLLM proxy: the request's model group by strategy and order, then the group's fallbacks."
    reads = frozenset()

    def __init__(self, seed: int | None = None, **params):
        self.p = self.Params(**params)
        self.rng = random.Random(seed)  # the retries' backoff jitter
        self._strategies = {}
        for k, (group, deployments) in enumerate(self.p.groups.items()):
            strategy_params = {"models": deployments}
            if self.p.strategy == "simple-shuffle":
                strategy_params["weights"] = {d: w for d, w in self.p.weights.items() if d in deployments}
                strategy_params["litellm_metrics"] = {d: m for d, m in self.p.litellm_metrics.items() if d in deployments}
            elif self.p.strategy == "usage-based":
                strategy_params["limits"] = {d: l.model_dump(exclude_none=True) for d, l in self.p.limits.items()
                                             if d in deployments}
                strategy_params["litellm_limits"] = self.p.num_retries is not None  # LiteLLM's behaviour
            self._strategies[group] = construct(builtin(self.p.strategy), strategy_params,
                                                None if seed is None else seed + k)

    def route(self, request: Request, view: RouterView) -> Decision:
        asked = self.p.aliases.get(request.workload, request.workload)
        group = asked if asked in self.p.groups else self.p.default_group
        if group is None:
            raise ValueError(f"no model group '{request.workload}' and no default_group")
        ordered: list[str] = []
        chain = [group] + self.p.fallbacks.get(group, [])
        wait = self._backoff(request.tried, chain, view) if self.p.num_retries is not None else 0.0
        for g in chain:
            if self.p.num_retries is not None:
                deployments = self.p.groups[g]
                if sum(t in deployments for t in request.tried) > self.p.num_retries:
                    continue  # this group's attempts are spent
                if not any(view.model(d).healthy for d in deployments if d in view.positions):
                    continue  # every deployment cooling down: LiteLLM has none to pick, it moves on
            group_view = view
            if self.p.group_tag_filtering.get(g, self.p.tag_filtering):
                group_view = self._tag_view(request, g, view)
                if group_view is None:
                    continue  # no deployment of this group may serve these tags
            picks = self._strategies[g].route(request, group_view).candidates
            # A stable sort keeps the strategy's order within each priority.
            ordered += sorted(picks, key=lambda d: self.p.order.get(d, 1))
        return Decision(tuple(dict.fromkeys(ordered)), f"litellm {self.p.strategy}: {group}", wait_s=wait)

    def _tag_view(self, request: Request, group: str, view: RouterView) -> RouterView | None:
        """The view narrowed to the group's deployments the request's tags allow (chosen
        among those out of cooldown, as LiteLLM filters after cooldowns), or None."""
        present = [d for d in self.p.groups[group] if d in view.positions]
        pool = [d for d in present if view.model(d).healthy] or present
        allowed = allowed_deployments(request.tags, pool, self.p.groups[group], self.p.tags,
                                      self.p.tag_filtering_match_any)
        if not allowed:
            return None
        models = [view.model(d) for d in allowed]
        return RouterView(view.now_s, models, {d: i for i, d in enumerate(allowed)})

    def _backoff(self, tried: tuple[str, ...], chain: list[str], view: RouterView) -> float:
        """LiteLLM's sleep after a failed attempt (before the group's next one, or before its
        fallback group): none while another deployment of the failed one's group is out of
        cooldown, else 0.5 s x 2^retries so far (at most 8 s) + up to 0.75 s."""
        if not tried:
            return 0.0
        deployments = next((self.p.groups[g] for g in chain if tried[-1] in self.p.groups[g]), [])
        others = [d for d in deployments if d != tried[-1] and d in view.positions and view.model(d).healthy]
        if not deployments or others:
            return 0.0
        retries = sum(t in deployments for t in tried) - 1
        return min(INITIAL_RETRY_DELAY_S * 2.0 ** retries, MAX_RETRY_DELAY_S) + JITTER_S * self.rng.random()

    def observe(self, request: Request, outcome: Outcome) -> None:
        for strategy in self._strategies.values():
            strategy.observe(request, outcome)
