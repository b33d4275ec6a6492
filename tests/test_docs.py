"""Documentation that cannot drift: every scenario field and every metric is documented."""

from __future__ import annotations

import re
import typing

from pydantic import BaseModel

from sim.metrics.registry import METRICS, SHARE, doc_table
from sim.scenario.load import Scenario

from conftest import ROOT


def model_fields(model: type[BaseModel], seen=None) -> set[str]:
    seen = set() if seen is None else seen
    names = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for inner in _models_in(field.annotation):
            if inner not in seen:
                seen.add(inner)
                names |= model_fields(inner, seen)
    return names


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _written_as_a_key(name: str, span: str) -> bool:
    """``name`` as a key in a code span: the span itself (`retry`, `router.retry`), a YAML key
    (`ttft_s: {...}`) or a key of a flow mapping (`{median, p95}`), not a word in prose."""
    key = re.escape(name)
    return bool(re.fullmatch(rf"(?:[\w<>.-]+\.)?{key}", span.strip()) or re.search(rf"(?<![\w-]){key}:", span)
                or re.search(rf"[{{,]\s*{key}\s*[,:}}]", span))


def test_every_scenario_field_is_documented_as_a_key():
    spans = re.findall(r"`([^`]+)`", (ROOT / "docs" / "scenario.md").read_text())
    missing = sorted(name for name in model_fields(Scenario) if not any(_written_as_a_key(name, s) for s in spans))
    assert not missing, f"fields missing from docs/scenario.md: {missing}"
    assert not _written_as_a_key("model", "the model of a request")  # prose does not count


def test_every_metric_is_defined_as_the_registry_says():
    text = (ROOT / "docs" / "metrics.md").read_text()
    for section in ("run", "resilience", "research", "paired"):
        assert doc_table(section) in text, f"docs/metrics.md: the {section} table differs from metric_registry.py"
    # The clipped shares named in prose are the registry's.
    prose = text.split("Shares (", 1)[1].split(")", 1)[0]
    assert set(re.findall(r"`([a-z_0-9]+)`", prose)) == {m.name for m in METRICS if m.bounds == SHARE
                                                         and m.section != "research"}


def test_the_policy_example_in_the_docs_runs(tmp_path, monkeypatch):
    """The 'Your own policy' code of docs/policies.md, loaded by import path."""
    from conftest import read, run_scenario_data, scenario

    text = (ROOT / "docs" / "policies.md").read_text()
    code = text.split("`my_router/policy.py`:", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    package = tmp_path / "site" / "my_router"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "policy.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    data = scenario(replications=1, policies={"mine": {"kind": "my_router.policy:PreferProvider", "provider": "pb"}},
                    baseline="mine")
    requests = read(run_scenario_data(tmp_path, data))
    assert (requests.model == "small").mean() > 0.95  # 'small' is provider pb's model in the test scenario


def test_every_builtin_policy_is_documented():
    from sim.policies import available

    text = (ROOT / "docs" / "policies.md").read_text()
    missing = [kind for kind in available()[0] if f"`{kind}`" not in text]
    assert not missing, f"policies missing from docs/policies.md: {missing}"


def test_the_documented_limits_are_the_codes():
    from sim import limits
    from sim.traces.table import MAX_TEXT_TRACE_BYTES

    text = (ROOT / "docs" / "scenario.md").read_text()
    for value in (limits.MAX_YAML_BYTES, limits.MAX_YAML_NODES, limits.MAX_REPLICATIONS, limits.MAX_REQUESTS,
                  limits.MAX_TOKENS, limits.MAX_SORT_ROWS, int(limits.MAX_PRICE_PER_MTOK),
                  int(limits.MAX_CARBON_G_PER_MTOK)):
        assert f"{value:,}" in text, value
    assert MAX_TEXT_TRACE_BYTES == 1 << 30 and "| 1 GiB" in text
    traces = (ROOT / "traces" / "README.md").read_text()
    assert f"{limits.MAX_TOKENS:,}" in traces and f"{limits.MAX_REQUESTS:,}" in traces


def test_the_ability_table_is_the_sigmoid():
    """docs/scenario.md's table of what an ability means is sigmoid(ability - difficulty)."""
    import math

    text = (ROOT / "docs" / "scenario.md").read_text()
    table = text.split("| ability | at difficulty −1 | 0 | 1 | 2 |", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in table.strip().splitlines()[1:]]
    assert len(rows) == 5
    for ability, *shares in rows:
        for difficulty, share in zip((-1, 0, 1, 2), shares):
            expected = 100 / (1 + math.exp(-(float(ability) - difficulty)))
            assert float(share.strip().rstrip("%")) == round(expected), (ability, difficulty)
