"""report.html and report.md: right (numbers equal summary.json), self-contained, rebuildable, and they open in a browser."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sim.metrics.registry import BY_NAME
from sim.report.headline import HEADLINE

from conftest import open_in_chromium, run_scenario_data, scenario

FAULTY = dict(replications=3, events=[{"kind": "outage", "model": "big", "start_s": 200, "end_s": 350}],
              policies={"static-big": {"kind": "static", "model": "big"},
                        "manual": {"kind": "manual", "routes": {"chat": "small", "code": "big"}, "fallbacks": ["big"]},
                        "dynamic": {"kind": "weighted", "weights": {"cost": 0.6, "quality": 0.4}},
                        "oracle": {"kind": "oracle"}},
              baseline="static-big")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return run_scenario_data(tmp_path_factory.mktemp("report"), scenario(**FAULTY))


class _Headline(HTMLParser):
    """Collects the headline table's cells: (policy, metric) -> (data attributes, visible text)."""

    def __init__(self):
        super().__init__()
        self.cells, self.images = {}, []
        self._table = self._policy = self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "headline":
            self._table = True
        elif tag == "tr" and self._table:
            self._policy = attrs.get("data-policy")
        elif tag == "td" and self._table and "data-metric" in attrs:
            self._cell = [attrs, ""]
            self.cells[(self._policy, attrs["data-metric"])] = self._cell
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def _numbers_with_step(text: str) -> list[tuple[float, float]]:
    """Each number a reader sees in a cell, as (value, unit of its last digit): "$1,234.56",
    "19.48%" (read as 0.1948) or "+0.0312"; parsed here, not by the report's formatter."""
    out = []
    for match in re.finditer(r"([+-]?)\$?([0-9][0-9,]*)(?:\.([0-9]+))?(%?)", text):
        sign, whole, frac, pct = match.groups()
        value = float(whole.replace(",", "") + ("." + frac if frac else "")) * (-1 if sign == "-" else 1)
        step = 10.0 ** -len(frac or "")
        if pct:
            value, step = value / 100, step / 100
        out.append((value, step))
    return out


def test_every_headline_number_equals_summary_json(run):
    summary = json.loads((run / "summary.json").read_text())
    parser = _Headline()
    parser.feed((run / "report.html").read_text())
    checked = 0
    for policy, metrics in summary["policies"].items():
        for metric, _ in HEADLINE:
            attrs, text = parser.cells[(policy, metric)]
            value = metrics[metric]
            for key, number in (("data-mean", value["mean"]), ("data-lo", value["ci95"][0]),
                                ("data-hi", value["ci95"][1])):
                assert (attrs[key] == "" and number is None) or float(attrs[key]) == number, (policy, metric, key)
            paired = BY_NAME[metric].section == "paired"
            never = metrics["never_recovered_share"]["mean"]
            if paired and policy == summary["baseline"]:
                assert text.strip() == "—"
            elif metric == "time_to_failover_s" and (never is None or never == 1.0):
                # No recovery in any fault: the words, the number (the faults' length) in the data attributes.
                assert text.strip() == ("no faults" if never is None else "never"), (policy, text)
            else:
                if metric == "time_to_failover_s" and never > 0:
                    assert text.endswith(f"({never:.0%} of faults never)"), text
                    text = text.rsplit(" (", 1)[0]  # what the reader sees is the summary's value, read back from the text
                expected = [value["mean"]] + ([] if value["ci95"][0] is None else list(value["ci95"]))
                shown = _numbers_with_step(text)
                assert len(shown) == len(expected), (policy, metric, text)
                for (number, step), truth in zip(shown, expected):
                    assert abs(number - truth) <= step / 2 * (1 + 1e-9), (policy, metric, text, truth)
                checked += 1
    assert checked >= len(summary["policies"]) * (len(HEADLINE) - 5)
    # Self-contained: every figure is embedded, nothing is fetched.
    assert len(parser.images) == 6 and all(src.startswith("data:image/png;base64,") for src in parser.images)
    html = (run / "report.html").read_text()
    assert not re.search(r"(src|href)=\"https?://", html)


