"""The report opens with the decision: the gate's checks (from the last `routesim gate` on the
run, or the scenario's `gates:`), checked against values computed from the tables with pandas;
and it explains itself (no faults said in words, a glossary of what it shows)."""

from __future__ import annotations

import html as html_text
import json
import re

import numpy as np
import pytest
from scipy import stats

from conftest import read, run_scenario_data, scenario

POLICIES = {"static-big": {"kind": "static", "model": "big"},
            "cheap": {"kind": "static", "model": "small", "fallbacks": ["big"]},
            "oracle": {"kind": "oracle"}}


def _paired_savings_interval(out, candidate: str, baseline: str) -> tuple[float, float, float]:
    """(mean, lo, hi) of the per-replication savings, from requests.parquet."""
    cost = read(out).groupby(["policy", "replication"]).cost_usd.sum()
    savings = 1 - cost[candidate] / cost[baseline]
    mean, half = savings.mean(), stats.t.ppf(0.975, len(savings) - 1) * savings.std(ddof=1) / np.sqrt(len(savings))
    return mean, mean - half, mean + half


def _decision_section(html: str) -> str:
    return html.split('<h2 id="decision">', 1)[1].split("<h2>", 1)[0]


@pytest.fixture
def run(tmp_path):
    return run_scenario_data(tmp_path, scenario(replications=3, policies=POLICIES, baseline="static-big"))


def test_a_gate_run_on_the_folder_opens_the_report(run, cli):
    before = (run / "report.html").read_text()
    assert "No rollout gate" in _decision_section(before)
    result = cli("gate", run, "--candidate", "cheap", "--min-savings", "0.5", "--max-quality-drop", "0.02")
    assert result.exit_code == 1, result.output  # 'cheap' saves a lot but answers worse
    record = json.loads((run / "gate.json").read_text())
    assert record["candidate"] == "cheap" and record["baseline"] == "static-big" and record["passed"] is False
    assert record["command"].startswith("routesim gate ") and "--max-quality-drop 0.02" in record["command"]
    checks = {c["name"] + (" answered" if "answered" in c["measured"] else ""): c for c in record["checks"]}
    mean, lo, hi = _paired_savings_interval(run, "cheap", "static-big")
    assert checks["min_savings"]["mean"] == pytest.approx(mean) and checks["min_savings"]["lo"] == pytest.approx(lo)
    assert checks["min_savings"]["passed"] == bool(lo >= 0.5)
    quality = read(run).groupby(["policy", "replication"]).quality.mean()
    drop = quality["static-big"] - quality["cheap"]
    assert checks["max_quality_drop"]["mean"] == pytest.approx(drop.mean())
    assert checks["max_quality_drop"]["passed"] is False and drop.mean() > 0.02
    answered = read(run).query("status == 'ok'").groupby(["policy", "replication"]).quality.mean()
    answered_drop = answered["static-big"] - answered["cheap"]
    assert checks["max_quality_drop answered"]["mean"] == pytest.approx(answered_drop.mean())
    # The report, rewritten by the gate, opens with it: each check, the overall result, the command.
    section = _decision_section((run / "report.html").read_text())
    assert 'data-candidate="cheap" data-passed="false"' in section
    assert "cheap vs static-big: <span class=\"fail\">FAIL</span>" in section
    assert "min_savings (savings vs baseline)" in section
    assert "max_quality_drop (quality drop vs baseline, all requests, failures as 0)" in section
    assert "max_quality_drop (quality drop vs baseline, answered requests only)" in section
    assert f"{lo * 100:.2f}% (lower 95% bound)" in section
    assert "routesim gate" in section
    assert "gate.json" in json.loads((run / "routesim-manifest.json").read_text())["files"]
    md = (run / "report.md").read_text()
    assert md.index("**cheap vs static-big: FAIL**") < md.index("## Static vs manual vs dynamic")
    # A later gate replaces the record (routesim's own file).
    assert cli("gate", run, "--candidate", "cheap", "--min-savings", "0.5").exit_code == 0
    assert json.loads((run / "gate.json").read_text())["passed"] is True
    assert 'data-passed="true"' in _decision_section((run / "report.html").read_text())


def test_a_gate_never_overwrites_a_file_it_did_not_write(run, cli):
    mine = run / "gate.json"
    mine.write_text("my notes\n")
    result = cli("gate", run, "--candidate", "cheap", "--min-savings", "0.5", "--max-quality-drop", "0.02")
    assert result.exit_code == 1  # the verdict stands and sets the exit code
    assert "FAIL (max_quality_drop)" in result.output
    assert "the gate's result was not recorded" in result.output and "gate.json" in result.output
    assert mine.read_text() == "my notes\n"


def test_scenario_gates_without_a_candidate_check_every_deployable_policy(tmp_path):
    data = scenario(replications=3, policies=POLICIES, baseline="static-big", gates={"min_savings": 0.5})
    out = run_scenario_data(tmp_path, data)
    section = _decision_section((out / "report.html").read_text())
    assert "Checks from the scenario's <code>gates:</code> section" in section
    assert re.findall(r'data-candidate="([^"]+)"', section) == ["cheap"]  # not the baseline, not the oracle
    mean, lo, _ = _paired_savings_interval(out, "cheap", "static-big")
    assert f"{mean * 100:.2f}% [{lo * 100:.2f}%" in section


