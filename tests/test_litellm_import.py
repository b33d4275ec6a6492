"""`routesim import litellm`: a LiteLLM proxy config in, a scenario that reproduces it out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from conftest import ROOT, read

genai_prices = pytest.importorskip("genai_prices", reason="the prices extra is not installed")

CONFIG = ROOT / "examples" / "litellm" / "config.yaml"
START = datetime(2025, 6, 1, 14, tzinfo=timezone.utc)


def imported(cli, tmp_path, config=CONFIG):
    out = tmp_path / "litellm.yaml"
    result = cli("import", "litellm", config, "-o", out, "--start", "2025-06-01T14:00:00Z")
    return result, out


def test_the_example_config_round_trips_into_a_runnable_scenario(cli, tmp_path):
    result, out = imported(cli, tmp_path)
    assert result.exit_code == 0, result.output
    source = yaml.safe_load(CONFIG.read_text())
    scenario = yaml.safe_load(out.read_text())
    settings = source["router_settings"]
    # One scenario model per deployment; a group of two gets numbered names.
    deployments = source["model_list"]
    assert len(scenario["models"]) == len(deployments)
    names = ["gpt-4o-1", "gpt-4o-2", "claude-sonnet", "gemini-flash"]
    assert list(scenario["models"]) == names
    for name, d in zip(names, deployments):
        params = d["litellm_params"]
        model = scenario["models"][name]
        assert model["provider"] == params["model"].split("/")[0]
        assert "rate_limit" not in model  # LiteLLM's router routes by rpm/tpm; it does not turn calls away
    router = scenario["router"]
    assert router["timeout_s"] == settings["timeout"]
    # Cooldowns always on, as in LiteLLM; the groups of one deployment, and whether they have fallbacks.
    assert router["cooldown"] == {"allowed_fails": settings["allowed_fails"], "cooldown_s": settings["cooldown_time"],
                                  "single_deployment": {"claude-sonnet": True, "gemini-flash": False}}
    assert router["retry"]["reroute"] is True and router["health"] is None
    # num_retries + 1 attempts in each group of the longest chain (gpt-4o, then claude-sonnet).
    assert router["max_attempts"] == 2 * (settings["num_retries"] + 1)
    assert scenario["policies"]["litellm"]["num_retries"] == settings["num_retries"]
    assert scenario["policies"]["litellm"]["limits"] == {
        name: {k: d["litellm_params"][k] for k in ("rpm", "tpm") if k in d["litellm_params"]}
        for name, d in zip(names, deployments) if {"rpm", "tpm"} & set(d["litellm_params"])}
    assert router["context_window_fallbacks"] == {"gpt-4o-1": ["gemini-flash"], "gpt-4o-2": ["gemini-flash"]}
    policy = scenario["policies"]["litellm"]
    assert policy["strategy"] == "usage-based"  # usage-based-routing-v2
    assert policy["groups"] == {"gpt-4o": ["gpt-4o-1", "gpt-4o-2"], "claude-sonnet": ["claude-sonnet"],
                                "gemini-flash": ["gemini-flash"]}
    assert policy["fallbacks"] == {"gpt-4o": ["claude-sonnet"], "claude-sonnet": ["gemini-flash"]}
    assert policy["order"] == {"gpt-4o-2": 2}

    assert cli("validate", out).exit_code == 0
    scenario["replications"] = 1
    scenario["trace"]["synthetic"]["duration_s"] = 600
    out.write_text(yaml.safe_dump(scenario, sort_keys=False))
    run = tmp_path / "run"
    result = cli("run", out, "--out", run)
    assert result.exit_code == 0, result.output
    requests, decisions = read(run), read(run, "decisions")
    # A request names its model group: order 1 first, then order 2, then the group's fallback.
    gpt4o = decisions[requests.workload == "gpt-4o"]
    assert (gpt4o.candidates == "gpt-4o-1>gpt-4o-2>claude-sonnet").mean() > 0.9  # usage picks within an order
    assert (decisions[requests.workload == "gemini-flash"].candidates == "gemini-flash").all()
    # Prices come from the catalog: the run's charge equals genai-prices' own for an answer on gpt-4o-1.
    served = requests[(requests.model == "gpt-4o-1") & (requests.attempts == 1)].head(20)
    assert len(served) == 20
    for row in served.itertuples():
        when = START + timedelta(seconds=row.arrival_s)
        expected = genai_prices.calc_price(genai_prices.Usage(input_tokens=row.input_tokens, output_tokens=row.output_tokens),
                                           "gpt-4o", provider_id="openai", genai_request_timestamp=when).total_price
        assert row.cost_usd == pytest.approx(float(expected), rel=1e-12)


def test_an_unknown_model_gets_a_todo_that_validation_refuses(cli, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model_list": [
        {"model_name": "in-house", "litellm_params": {"model": "openai/my-finetune-v7", "rpm": 10}}]}))
    result, out = imported(cli, tmp_path, config)
    assert result.exit_code == 0 and "TODO: prices unknown to genai-prices for in-house" in result.output
    assert "TODO price unknown to genai-prices" in out.read_text()
    result = cli("validate", out)
    assert result.exit_code == 2 and "models.in-house.price: missing input_per_mtok and output_per_mtok" in result.output


def test_bad_configs_are_reported_with_their_line(cli, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("model_list:\n  - model_name: a\n    litellm_params: {rpm: 5}\n")
    result, _ = imported(cli, tmp_path, config)
    assert result.exit_code == 2 and f"{config}:3: model_list[0].litellm_params.model: required field is missing" in result.output
    config.write_text(yaml.safe_dump({"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/gpt-4o"}}],
                                      "router_settings": {"fallbacks": [{"a": ["nope"]}]}}))
    result, out = imported(cli, tmp_path, config)
    assert result.exit_code == 2 and "unknown model group 'nope'" in result.output and not out.exists()


# --------------------------------------------------------------------------- every key accounted for
#: Keys the importer maps into the scenario; each is checked by a test in this file.
MAPPED_KEYS = {"model_list[].model_name", "model_list[].litellm_params.model", "model_list[].litellm_params.rpm",
               "model_list[].litellm_params.tpm", "model_list[].litellm_params.weight",
               "model_list[].litellm_params.order", "model_list[].litellm_params.timeout",
               "model_list[].model_info.mode", "model_list[].litellm_params.tags",
               "model_list[].model_info.enable_tag_filtering", "litellm_settings.cache",
               "model_list[].model_info.input_cost_per_token", "model_list[].model_info.output_cost_per_token",
               "model_list[].litellm_params.input_cost_per_token", "model_list[].litellm_params.output_cost_per_token"} | {
    f"{section}.{key}" for section in ("router_settings", "litellm_settings")
    for key in ("routing_strategy", "num_retries", "fallbacks", "context_window_fallbacks", "allowed_fails",
                "cooldown_time", "timeout", "request_timeout", "enable_tag_filtering", "tag_filtering_match_any", "disable_cooldowns", "model_group_alias")}
SHIPPED = ["load_balancer.yaml", "azure_config.yaml", "oai_misc_config.yaml", "otel_test_config.yaml",
           "simple_config.yaml"]
#: Two gateways in the shape public LiteLLM gateway configs take (written for these tests).
GATEWAYS = ["team_gateway.yaml", "key_pool_gateway.yaml"]


def keys_of(data, prefix=""):
    """Every key path of a config, down to the leaves (list items as [])."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, (dict, list)) and value and not (isinstance(value, list) and key.endswith("fallbacks")):
                yield from keys_of(value, path)
            else:
                yield path
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, (dict, list)):
                yield from keys_of(item, f"{prefix}[]")
            else:
                yield prefix


