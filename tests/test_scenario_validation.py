"""`routesim validate`: every problem named by file, line and field path; exit 2."""

from __future__ import annotations

import pytest

from conftest import scenario, write_scenario


def problems_of(cli, tmp_path, data_or_text) -> tuple[int, str]:
    if isinstance(data_or_text, str):
        path = tmp_path / "scenario.yaml"
        path.write_text(data_or_text)
    else:
        path = write_scenario(tmp_path, data_or_text)
    result = cli("validate", path)
    return result.exit_code, result.output


def test_valid_scenario_says_ok(cli, tmp_path):
    code, output = problems_of(cli, tmp_path, scenario())
    assert code == 0 and output.startswith("OK:")


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["models"]["big"]["price"].update(input_per_mtok=-1), "models.big.price.input_per_mtok: must be >= 0"),
    (lambda d: d["models"]["big"]["price"].update(output_per_mtok=float("nan")),
     "models.big.price.output_per_mtok: must be a finite number"),
    (lambda d: d["models"]["big"].update(colour="red"), "models.big.colour: unknown key"),
    (lambda d: d["models"]["big"].update(error_rate=1.5), "models.big.error_rate: must be <= 1"),
    (lambda d: d["models"]["big"]["latency"]["ttft_s"].update(p95=0.1), "models.big.latency.ttft_s: p95 (0.1) must be >= median"),
    (lambda d: d["policies"]["static-big"].update(model="gpt-9"), "policies.static-big.model: unknown model 'gpt-9'"),
    (lambda d: d["policies"].update(m={"kind": "manual", "routes": {"chat": "nope"}}), "policies.m.routes.chat: unknown model 'nope'"),
    (lambda d: d["policies"].update(m={"kind": "manual", "routes": {"chat": ["big", "nope"]}}),
     "policies.m.routes.chat[1]: unknown model 'nope'"),
    (lambda d: d["policies"].update(x={"kind": "no-such-policy"}), "policies.x.kind: unknown policy kind 'no-such-policy'"),
    (lambda d: d["policies"].update(w={"kind": "weighted", "weights": {"cost": 0}}), "policies.w.weights: at least one weight must be > 0"),
    (lambda d: d.update(events=[{"kind": "outage", "model": "ghost", "start_s": 0, "end_s": 5}]),
     "events[0].model: unknown model 'ghost'"),
    (lambda d: d.update(events=[{"kind": "outage", "provider": "nobody", "start_s": 0, "end_s": 5}]),
     "events[0].provider: unknown provider 'nobody'"),
    (lambda d: d.update(events=[{"kind": "outage", "model": "big", "start_s": 50, "end_s": 10}]),
     "events[0]: end_s (10) must be after start_s (50)"),
    (lambda d: d.update(events=[{"kind": "meteor", "model": "big"}]), "events[0]: unknown kind 'meteor'"),
    (lambda d: d.update(events=[{"kind": "price", "model": "big", "at_s": -1, "input_per_mtok": 1, "output_per_mtok": 1}]),
     "events[0].at_s: must be >= 0"),
    (lambda d: d.update(baseline="nobody"), "baseline: unknown policy 'nobody'"),
    (lambda d: d["router"].update(default_model="ghost"), "router.default_model: unknown model 'ghost'"),
    (lambda d: d["router"].update(max_attempts=0), "router.max_attempts: must be >= 1"),
    (lambda d: d.update(trace={"path": "missing.csv"}), "trace.path: file not found"),
    (lambda d: d.update(trace={}), "trace: give exactly one of 'path' or 'synthetic'"),
    (lambda d: d.update(models={}), "models: needs at least one entry"),
    (lambda d: d.pop("name"), "name: required field is missing"),
])
def test_each_problem_is_named_with_its_path(cli, tmp_path, mutate, expected):
    data = scenario()
    mutate(data)
    code, output = problems_of(cli, tmp_path, data)
    assert code == 2, output
    assert expected in output
    assert "Traceback" not in output
    assert "scenario.yaml:" in output  # the file, with a line number