def test_no_faults_is_said_in_words_and_the_glossary_defines_what_is_shown(run):
    from sim.metrics.registry import BY_NAME
    from sim.report.headline import HEADLINE

    html, md = (run / "report.html").read_text(), (run / "report.md").read_text()
    for text in (html, md):
        assert "No faults in this scenario" in text
        assert "Success during faults" not in text  # the all-n/a resilience table is left out
    glossary = html.split('<h2 id="glossary">', 1)[1]
    for metric, _ in HEADLINE:
        definition = BY_NAME[metric].definition.replace("\\|", "|").replace("`", "")
        shown = re.sub(r"</?code>", "", glossary.split(f'id="metric-{metric}"', 1)[1].split("</dd>", 1)[0])
        assert definition in html_text.unescape(shown), metric
    for metric, title in HEADLINE:  # each entry under the column's title, the summary's name beside it
        term = glossary.split(f'id="metric-{metric}">', 1)[1].split("</dt>", 1)[0]
        assert html_text.unescape(term) == f"{title} <code>{metric}</code>", term
        assert f"- **{title}** (`{metric}`): " in md
    assert 'id="metric-pp">pp</dt><dd>percentage points' in glossary and "- **pp**: percentage points" in md
    assert "docs/metrics.md" not in html


def test_a_defence_that_makes_a_policy_worse_is_called_out(tmp_path):
    from sim.report.defence_costs import defence_pairs

    policies = {"static-big": {"kind": "static", "model": "big", "fallbacks": ["small"]},
                # The same policy with a router setting of its own that hurts: answers slower than 1.5 s time out.
                "static-big+tight": {"kind": "static", "model": "big", "fallbacks": ["small"],
                                     "router": {"timeout_s": 1.5, "max_attempts": 1}},
                "cheap": {"kind": "static", "model": "small"}}
    out = run_scenario_data(tmp_path, scenario(replications=3, policies=policies, baseline="static-big"))
    import yaml

    resolved = yaml.safe_load((out / "scenario.resolved.yaml").read_text())
    assert defence_pairs(resolved) == [("static-big+tight", "static-big")]
    success = read(out).assign(ok=lambda f: f.status == "ok").groupby(["policy", "replication"]).ok.mean()
    difference = success["static-big+tight"] - success["static-big"]
    mean, half = difference.mean(), stats.t.ppf(0.975, 2) * difference.std(ddof=1) / np.sqrt(3)
    assert mean + half < 0  # clearly worse, by the tables
    md = (out / "report.md").read_text()
    warning = md.split("**Warnings**", 1)[1].split("\n## ", 1)[0]
    assert "static-big+tight: its own router settings (max_attempts, timeout_s) made it worse than static-big" in warning
    assert f"a paired difference of {mean * 100:.2f}% [{(mean - half) * 100:.2f}%, {(mean + half) * 100:.2f}%]" in warning
    assert md.index("**Warnings**") < md.index("## Resilience")  # beside the headline, not at the end
    assert "cheap:" not in warning  # no twin, no comparison


def test_a_new_run_into_the_folder_drops_the_old_gate(run, cli):
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    assert cli("gate", run, "--candidate", "cheap", "--min-savings", "0.5").exit_code == 0
    assert (run / "gate.json").is_file()
    run_to_folder(load_scenario(run.parent / "scenario.yaml"), run)  # what the gate checked is gone
    assert not (run / "gate.json").exists()
    assert "No rollout gate" in _decision_section((run / "report.html").read_text())


def test_the_outage_run_calls_dynamic_cheaper_per_answer_and_more_available(tmp_path):
    """The issue's case: `routesim run scenarios/outage.yaml --seed 7 -r 10`. Static GPT-5 drops the
    outage's traffic, which costs nothing; per answered request dynamic is cheaper, and the verdict
    says so with the numbers, computed here from requests.parquet."""
    from conftest import ROOT
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    out = tmp_path / "outage"
    run_to_folder(load_scenario(ROOT / "scenarios" / "outage.yaml"), out, seed=7, replications=10, jobs=1)
    requests = read(out).assign(ok=lambda f: f.status == "ok")
    per_run = requests.groupby(["policy", "replication"]).agg(cost=("cost_usd", "sum"), ok=("ok", "sum"),
                                                              success=("ok", "mean"))
    per_answer = per_run.cost / per_run.ok
    savings = 1 - per_answer["dynamic"] / per_answer["static-gpt5"]
    half = stats.t.ppf(0.975, len(savings) - 1) * savings.std(ddof=1) / np.sqrt(len(savings))
    assert savings.mean() - half > 0  # cheaper per answer, clearly
    availability = per_run.success["dynamic"] - per_run.success["static-gpt5"]
    md = (out / "report.md").read_text()
    verdict = md.split("- **dynamic**: ", 1)[1].split("\n", 1)[0]
    assert verdict.startswith(f"Cheaper per answered request than static-gpt5 (savings {savings.mean() * 100:.2f}% "
                              f"[{(savings.mean() - half) * 100:.2f}%, {(savings.mean() + half) * 100:.2f}%])")
    assert f"It answers more requests (availability {per_run.success['dynamic'].mean() * 100:.2f}%, " \
           f"+{availability.mean() * 100:.2f} pp" in verdict
    assert "more expensive" not in verdict.lower()