def test_the_report_says_what_matters(run):
    html = (run / "report.html").read_text()
    md = (run / "report.md").read_text()
    for text in (html, md):
        assert "Static vs manual vs dynamic" in text
        assert "oracle (upper bound, unreachable)" in text
        assert "outage of big 200–350 s" in text  # the per-fault table
        assert "routesim run scenario.resolved.yaml" in text
        assert "Sample of decisions" in text and "weighted" in text  # a policy's reason is shown
    # One verdict per policy, naming the baseline it compares with.
    assert md.count("- **") >= 4 and "than static-big (savings" in md


def test_report_rebuilds_the_same_files(run, cli, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    for name in ("report.html", "report.md", "cost_vs_quality.png"):
        (copy / name).unlink()
    result = cli("report", copy)
    assert result.exit_code == 0, result.output
    for name in ("report.html", "report.md", "cost_vs_quality.png", "traffic_share.png"):
        assert (copy / name).read_bytes() == (run / name).read_bytes(), name
    assert cli("report", tmp_path / "nothing-here").exit_code == 2


def test_the_html_opens_in_headless_chromium(run, tmp_path):
    shot = tmp_path / "report.png"
    problems, (images,) = open_in_chromium(run / "report.html",
                                           ["[...document.images].map(i => i.complete && i.naturalWidth > 0)"], shot)
    assert problems == []
    assert len(images) == 6 and all(images)
    from PIL import Image

    pixels = Image.open(shot).convert("L")
    low, high = pixels.getextrema()
    assert high - low > 100 and pixels.size[1] > 2000  # not blank, and the whole report rendered


def _m(mean, lo=None, hi=None):
    return {"mean": mean, "ci95": [lo, hi]}


def _summary(**changes) -> dict:
    """A policy's summary entries as the verdict reads them: no change anywhere unless given."""
    entries = {"cost_per_1k_requests_usd": _m(4.0), "cost_per_1k_successes_usd": _m(4.04), "mean_quality": _m(0.8),
               "answered_quality": _m(0.808), "success_rate": _m(0.99), "fault_success_rate": _m(None)}
    for metric in ("savings_vs_baseline", "savings_per_answer_vs_baseline", "availability_delta_vs_baseline",
                   "answered_quality_delta_vs_baseline", "quality_delta_vs_baseline",
                   "latency_p95_change_vs_baseline", "latency_p99_change_vs_baseline"):
        entries[metric] = _m(0.0, 0.0, 0.0)
    entries.update(changes)
    return entries


def test_verdicts_follow_the_confidence_intervals():
    from types import SimpleNamespace

    from sim.report.verdict import verdict

    clear = _summary(savings_vs_baseline=_m(0.2, 0.1, 0.3), savings_per_answer_vs_baseline=_m(0.2, 0.1, 0.3),
                     quality_delta_vs_baseline=_m(-0.05, -0.08, -0.02),
                     answered_quality_delta_vs_baseline=_m(-0.05, -0.08, -0.02))
    unclear = _summary(savings_vs_baseline=_m(0.05, -0.01, 0.11), quality_delta_vs_baseline=_m(0.01, -0.01, 0.03))
    run = SimpleNamespace(summary={"b": _summary(), "clear": clear, "unclear": unclear}, baseline="b",
                          upper_bounds=[])
    assert verdict(run, "clear").startswith("Cheaper than b (savings 20.00% [10.00%, 30.00%] per request")
    assert "its answers are worse" in verdict(run, "clear") and "quality is worse" in verdict(run, "clear")
    assert verdict(run, "unclear").startswith("No clear cost difference (savings 5.00%")
    assert "answers about as many requests" in verdict(run, "unclear")
    assert "quality is not clearly different" in verdict(run, "unclear")
    assert "no clear change in p95 or p99 latency" in verdict(run, "unclear")
    assert verdict(run, "b").startswith("The baseline")


def test_a_policy_that_answers_more_and_is_cheaper_per_answer_is_not_called_more_expensive():
    """The outage case: the baseline drops a third of its traffic, which costs nothing, so per
    request the candidate looks dearer; per answered request (what decides when availability
    differs) it is cheaper, and the verdict says so with the split quality and the latency."""
    from types import SimpleNamespace

    from sim.report.verdict import verdict

    # By hand: baseline $3.00/1k requests at 2/3 answered = $4.50/1k answered; candidate $3.70/1k
    # requests, all answered = $3.70/1k answered: 1 − 3.70/3.00 = −23.3% per request, 1 − 3.70/4.50
    # = +17.8% per answer.
    candidate = _summary(success_rate=_m(1.0), savings_vs_baseline=_m(1 - 3.70 / 3.00, -0.25, -0.21),
                         savings_per_answer_vs_baseline=_m(1 - 3.70 / 4.50, 0.16, 0.19),
                         availability_delta_vs_baseline=_m(1 / 3, 0.33, 0.34),
                         answered_quality_delta_vs_baseline=_m(-0.04, -0.05, -0.03),
                         quality_delta_vs_baseline=_m(0.27, 0.26, 0.28),
                         latency_p99_change_vs_baseline=_m(0.49, 0.40, 0.58))
    run = SimpleNamespace(summary={"static": _summary(success_rate=_m(2 / 3)), "dynamic": candidate},
                          baseline="static", upper_bounds=[])
    text = verdict(run, "dynamic")
    assert text.startswith("Cheaper per answered request than static (savings 17.78% [16.00%, 19.00%]), which "
                           "decides because the two answer different shares of the traffic")
    assert "per request it costs more (savings -23.33% [-25.00%, -21.00%]) only because it answers more" in text
    assert "more expensive" not in text.lower()
    assert "It answers more requests (availability 100.00%, +33.33 pp [+33.00, +34.00])" in text
    assert "its answers are worse (quality of answered requests Δ -0.0400" in text
    assert "p99 latency slower by 49.00%" in text and "p95" not in text


def test_workloads_whose_quality_falls_past_the_gate_are_flagged_whatever_the_mean():
    from types import SimpleNamespace

    import pandas as pd

    from sim.report.verdict import verdict, workload_drops

    def workloads(support):
        return pd.DataFrame({"mean_quality": [0.90, support]}, index=["chat", "support"])

    run = SimpleNamespace(
        summary={"b": _summary(), "c": _summary(quality_delta_vs_baseline=_m(-0.01, -0.015, -0.005))},
        baseline="b", upper_bounds=[],
        series={"b": SimpleNamespace(workloads=workloads(0.929)), "c": SimpleNamespace(workloads=workloads(0.871))})
    assert workload_drops(run, "c", 0.02) == ["support 0.929 → 0.871 (−0.058)"]
    assert workload_drops(run, "c", 0.06) == [] and workload_drops(run, "c", None) == []
    assert "Quality falls by more than the gate's 0.02 in: support 0.929 → 0.871 (−0.058)" in verdict(run, "c", 0.02)


def test_no_report_then_report_later(cli, tmp_path):
    from conftest import write_scenario

    path = write_scenario(tmp_path, scenario(replications=1))
    out = tmp_path / "run"
    result = cli("run", path, "--out", out, "--no-report")
    assert result.exit_code == 0 and "report.html" not in result.output
    assert (out / "summary.json").exists() and not (out / "report.html").exists()
    assert cli("report", out).exit_code == 0
    assert (out / "report.html").exists() and (out / "traffic_share.png").exists()


def test_report_md_shows_markup_in_names_as_text(tmp_path):
    # Names come from user files: a policy (YAML key) and a workload (trace column).
    from conftest import run_scenario_data, scenario

    data = scenario(replications=1)
    data["trace"]["synthetic"]["workloads"] = {"<svg onload=alert(1)>": 1.0}
    data["policies"] = {"<script>alert(1)</script>": {"kind": "static", "model": "big"},
                        "pipe|name": {"kind": "static", "model": "small"}}
    data["baseline"] = "<script>alert(1)</script>"
    out = run_scenario_data(tmp_path, data)
    markdown = (out / "report.md").read_text()
    assert "<script" not in markdown and "<svg" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown and "&lt;svg onload=alert(1)&gt;" in markdown
    assert "pipe\\|name" in markdown  # a table cell is not split by a name
    html = (out / "report.html").read_text()
    assert "<script>alert(1)" not in html and "<svg onload" not in html


def test_without_faults_the_resilience_section_says_who_still_failed_over(tmp_path):
    """No fault scheduled, but big fails 5% of its attempts at random: the policy with a fallback
    fails over on the share of requests the requests table says (pandas; the mean over
    replications), and the page says so
    instead of "nothing to fail over from"; the one without a fallback is not listed."""
    import pandas as pd

    data = scenario(replications=2, policies={"static-big": {"kind": "static", "model": "big"},
                                              "big-then-small": {"kind": "static", "model": "big",
                                                                 "fallbacks": ["small"]}},
                    baseline="static-big")
    data["models"]["big"]["error_rate"] = 0.05
    data["router"] = {"timeout_s": 60, "max_attempts": 2}
    out = run_scenario_data(tmp_path, data)
    requests = pd.read_parquet(out / "requests.parquet")
    share = requests[requests.policy == "big-then-small"].groupby("replication").fallback.mean().mean()
    assert 0.02 < share < 0.08 and not requests[requests.policy == "static-big"].fallback.any()
    for page in ("report.md", "report.html"):
        text = " ".join((out / page).read_text().split())
        assert "nothing to fail over from" not in text
        said = re.search(r"own random errors \(their <?c?o?d?e?>?`?error_rate`?<?/?c?o?d?e?>?\): (.*?)\.(?: |<)", text)
        assert said, page
        listed = re.findall(r"([\w-]+) on ([\d.]+)% of requests", said.group(1))
        assert [name for name, _ in listed] == ["big-then-small"], said.group(1)
        assert float(listed[0][1]) == pytest.approx(share * 100, abs=0.01), (listed, share)


def test_the_page_is_self_contained(run):
    """Forwarded alone, report.html still has everything: no link or image points to another file
    (only anchors, data: URIs and the web), and the resolved scenario is in the page itself, the
    same YAML as the folder's scenario.resolved.yaml."""
    import html as html_module

    import yaml

    page = (run / "report.html").read_text()
    targets = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert targets and all(t.startswith(("#", "data:", "https://", "http://")) for t in targets), \
        [t for t in targets if not t.startswith(("#", "data:", "https://", "http://"))]
    embedded = re.search(r'<pre class="resolved">(.*?)</pre>', page, re.S).group(1)
    assert yaml.safe_load(html_module.unescape(embedded)) == yaml.safe_load((run / "scenario.resolved.yaml").read_text())


def test_a_dollar_column_never_mixes_its_decimals():
    """Costs of $4.48 and $0.9876 per 1k requests in one column: both with four decimals, in the
    report's table and the terminal's; a column of figures all over $1 keeps two."""
    from types import SimpleNamespace

    from sim.report.terminal import comparison_table

    def summary(cost):
        entry = {"mean": 0.5, "ci95": [0.4, 0.6]}
        out = {m: dict(entry) for m in BY_NAME}
        out["cost_per_1k_requests_usd"] = {"mean": cost, "ci95": [cost * 0.9, cost * 1.1]}
        out["cost_per_1k_successes_usd"] = {"mean": cost * 10, "ci95": [cost * 9, cost * 11]}
        return out

    result = SimpleNamespace(policies=["a", "b"], summary={"a": summary(4.48), "b": summary(0.9876)},
                             upper_bounds=[], replications=3, seed=1, knowledge={}, warnings=[], baseline="a",
                             kinds={}, decision_budget_ms=100.0, requests_per_replication=[10])
    table = comparison_table(result)
    assert "$4.4800" in table and "$0.9876" in table  # one column: four decimals for both
    assert "$44.80" in table and "$9.88" in table  # the other column, all over $1: two