def test_every_problem_is_reported_at_once(cli, tmp_path):
    data = scenario()
    data["models"]["big"]["price"]["input_per_mtok"] = -1
    data["models"]["small"]["error_rate"] = 2
    code, output = problems_of(cli, tmp_path, data)
    assert code == 2
    assert "models.big.price.input_per_mtok" in output and "models.small.error_rate" in output


def test_line_numbers_point_at_the_field(cli, tmp_path):
    text = """name: t
trace: {synthetic: {duration_s: 10, rate_per_s: 1}}
models:
  a:
    provider: p
    price:
      input_per_mtok: 1
      output_per_mtok: -3
    latency: {ttft_s: {median: 1, p95: 2}, tokens_per_s: {median: 50, p5: 10}}
    quality: {default: 1}
policies:
  s: {kind: static, model: a}
"""
    code, output = problems_of(cli, tmp_path, text)
    assert code == 2
    assert "scenario.yaml:8: models.a.price.output_per_mtok: must be >= 0 (got -3)" in output


def test_duplicate_model_names_are_rejected(cli, tmp_path):
    text = """name: t
trace: {synthetic: {duration_s: 10, rate_per_s: 1}}
models:
  a: {provider: p, price: {input_per_mtok: 1, output_per_mtok: 1}, latency: {ttft_s: {median: 1, p95: 2}, tokens_per_s: {median: 50, p5: 10}}, quality: {default: 1}}
  a: {provider: q, price: {input_per_mtok: 2, output_per_mtok: 2}, latency: {ttft_s: {median: 1, p95: 2}, tokens_per_s: {median: 50, p5: 10}}, quality: {default: 1}}
policies:
  s: {kind: static, model: a}
"""
    code, output = problems_of(cli, tmp_path, text)
    assert code == 2
    assert "scenario.yaml:5: duplicate key 'a' (first written on line 4)" in output


@pytest.mark.parametrize("text, expected", [
    ("name: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "a scenario must be a YAML mapping"),
    ("", "a scenario must be a YAML mapping"),
])
def test_malformed_yaml_is_a_clear_error(cli, tmp_path, text, expected):
    code, output = problems_of(cli, tmp_path, text)
    assert code == 2 and expected in output and "Traceback" not in output


def test_missing_file(cli, tmp_path):
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "file not found" in result.output


def test_empty_trace_file_is_rejected(cli, tmp_path):
    (tmp_path / "empty.csv").write_text("arrival_s,input_tokens,output_tokens\n")
    code, output = problems_of(cli, tmp_path, scenario(trace={"path": "empty.csv"}))
    assert code == 2 and "the trace has no requests" in output


def test_trace_workloads_must_have_abilities(cli, tmp_path):
    data = scenario()
    data["models"]["big"]["quality"] = {"chat": 2.0}  # no 'code', no default
    code, output = problems_of(cli, tmp_path, data)
    assert code == 2 and "models.big.quality: no ability for workload 'code' and no 'default'" in output


def test_policy_params_inline_and_under_params(cli, tmp_path):
    data = scenario(policies={"a": {"kind": "static", "params": {"model": "big"}},
                              "b": {"kind": "static", "model": "small"}}, baseline="a")
    code, output = problems_of(cli, tmp_path, data)
    assert code == 0, output
    data = scenario(policies={"a": {"kind": "static", "params": {"model": "big"}, "model": "small"}}, baseline="a")
    code, output = problems_of(cli, tmp_path, data)
    assert code == 2 and "model given both inline and under 'params'" in output


def test_manual_table_must_cover_the_trace_workloads(cli, tmp_path):
    data = scenario(policies={"m": {"kind": "manual", "routes": {"chat": "big"}}}, baseline="m")
    code, output = problems_of(cli, tmp_path, data)
    assert code == 2 and "policies.m.routes: no route for workload(s) code of the trace, and no 'default'" in output
    data["policies"]["m"]["default"] = "small"
    code, output = problems_of(cli, tmp_path, data)
    assert code == 0, output
