"""Every key of a LiteLLM config, accounted for: ``routesim import litellm``
either maps a key into the scenario (``MAPPED``) or names it in the import's
notes as not simulated, with the reason (``NOT_SIMULATED``, else a generic one).
Nothing is dropped without a word."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Iterator

#: Router settings the importer maps, under router_settings or litellm_settings.
SETTINGS = ("routing_strategy", "num_retries", "fallbacks", "context_window_fallbacks", "allowed_fails",
             "cooldown_time", "timeout", "request_timeout")

#: Keys the importer turns into the scenario (dotted paths; ``[]`` stands for any list item).
MAPPED = [
    "model_list[].model_name", "model_list[].litellm_params.model", "model_list[].litellm_params.rpm",
    "model_list[].litellm_params.tpm", "model_list[].litellm_params.weight", "model_list[].litellm_params.order",
    "model_list[].litellm_params.timeout", "model_list[].litellm_params.custom_llm_provider",
    "model_list[].model_info.mode",  # non-chat deployments are skipped, with a note
    *(f"router_settings.{k}*" for k in SETTINGS), *(f"litellm_settings.{k}*" for k in SETTINGS),
]

#: (patterns, why routesim does not simulate them); the first match wins.
NOT_SIMULATED: list[tuple[tuple[str, ...], str]] = [
    (("*api_key*", "*api_base*", "*api_version*", "*.aws_*", "*.s3_*", "*vertex_*", "*organization*",
      "*azure_ad*", "*tenant_id*", "*client_id*", "*client_secret*", "*.input_cost_per_token",
      "*.output_cost_per_token"),
     "credentials, endpoints and per-token cost overrides: they do not change which deployment is picked "
     "(prices come from the price catalog or the scenario)"),
    (("model_list[].litellm_params.max_retries",),
     "the provider client's own retries inside one call; routesim models the router's retries (num_retries)"),
    (("*stream_timeout*",), "a streaming timeout: routesim applies router.timeout_s to the whole answer"),
    (("*region_name*",), "a deployment's region: set the model's latency block for where it runs"),
    (("model_list[].rpm", "model_list[].tpm"),
     "rpm/tpm outside litellm_params: LiteLLM's router does not read them there"),
    (("*tags*", "*tag_filtering*"),
     "tag-based routing: routesim's traces carry no tags, so every request may use every deployment"),
    (("litellm_settings.cache*",),
     "LiteLLM's response cache: every request reaches a deployment (a hit would cost nothing and answer "
     "at once, so the simulated costs are an upper bound)"),
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