def shipped_config(name):
    litellm = pytest.importorskip("litellm", reason="the conformance extra (litellm) is not installed")
    from pathlib import Path

    return Path(litellm.__file__).parent / "proxy" / "example_config_yaml" / name


def is_mapped(key: str) -> bool:
    return any(key == mapped or key.startswith(mapped + ".") for mapped in MAPPED_KEYS)


def config_named(name):
    if name == "routesim's example":
        return CONFIG
    return ROOT / "tests" / "fixtures" / "litellm" / name if name in GATEWAYS else shipped_config(name)


@pytest.mark.parametrize("name", SHIPPED + GATEWAYS + ["routesim's example"])
def test_every_key_of_a_config_is_mapped_or_named_in_the_notes(cli, tmp_path, name):
    config = config_named(name)
    result, out = imported(cli, tmp_path, config)
    assert result.exit_code == 0, result.output
    notes = [line for line in out.read_text().splitlines() if line.startswith("# - note: ")]
    printed = [line for line in result.output.splitlines() if line.startswith("note: ")]
    assert [n.removeprefix("# - note: ") for n in notes] == [p.removeprefix("note: ") for p in printed]
    for key in set(keys_of(yaml.safe_load(config.read_text()))):
        assert is_mapped(key) or any(key in note for note in notes), f"{name}: {key} neither mapped nor noted"


