"""``routesim import litellm``: a LiteLLM proxy config into a scenario.

What is mapped (LiteLLM -> routesim):
- each ``model_list`` entry is a deployment (a scenario model); entries sharing
  a ``model_name`` form a model group, and a request's workload names the group
  it asks for;
- ``litellm_params.model`` ``provider/name`` -> the model's provider, and its
  price from the genai-prices catalog when the catalog knows the model (else a
  TODO that ``routesim validate`` refuses until filled in); a deployment's own
  ``input_cost_per_token``/``output_cost_per_token`` win over the catalog;
- ``weight``/``rpm``/``tpm`` -> simple-shuffle's weights as LiteLLM takes them:
  the first of weight, rpm, tpm that any deployment of the group has, 0 for
  deployments without it; ``rpm``/``tpm`` are usage-based routing's limits and
  not provider rate limits (LiteLLM's router does not turn calls away over
  them); ``order`` -> priority inside the group; the largest ``timeout`` ->
  ``router.timeout_s``;
- ``router_settings`` (or ``litellm_settings``): ``routing_strategy`` -> the
  ``litellm-router`` policy's strategy; ``num_retries`` (LiteLLM's default 2) ->
  the policy's attempts per group, each a fresh pick (``router.retry.reroute``);
  ``fallbacks`` -> group fallbacks; ``context_window_fallbacks`` ->
  ``router.context_window_fallbacks``; ``allowed_fails`` and ``cooldown_time``
  (default 5 s) -> ``router.cooldown``, always on as in LiteLLM (off with
  ``disable_cooldowns``), with its single-deployment groups;
  ``model_group_alias`` -> the policy's aliases (a name clients ask for -> the
  group serving it); ``timeout`` (default 6,000 s) -> ``router.timeout_s``;
  the router's own health hold is off (LiteLLM has none);
- tag-based routing: ``enable_tag_filtering`` (router-wide, or per group in
  ``model_info``), ``tag_filtering_match_any`` and each deployment's ``tags`` ->
  the policy's tag rules, applied to the ``tags`` a trace's requests carry;
- ``litellm_settings.cache`` -> ``router.response_cache`` answering the share of
  requests given by ``--cache-hit-share`` (0 until given).

Wildcard routes (``*``, ``anthropic/*``) are not deployments: each model group
the settings name that only a wildcard serves gets a deployment of its own
(LiteLLM calls the provider with that name). Deployments that are not chat
traffic (``model_info.mode`` batch, embedding, rerank, ...; or a rerank or
embedding model by its name) are skipped. Every other key is named in the
notes (printed, and written at the top of the scenario) as not simulated, with
the reason (``ingest/litellm_keys.py``).

A LiteLLM config has no latency or quality figures: the scenario gets marked
placeholders to replace with measurements.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.files import atomic_file
from sim.errors import InputError, Problem, describe_error
from .litellm_keys import SETTINGS, unmapped_notes
from sim.scenario.yamlio import format_path, line_of, load_yaml

#: LiteLLM provider prefixes -> genai-prices provider ids.
CATALOG_PROVIDERS = {"openai": "openai", "azure": "azure", "azure_ai": "azure", "anthropic": "anthropic",
                     "gemini": "google", "vertex_ai": "google", "bedrock": "aws", "together_ai": "together",
                     "groq": "groq", "mistral": "mistral", "deepseek": "deepseek", "fireworks_ai": "fireworks",
                     "xai": "x-ai", "cohere": "cohere", "perplexity": "perplexity", "openrouter": "openrouter",
                     "cerebras": "cerebras"}
#: Where to look next when the catalog has no entry for the provider itself: Azure
#: OpenAI's list prices are OpenAI's.
CATALOG_FALLBACKS = {"azure": "openai"}
#: LiteLLM routing_strategy -> routesim strategy.
STRATEGIES = {"simple-shuffle": "simple-shuffle", "least-busy": "least-busy",
              "usage-based-routing": "usage-based", "usage-based-routing-v2": "usage-based",
              "latency-based-routing": "latency-based", "cost-based-routing": "cost-based"}
PLACEHOLDER_LATENCY = {"ttft_s": {"median": 0.8, "p95": 2.5}, "tokens_per_s": {"median": 60, "p5": 20}}
#: LiteLLM 1.110.2's defaults (litellm/constants.py, router.py).
LITELLM_NUM_RETRIES, LITELLM_COOLDOWN_S, LITELLM_TIMEOUT_S = 2, 5.0, 6000.0
MAX_ATTEMPTS = 20  # routesim's ceiling on router.max_attempts
_RETRY_OUTCOMES = ["error", "rate_limited", "timeout"]
#: model_info.mode values that are chat traffic; other deployments (batch, embedding, rerank, ...) are skipped.
CHAT_MODES = {None, "chat", "completion", "responses"}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class LiteLLMParams(_Loose):
    model: str
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    weight: float | None = Field(None, ge=0)
    order: int | None = Field(None, ge=1)
    timeout: float | None = Field(None, gt=0)
    custom_llm_provider: str | None = None
    tags: list[str] | None = None


class Deployment(_Loose):
    model_name: str
    litellm_params: LiteLLMParams
    model_info: dict[str, Any] = {}

    @property
    def wildcard(self) -> bool:
        return "*" in self.model_name or "*" in self.litellm_params.model

    def non_chat(self) -> str | None:
        """Why this deployment is not chat traffic (its mode, or a rerank/embedding model's name), or None."""
        mode = self.model_info.get("mode")
        if mode not in CHAT_MODES:
            return f"mode: {mode}"
        name = self.litellm_params.model.lower()
        kind = next((k for k in ("rerank", "embed") if k in name), None)
        return f"a {kind} model by its name" if kind else None


class LiteLLMConfig(_Loose):
    model_list: list[Deployment] = Field(min_length=1)
    router_settings: dict[str, Any] = {}
    litellm_settings: dict[str, Any] = {}


# --------------------------------------------------------------------------- reading
def read_config(path: Path) -> LiteLLMConfig:
    data, lines = load_yaml(path)
    try:
        return LiteLLMConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            where = tuple(e["loc"])
            problems.append(Problem(describe_error(e), file=str(path), line=line_of(lines, where),
                                    path=format_path(where)))
        raise InputError(problems) from None


def _settings(config: LiteLLMConfig) -> dict[str, Any]:
    """Router settings; ``router_settings`` wins over ``litellm_settings``."""
    merged = {k: v for k, v in config.litellm_settings.items() if k in SETTINGS}
    merged.update(config.router_settings)
    return merged


def _provider_and_name(params: LiteLLMParams) -> tuple[str, str]:
    provider, sep, name = params.model.partition("/")
    if params.custom_llm_provider:
        return params.custom_llm_provider, params.model if not sep else name
    return (provider, name) if sep else ("openai", params.model)  # LiteLLM's default for a bare name


def _group_map(entries: list[dict], path: str, problems: list[str]) -> dict[str, list[str]]:
    """LiteLLM's ``[{group: [fallback groups]}]`` as one mapping."""
    out: dict[str, list[str]] = {}
    for entry in entries or []:
        if not isinstance(entry, dict):
            problems.append(f"{path}: expected entries like {{group: [fallback groups]}}, got {entry!r}")
            continue
        for group, targets in entry.items():
            out[str(group)] = [str(t) for t in (targets if isinstance(targets, list) else [targets])]
    return out


def _chat_deployments(config: LiteLLMConfig, settings: dict[str, Any], notes: list[str],
                      requested: list[str]) -> list[Deployment]:
    """The deployments to simulate: chat ones, plus a deployment for each model group the
    settings or the trace (``requested``) name that only a wildcard route serves (LiteLLM
    calls the provider with that name). Skipped deployments and wildcard routes get a note each."""
    chat, wildcards = [], []
    for d in config.model_list:
        why = d.non_chat()
        if why is not None:
            notes.append(f"skipped {d.model_name} ({d.litellm_params.model}): not chat traffic ({why})")
        elif d.wildcard:
            wildcards.append(d)
            notes.append(f"wildcard route {d.model_name!r} -> {d.litellm_params.model}: serves any model name "
                         "matching it; a deployment is added for each such name the config or the trace (--trace) "
                         "asks for")
        else:
            chat.append(d)
    explicit = {d.model_name for d in chat}
    referenced = [g for key in ("fallbacks", "context_window_fallbacks")
                  for entry in settings.get(key) or [] if isinstance(entry, dict)
                  for source, targets in entry.items()
                  for g in [source] + (targets if isinstance(targets, list) else [targets])]
    for name in dict.fromkeys([str(g) for g in referenced] + requested):
        route = next((w for w in wildcards if name not in explicit and fnmatchcase(name, w.model_name)), None)
        if route is not None:
            chat.append(_served_by_wildcard(name, route))
            explicit.add(name)
    return chat


def _own_prices(d: Deployment) -> dict[str, float] | None:
    """USD per million tokens from a deployment's own input/output_cost_per_token (in
    litellm_params or model_info; LiteLLM bills them over its price map), or None."""
    costs = {**{k: v for k, v in d.model_info.items() if k.endswith("_cost_per_token")},
             **{k: v for k, v in (d.litellm_params.model_extra or {}).items() if k.endswith("_cost_per_token")}}
    if "input_cost_per_token" not in costs or "output_cost_per_token" not in costs:
        return None
    return {"input_per_mtok": float(costs["input_cost_per_token"]) * 1e6,
            "output_per_mtok": float(costs["output_cost_per_token"]) * 1e6}


def _served_by_wildcard(name: str, route: Deployment) -> Deployment:
    """The deployment a wildcard route makes for the model group ``name``: the route's model
    with its '*' replaced by what the '*' of the route's model_name matched."""
    prefix, _, suffix = route.model_name.partition("*")
    matched = name[len(prefix):len(name) - len(suffix)] if suffix else name[len(prefix):]
    params = route.litellm_params.model_dump(exclude_unset=True) | {"model": route.litellm_params.model.replace("*", matched)}
    return Deployment(model_name=name, litellm_params=LiteLLMParams(**params))


# --------------------------------------------------------------------------- converting
def convert(config: LiteLLMConfig, source: Path, start: datetime,
            trace: tuple[str, list[str], bool] | None = None,
            cache_hit_share: float | None = None) -> tuple[dict, dict[str, str], list[str]]:
    """(scenario, comments by model name, notes) for a LiteLLM config; ``trace`` is (the
    scenario's trace path, the model groups its requests ask for, whether its requests carry
    tags), else a synthetic trace."""
    from sim.pricing.catalog import catalog_installed, find_model

    settings = _settings(config)
    notes = unmapped_notes(config.model_dump(exclude_unset=True))
    alias_setting = settings.get("model_group_alias")
    alias_names = set(alias_setting) if isinstance(alias_setting, dict) else set()
    # Names the trace asks for that an alias serves are not groups of their own (nor a wildcard's).
    requested = [] if trace is None else [name for name in trace[1] if name not in alias_names]
    deployments = _chat_deployments(config, settings, notes, requested)
    if not deployments:
        raise InputError(Problem("no chat deployment to simulate (every model_list entry is a wildcard or "
                                 "not chat traffic; see the notes)", file=str(source)))
    groups: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for d in deployments:
        counts[d.model_name] = counts.get(d.model_name, 0) + 1
    seen: dict[str, int] = {}
    models, comments, limits, order, metrics, tags, group_tag_filtering = {}, {}, {}, {}, {}, {}, {}
    timeouts = []
    for d in deployments:
        group, p = d.model_name, d.litellm_params
        seen[group] = seen.get(group, 0) + 1
        name = group if counts[group] == 1 else f"{group}-{seen[group]}"
        groups.setdefault(group, []).append(name)
        provider, model_name = _provider_and_name(p)
        spec: dict[str, Any] = {"provider": provider}
        catalog_provider = CATALOG_PROVIDERS.get(provider, provider)
        found = None
        own = _own_prices(d)
        for candidate in () if own else (catalog_provider, CATALOG_FALLBACKS.get(catalog_provider)):
            if candidate is None:
                continue
            try:
                found = find_model(candidate, model_name)
                break
            except InputError:
                continue
        if own:
            spec["price"] = own
            comments[name] = f"{p.model}: prices from the config's input/output_cost_per_token"
        elif found is not None:
            spec["price"] = {"catalog": "genai-prices", "provider": found[0].id, "model": model_name}
            comments[name] = (f"{p.model}: prices from genai-prices {found[0].id}/{found[1].id}"
                              + (f" (no {provider} entry)" if found[0].id != catalog_provider else ""))
            if found[1].context_window:
                spec["context_window"] = int(found[1].context_window)
        else:
            spec["price"] = {"input_per_mtok": None, "output_per_mtok": None}
            comments[name] = (f"{p.model}: TODO price unknown to genai-prices; fill in USD per million tokens"
                              if catalog_installed() else
                              f"{p.model}: TODO price: the genai-prices catalog is not installed (pip install -e "
                              "'.[prices]' and import again), or fill in USD per million tokens")
        spec["latency"] = PLACEHOLDER_LATENCY
        spec["quality"] = {"default": 0.0}
        if p.rpm or p.tpm:
            limits[name] = {k: v for k, v in (("rpm", p.rpm), ("tpm", p.tpm)) if v}
        # simple-shuffle weighs a pick as LiteLLM does, from each deployment's weight, rpm and tpm.
        given = {k: float(getattr(p, k)) for k in ("weight", "rpm", "tpm") if getattr(p, k) is not None}
        if given:
            metrics[name] = given
        if p.order is not None:
            order[name] = p.order
        if p.tags:
            tags[name] = [str(t) for t in p.tags]
        if d.model_info.get("enable_tag_filtering") is not None:  # the group's first such setting wins, as in LiteLLM
            group_tag_filtering.setdefault(group, bool(d.model_info["enable_tag_filtering"]))
        if p.timeout is not None:
            timeouts.append(p.timeout)
        models[name] = spec

    problems: list[str] = []
    fallbacks = _group_map(settings.get("fallbacks"), "fallbacks", problems)
    cw_groups = _group_map(settings.get("context_window_fallbacks"), "context_window_fallbacks", problems)
    for label, mapping in (("fallbacks", fallbacks), ("context_window_fallbacks", cw_groups)):
        for group, targets in mapping.items():
            for g in [group] + targets:
                if g not in groups:
                    problems.append(f"{label}: unknown model group '{g}' (groups: {', '.join(groups)})")
    strategy_name = settings.get("routing_strategy", "simple-shuffle")
    if strategy_name not in STRATEGIES:
        problems.append(f"routing_strategy '{strategy_name}' is not one routesim knows "
                        f"({', '.join(STRATEGIES)})")
    if problems:
        raise InputError([Problem(m, file=str(source)) for m in problems])

    num_retries = int(settings.get("num_retries", LITELLM_NUM_RETRIES) or 0)
    chain = 1 + max((len(v) for v in fallbacks.values()), default=0)
    router: dict[str, Any] = {
        "timeout_s": float(settings.get("timeout") or settings.get("request_timeout")
                           or max(timeouts, default=LITELLM_TIMEOUT_S)),
        "max_attempts": min(MAX_ATTEMPTS, chain * (1 + num_retries)),
        "health": None,
        "retry": {"on_outcomes": _RETRY_OUTCOMES, "reroute": True},
    }
    if chain * (1 + num_retries) > MAX_ATTEMPTS:
        notes.append(f"num_retries {num_retries} over {chain} group(s) makes {chain * (1 + num_retries)} attempts; "
                     f"routesim stops at {MAX_ATTEMPTS}")
    if not settings.get("disable_cooldowns"):
        cooldown: dict[str, Any] = {"cooldown_s": float(settings.get("cooldown_time") or LITELLM_COOLDOWN_S)}
        if settings.get("allowed_fails") is not None:
            cooldown["allowed_fails"] = int(settings["allowed_fails"])
        single = {members[0]: bool(fallbacks.get(group)) for group, members in groups.items() if len(members) == 1}
        if single:
            cooldown["single_deployment"] = single
        router["cooldown"] = cooldown
    if config.litellm_settings.get("cache"):
        router["response_cache"] = {"hit_share": cache_hit_share or 0.0}
        if cache_hit_share is None:
            notes.append("cache: true -> router.response_cache with hit_share 0: set it to the share of cache hits "
                         "in your proxy's logs (or import with --cache-hit-share); until then every request "
                         "reaches a deployment and the simulated costs are an upper bound")
    if cw_groups:
        router["context_window_fallbacks"] = {d: [t for g in targets for t in groups[g]]
                                              for group, targets in cw_groups.items() for d in groups[group]}
    policy: dict[str, Any] = {"kind": "litellm-router", "groups": groups, "strategy": STRATEGIES[strategy_name],
                              "num_retries": num_retries}
    if metrics and policy["strategy"] == "simple-shuffle":
        policy["litellm_metrics"] = metrics
    if limits and policy["strategy"] == "usage-based":
        policy["limits"] = limits
    if order:
        policy["order"] = order
    if fallbacks:
        policy["fallbacks"] = fallbacks
    aliases = _aliases(settings.get("model_group_alias"), groups, notes)
    if aliases:
        policy["aliases"] = aliases
    policy.update(_tag_routing(settings, tags, group_tag_filtering, trace is not None and trace[2], notes))
    policy["default_group"] = next(iter(groups))
    for name in requested:
        if name not in groups:
            notes.append(f"the trace asks for model group {name!r}, which neither the config nor a wildcard route "
                         f"serves (LiteLLM would refuse it); routesim sends it to {policy['default_group']!r}")
    traffic = {"synthetic": {"duration_s": 3600, "rate_per_s": 1.0, "workloads": {g: 1.0 for g in groups}}}
    scenario = {
        "name": source.stem,
        "description": f"Imported from the LiteLLM config {source.name}.",
        "seed": 1,
        "replications": 5,
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "trace": traffic if trace is None else {"path": trace[0]},
        "models": models,
        "router": router,
        "policies": {"litellm": policy},
        "baseline": "litellm",
    }
    return scenario, comments, notes


def _aliases(given: Any, groups: dict[str, list[str]], notes: list[str]) -> dict[str, str]:
    """LiteLLM's model_group_alias ({alias: group} or {alias: {model: group, hidden: ...}})."""
    aliases = {}
    for alias, target in (given or {}).items() if isinstance(given, dict) else ():
        group = target.get("model") if isinstance(target, dict) else target
        if group in groups:
            aliases[str(alias)] = str(group)
        else:
            notes.append(f"model_group_alias {alias!r} -> {group!r}: no such model group; left out")
    return aliases


def _tag_routing(settings: dict[str, Any], tags: dict[str, list[str]], group_tag_filtering: dict[str, bool],
                 trace_has_tags: bool, notes: list[str]) -> dict[str, Any]:
    """The litellm-router policy's tag rules from the config (empty when tag filtering is off)."""
    router_wide = bool(settings.get("enable_tag_filtering", False))
    if not router_wide and not any(group_tag_filtering.values()):
        if tags:
            notes.append("deployment tags are not used: enable_tag_filtering is off, so LiteLLM ignores them")
        return {}
    rules: dict[str, Any] = {"tags": tags, "tag_filtering": router_wide}
    if group_tag_filtering:
        rules["group_tag_filtering"] = group_tag_filtering
    if settings.get("tag_filtering_match_any") is not None:
        rules["tag_filtering_match_any"] = bool(settings["tag_filtering_match_any"])
    if not trace_has_tags:
        notes.append("tag filtering is on but the trace has no tags column: every request is untagged, so it goes "
                     "to the deployments tagged 'default' (any deployment when none is); give the trace a tags "
                     "column (--trace) to route by tags")
    return rules


# --------------------------------------------------------------------------- writing
def render(scenario: dict, comments: dict[str, str], notes: list[str], source: Path) -> str:
    """The scenario as commented YAML."""
    synthetic = "synthetic" in scenario["trace"]
    head = [f"# Imported by `routesim import litellm {source.name}`.",
            "# TODO before trusting the numbers:"]
    if synthetic:
        head += ["# - trace: the synthetic traffic below sends every model group the same share; replace it with",
                 "#   your traffic (routesim trace import ...; or import again with --trace), whose workload",
                 "#   column names the model group asked for;"]
    head += ["# - latency and quality: placeholders; put in your measurements (see docs/scenario.md);",
             "# - prices marked TODO are unknown to genai-prices (or its catalog, the prices extra, is not",
             "#   installed): routesim validate refuses them until filled in;",
             "# - start: when the simulated traffic begins (catalog prices follow the date and time of day)."]
    head += [f"# - note: {n}" for n in notes]
    body = []
    for key, value in scenario.items():
        if key != "models":
            body.append(yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False).rstrip())
            continue
        body.append("models:")
        for name, spec in value.items():
            body.append(f"  # {comments[name]}")
            body.append(f"  {yaml.safe_dump(name).splitlines()[0]}:")
            for field, v in spec.items():
                text = yaml.safe_dump(v, default_flow_style=True, sort_keys=False).strip()
                if text.endswith("..."):  # a bare scalar
                    text = text[:-3].strip()
                suffix = "  # TODO placeholder" if field in ("latency", "quality") else ""
                body.append(f"    {field}: {text}{suffix}")
    return "\n".join(head) + "\n" + "\n".join(body) + "\n"


def import_litellm(source: Path, out: Path, start: datetime | None = None, trace: Path | None = None,
                   cache_hit_share: float | None = None) -> tuple[int, int, list[str], list[str]]:
    """Write the scenario (simulating ``trace`` if given, whose workloads are the model
    groups asked for; with a response cache answering ``cache_hit_share`` of requests); returns (deployments, model groups, names of models whose price is a
    TODO, the notes on what was not simulated)."""
    source = Path(source)
    config = read_config(source)  # load_yaml refuses a missing or unreadable file
    start = start or datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    traffic = None
    if trace is not None:
        from sim.traces.table import read_trace

        relative = os.path.relpath(Path(trace).resolve(), Path(out).resolve().parent)
        table = read_trace(trace)
        traffic = (relative, table.workloads, table.tags is not None)
    scenario, comments, notes = convert(config, source, start, traffic, cache_hit_share)
    text = render(scenario, comments, notes, source)
    with atomic_file(Path(out), "scenario") as tmp:
        tmp.write_text(text, encoding="utf-8")
    todo = [name for name, spec in scenario["models"].items() if spec["price"].get("input_per_mtok", 0) is None]
    return len(scenario["models"]), len(scenario["policies"]["litellm"]["groups"]), todo, notes
