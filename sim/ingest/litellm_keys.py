"""Every key of a LiteLLM config, accounted for: ``routesim import litellm``
either maps a key into the scenario (``MAPPED``) or names it in the import's
notes as not simulated, with the reason (``NOT_SIMULATED``, else a generic one).
Nothing is dropped without a word."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Iterator

#: Router settings the importer maps, under router_settings or litellm_settings.
SETTINGS = ("routing_strategy", "num_retries", "fallbacks", "context_window_fallbacks", "allowed_fails",
             "cooldown_time", "timeout", "request_timeout", "enable_tag_filtering", "tag_filtering_match_any", "disable_cooldowns", "model_group_alias")

#: Keys the importer turns into the scenario (dotted paths; ``[]`` stands for any list item).
MAPPED = [
    "model_list[].model_name", "model_list[].litellm_params.model", "model_list[].litellm_params.rpm",
    "model_list[].litellm_params.tpm", "model_list[].litellm_params.weight", "model_list[].litellm_params.order",
    "model_list[].litellm_params.timeout", "model_list[].litellm_params.custom_llm_provider",
    "model_list[].model_info.mode",  # non-chat deployments are skipped, with a note
    "model_list[].litellm_params.tags", "model_list[].model_info.enable_tag_filtering",
    "litellm_settings.cache",  # router.response_cache
    "model_list[].*.input_cost_per_token", "model_list[].*.output_cost_per_token",  # the model's price
    # A setting, whatever lies under it (``fallbacks[].group``, ``model_group_alias.name``), but not a
    # longer name that starts the same (allowed_fails_policy is not allowed_fails).
    *(f"{section}.{k}{rest}" for section in ("router_settings", "litellm_settings") for k in SETTINGS
      for rest in ("", ".*", "[[]]*")),
]

#: (patterns, why routesim does not simulate them); the first match wins.
NOT_SIMULATED: list[tuple[tuple[str, ...], str]] = [
    (("*api_key*", "*api_base*", "*api_version*", "*.aws_*", "*.s3_*", "*vertex_*", "*organization*",
      "*azure_ad*", "*tenant_id*", "*client_id*", "*client_secret*"),
     "credentials and endpoints: they do not change which deployment is picked"),
    (("model_list[].litellm_params.max_retries",),
     "the provider client's own retries inside one call; routesim models the router's retries (num_retries)"),
    (("*stream_timeout*",), "a streaming timeout: routesim applies router.timeout_s to the whole answer"),
    (("*region_name*",), "a deployment's region: set the model's latency block for where it runs"),
    (("*retry_policy*", "*allowed_fails_policy*"),
     "retries and allowed failures per exception type: routesim applies num_retries and allowed_fails to "
     "every error"),
    (("*content_policy_fallbacks*",),
     "content-policy fallbacks: a simulated request has no content, so no provider refuses it for that"),
    (("*enable_pre_call_checks*",),
     "pre-call context-window checks: routesim sends the request and a too-long one fails fast on that "
     "deployment, then goes to the context_window_fallbacks (LiteLLM would skip the deployment instead)"),
    (("*redis*",), "the shared state of several proxy instances: routesim simulates one router"),
    (("model_list[].rpm", "model_list[].tpm"),
     "rpm/tpm outside litellm_params: LiteLLM's router does not read them there"),
    (("*tag_regex*", "*tag_routing_prefix*", "*allow_fail_open*"),
     "tag routing by request headers, tag prefixes and fail-open: a trace carries a request's tags, not its "
     "headers, keys or teams"),
    (("*tags*",), "tags outside a deployment's litellm_params: they do not route requests"),
    (("litellm_settings.cache_params*", "*cache_responses*", "*caching*"),
     "the response cache's backend and keys: routesim answers the share of requests router.response_cache "
     "says, whatever the backend"),
    (("model_list[].model_info*",), "deployment metadata (ids, capabilities): no effect on routing"),
    (("*callback*", "*langfuse*", "*verbose*", "*log*", "*prometheus*", "*otel*", "*metrics*", "*alert*"),
     "logging, metrics and alerting: no effect on routing"),
    (("general_settings*",), "proxy server settings (auth, database, UI): no effect on routing"),
    (("guardrails*",), "guardrails check content, which a simulated request has none of"),
    (("environment_variables*",), "the proxy's process environment"),
    (("*drop_params*",), "request parameter handling: no effect on routing"),
    (("*budget*", "*team*", "*end_user*", "*max_parallel_requests*"),
     "budgets, teams and per-user limits: routesim simulates one router for all traffic"),
    (("finetune_settings*", "files_settings*", "*batch*"), "fine-tuning, file and batch endpoints: not chat routing"),
]
GENERIC = "routesim has no counterpart for it"


def leaf_paths(data: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of every leaf and every empty mapping in ``data`` (list items as ``[]``)."""
    if isinstance(data, dict):
        if not data and prefix:
            yield prefix
        for key, value in data.items():
            yield from leaf_paths(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list) and any(isinstance(item, (dict, list)) for item in data):
        for item in data:
            yield from leaf_paths(item, f"{prefix}[]")
    else:
        yield prefix


def _is_mapped(path: str) -> bool:
    return any(fnmatchcase(path, pattern) for pattern in MAPPED)


def unmapped_notes(data: dict) -> list[str]:
    """One note per reason, naming every key of ``data`` the scenario does not carry."""
    by_reason: dict[str, list[str]] = {}
    for path in dict.fromkeys(leaf_paths(data)):
        if _is_mapped(path):
            continue
        reason = next((why for patterns, why in NOT_SIMULATED if any(fnmatchcase(path, p) for p in patterns)), GENERIC)
        by_reason.setdefault(reason, []).append(path)
    return [f"not simulated ({reason}): {', '.join(paths)}" for reason, paths in by_reason.items()]