def test_wildcards_serve_the_groups_the_config_names_and_non_chat_deployments_are_skipped(cli, tmp_path):
    config = shipped_config("oai_misc_config.yaml")
    result, out = imported(cli, tmp_path, config)
    assert result.exit_code == 0, result.output
    scenario = yaml.safe_load(out.read_text())
    groups = scenario["policies"]["litellm"]["groups"]
    # context_window_fallbacks [{gpt-5-mini: [gpt-5.5]}]: both served through the '*' route (openai/*).
    assert groups == {"gpt-5-mini-end-user-test": ["gpt-5-mini-end-user-test"], "gpt-5-mini": ["gpt-5-mini"],
                      "gpt-5.5": ["gpt-5.5"]}
    assert scenario["models"]["gpt-5-mini"]["provider"] == "openai"
    assert scenario["router"]["context_window_fallbacks"] == {"gpt-5-mini": ["gpt-5.5"]}
    # No literal '*' deployment, and the batch deployment is not chat traffic.
    assert not any("*" in name or "batch" in name for name in scenario["models"])
    text = out.read_text()
    assert "skipped bedrock/batch-us.anthropic.claude-haiku-4-5-20251001-v1:0" in text and "(mode: batch)" in text
    assert "wildcard route 'anthropic/*'" in text
    # litellm_settings: num_retries 5 over the longest chain; request_timeout 600 is the timeout.
    assert scenario["policies"]["litellm"]["num_retries"] == 5
    assert scenario["router"]["timeout_s"] == 600


def test_a_config_without_any_chat_deployment_is_refused(cli, tmp_path):
    config = tmp_path / "wild.yaml"
    config.write_text("model_list:\n  - {model_name: '*', litellm_params: {model: 'openai/*'}}\n")
    result, _ = imported(cli, tmp_path, config)
    assert result.exit_code == 2 and "no chat deployment" in result.output


def test_wildcard_routes_serve_the_model_names_a_trace_asks_for(cli, tmp_path):
    import pandas as pd

    config = tmp_path / "gateway.yaml"
    config.write_text("model_list:\n"
                      "  - {model_name: chat, litellm_params: {model: openai/gpt-4o}}\n"
                      "  - {model_name: 'anthropic/*', litellm_params: {model: 'anthropic/*'}}\n"
                      "  - {model_name: '*', litellm_params: {model: 'openai/*'}}\n")
    pd.DataFrame({"arrival_s": [0.0, 1.0, 2.0, 3.0], "input_tokens": 100, "output_tokens": 10,
                  "workload": ["chat", "anthropic/claude-sonnet-4-5", "gpt-4o-mini", "anthropic/claude-sonnet-4-5"]}
                 ).to_csv(tmp_path / "trace.csv", index=False)
    out = tmp_path / "scenario" / "litellm.yaml"
    result = cli("import", "litellm", config, "-o", out, "--start", "2025-06-01T14:00:00Z",
                 "--trace", tmp_path / "trace.csv")
    assert result.exit_code == 0, result.output
    scenario = yaml.safe_load(out.read_text())
    assert scenario["trace"] == {"path": "../trace.csv"}  # relative to the scenario, as routesim reads it
    assert scenario["policies"]["litellm"]["groups"] == {
        "chat": ["chat"], "anthropic/claude-sonnet-4-5": ["anthropic/claude-sonnet-4-5"],
        "gpt-4o-mini": ["gpt-4o-mini"]}
    wild = scenario["models"]["anthropic/claude-sonnet-4-5"]
    assert wild["provider"] == "anthropic" and wild["price"]["model"] == "claude-sonnet-4-5"
    assert scenario["models"]["gpt-4o-mini"]["provider"] == "openai"
    run = tmp_path / "run"
    assert cli("run", out, "--out", run, "-r", "1", "--no-report").exit_code == 0
    requests = read(run)
    assert list(requests.sort_values("arrival_s").model) == ["chat", "anthropic/claude-sonnet-4-5", "gpt-4o-mini",
                                                             "anthropic/claude-sonnet-4-5"]


def test_tag_routing_is_imported_and_runs_on_a_tagged_trace(cli, tmp_path):
    """enable_tag_filtering, tag_filtering_match_any, each deployment's tags and a group's own
    model_info.enable_tag_filtering become the policy's tag rules; tag_regex is noted."""
    import pandas as pd

    config = tmp_path / "tags.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [
            {"model_name": "g", "litellm_params": {"model": "openai/gpt-4o", "tags": ["paid"]}},
            {"model_name": "g", "litellm_params": {"model": "openai/gpt-4o-mini", "tags": ["free", "default"],
                                                   "tag_regex": ["^User-Agent: claude-code"]}},
            {"model_name": "k", "litellm_params": {"model": "openai/gpt-4o"},
             "model_info": {"enable_tag_filtering": False}}],
        "router_settings": {"enable_tag_filtering": True, "tag_filtering_match_any": False}}))
    pd.DataFrame({"arrival_s": [0.0, 1.0, 2.0, 3.0], "input_tokens": 100, "output_tokens": 10,
                  "workload": ["g", "g", "g", "k"], "tags": ["paid", "free", "", "paid"]}
                 ).to_csv(tmp_path / "trace.csv", index=False)
    out = tmp_path / "litellm.yaml"
    result = cli("import", "litellm", config, "-o", out, "--start", "2025-06-01T14:00:00Z",
                 "--trace", tmp_path / "trace.csv")
    assert result.exit_code == 0, result.output
    policy = yaml.safe_load(out.read_text())["policies"]["litellm"]
    assert policy["tags"] == {"g-1": ["paid"], "g-2": ["free", "default"]}
    assert policy["tag_filtering"] is True and policy["tag_filtering_match_any"] is False
    assert policy["group_tag_filtering"] == {"k": False}
    assert "model_list[].litellm_params.tag_regex" in result.output
    run = tmp_path / "run"
    assert cli("run", out, "--out", run, "-r", "1", "--no-report").exit_code == 0
    # paid -> the paid deployment; free and untagged -> the default one; group k does not filter.
    assert list(read(run).sort_values("arrival_s").model) == ["g-1", "g-2", "g-2", "k"]


def test_a_tag_filtering_config_without_tags_in_the_trace_says_so(cli, tmp_path):
    config = tmp_path / "tags.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "g", "litellm_params": {"model": "openai/gpt-4o", "tags": ["paid"]}}],
        "router_settings": {"enable_tag_filtering": True}}))
    result, out = imported(cli, tmp_path, config)
    assert result.exit_code == 0, result.output
    assert "the trace has no tags column" in out.read_text()


def test_the_response_cache_becomes_a_hit_share(cli, tmp_path):
    config = tmp_path / "cache.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "g", "litellm_params": {"model": "openai/gpt-4o"}}],
        "litellm_settings": {"cache": True, "cache_params": {"type": "redis", "ttl": 600}}}))
    out = tmp_path / "with.yaml"
    result = cli("import", "litellm", config, "-o", out, "--cache-hit-share", "0.2")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["router"]["response_cache"] == {"hit_share": 0.2}
    assert "litellm_settings.cache_params.type" in result.output  # the backend: named, not simulated
    result, out = imported(cli, tmp_path, config)
    assert yaml.safe_load(out.read_text())["router"]["response_cache"] == {"hit_share": 0.0}
    assert "set it to the share of cache hits" in result.output


def test_the_team_gateway_imports_as_its_settings_say(cli, tmp_path):
    """Tags, aliases, the cache, usage-based limits and retries of a tiered gateway."""
    result, out = imported(cli, tmp_path, config_named("team_gateway.yaml"))
    assert result.exit_code == 0, result.output
    scenario = yaml.safe_load(out.read_text())
    policy = scenario["policies"]["litellm"]
    assert policy["groups"] == {"chat": ["chat-1", "chat-2", "chat-3"], "claude": ["claude"]}  # no embeddings
    assert policy["strategy"] == "usage-based" and policy["num_retries"] == 3
    assert policy["limits"] == {"chat-1": {"rpm": 600, "tpm": 400_000}, "chat-2": {"rpm": 300}, "chat-3": {"rpm": 300}}
    assert policy["aliases"] == {"gpt-4o": "chat", "sonnet": "claude"}
    assert policy["tags"] == {"chat-1": ["free", "default"], "chat-2": ["paid"], "chat-3": ["paid", "eu"]}
    assert policy["tag_filtering"] is True and policy["group_tag_filtering"] == {"claude": False}
    assert scenario["router"]["cooldown"]["allowed_fails"] == 3 and scenario["router"]["cooldown"]["cooldown_s"] == 30
    assert scenario["router"]["timeout_s"] == 90 and scenario["router"]["response_cache"] == {"hit_share": 0.0}
    # (1 group + 1 fallback) x (1 + 3 retries) attempts at most.
    assert scenario["router"]["max_attempts"] == 8


def test_the_key_pool_gateway_imports_as_its_settings_say(cli, tmp_path):
    """Weights across keys, order, a wildcard in the fallback chain, cooldowns off, own prices."""
    result, out = imported(cli, tmp_path, config_named("key_pool_gateway.yaml"))
    assert result.exit_code == 0, result.output
    scenario = yaml.safe_load(out.read_text())
    policy = scenario["policies"]["litellm"]
    assert policy["groups"] == {"flash": ["flash-1", "flash-2"], "pro": ["pro-1", "pro-2"], "local": ["local"],
                                "anthropic/claude-sonnet-4-5": ["anthropic/claude-sonnet-4-5"]}
    assert policy["litellm_metrics"] == {"flash-1": {"weight": 2}, "flash-2": {"weight": 1}}
    assert policy["order"] == {"pro-1": 1, "pro-2": 2}
    assert policy["fallbacks"] == {"flash": ["pro", "local"], "pro": ["anthropic/claude-sonnet-4-5"]}
    assert "cooldown" not in scenario["router"]  # disable_cooldowns
    assert scenario["models"]["local"]["price"] == {"input_per_mtok": 0.0, "output_per_mtok": 0.0}
    assert scenario["router"]["context_window_fallbacks"] == {"flash-1": ["pro-1", "pro-2"],
                                                              "flash-2": ["pro-1", "pro-2"]}
    run = tmp_path / "run"
    assert cli("run", out, "--out", run, "-r", "1", "--no-report").exit_code == 0


def test_an_alias_reaches_its_group(cli, tmp_path):
    import pandas as pd

    pd.DataFrame({"arrival_s": [0.0, 1.0, 2.0], "input_tokens": 100, "output_tokens": 10,
                  "workload": ["gpt-4o", "sonnet", "chat"]}).to_csv(tmp_path / "trace.csv", index=False)
    out = tmp_path / "gw.yaml"
    result = cli("import", "litellm", config_named("team_gateway.yaml"), "-o", out,
                 "--start", "2025-06-01T14:00:00Z", "--trace", tmp_path / "trace.csv")
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    assert cli("run", out, "--out", run, "-r", "1", "--no-report").exit_code == 0
    served = list(read(run).sort_values("arrival_s").model)
    # Untagged requests: the 'default'-tagged chat deployment; the claude group does not filter.
    assert served == ["chat-1", "claude", "chat-1"]


def test_without_the_catalog_the_todo_says_it_is_not_installed(cli, tmp_path, monkeypatch):
    """gpt-5 is in genai-prices, but with the prices extra absent (the module made unimportable)
    its price is a TODO that says so, not "unknown to genai-prices"; a deployment that prices
    itself in the config is no TODO."""
    import sys

    monkeypatch.setitem(sys.modules, "genai_prices", None)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model_list": [
        {"model_name": "smart", "litellm_params": {"model": "openai/gpt-5"}},
        {"model_name": "own", "litellm_params": {"model": "openai/mine", "input_cost_per_token": 1e-6,
                                                 "output_cost_per_token": 2e-6}}]}))
    result, out = imported(cli, tmp_path, config)
    assert result.exit_code == 0, result.output
    assert ("TODO: prices not looked up: the genai-prices catalog is not installed (pip install -e '.[prices]' and "
            "import again) for smart:") in result.output
    text = out.read_text()
    assert "TODO price: the genai-prices catalog is not installed" in text and "unknown to genai-prices;" not in text
