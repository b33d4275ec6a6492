"""Issue 10: a damaged run folder is bad input (exit 2 naming the file), never the
gate's exit 1 ("a check failed"), so a CI pipeline cannot read corruption as a failed rollout."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import run_scenario_data, scenario
from sim.cli.app import app


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    return run_scenario_data(folder, scenario(replications=3), report=False)


def _summary_edit(edit):
    def apply(folder):
        doc = json.loads((folder / "summary.json").read_text())
        doc = edit(doc)
        (folder / "summary.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return apply


def _drop_metric(doc):
    del doc["policies"]["static-small"]["success_rate"]
    return doc


def _set_mean(value):
    def edit(doc):
        doc["policies"]["static-small"]["cost_usd"]["mean"] = value
        return doc
    return edit


def _short_ci(doc):
    doc["policies"]["static-small"]["cost_usd"]["ci95"] = [1.0]
    return doc


def _nan_text(doc):
    return json.dumps(doc).replace('"mean": ' + json.dumps(doc["policies"]["static-small"]["cost_usd"]["mean"]),
                                   '"mean": NaN', 1)


def _truncate(name):
    def damage(folder):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return damage


def _drop_column(name, column):
    def damage(folder):
        table = pq.read_table(folder / name)
        pq.write_table(table.drop_columns([column]), folder / name)
    return damage


CASES = {
    "truncated requests.parquet": (_truncate("requests.parquet"),
                                   "requests.parquet: damaged run file: cannot read it as Parquet"),
    "requests.parquet not Parquet": (lambda f: (f / "requests.parquet").write_text("policy,cost\n"),
                                     "requests.parquet: damaged run file: cannot read it as Parquet"),
    "a dropped column": (_drop_column("requests.parquet", "cost_usd"),
                         "requests.parquet: damaged run file: missing column(s) cost_usd"),
    "truncated replications.parquet": (_truncate("replications.parquet"),
                                       "replications.parquet: damaged run file: cannot read it as Parquet"),
    "a dropped metric column": (_drop_column("replications.parquet", "cost_usd"),
                                "replications.parquet: damaged run file: missing column(s) cost_usd"),
    "summary.json is []": (_summary_edit(lambda d: []), "summary.json: damaged run file:"),
    "a deleted metric": (_summary_edit(_drop_metric), "missing metric(s) success_rate"),
    "a deleted baseline": (_summary_edit(lambda d: {k: v for k, v in d.items() if k != "baseline"}),
                           "summary.json: baseline: damaged run file: required field is missing"),
    "a baseline that is not a policy": (_summary_edit(lambda d: {**d, "baseline": "gone"}),
                                        "baseline 'gone' is not among the policies"),
    '"mean": "abc"': (_summary_edit(_set_mean("abc")),
                      "summary.json: policies.static-small.cost_usd.mean: damaged run file:"),
    "a one-element ci95": (_summary_edit(_short_ci), "summary.json: policies.static-small.cost_usd.ci95"),
    "NaN in summary.json": (_summary_edit(_nan_text), "policies.static-small.cost_usd.mean: damaged run file: "
                                                      "must be a finite number"),
    "summary.json not JSON": (lambda f: (f / "summary.json").write_text("{"), "summary.json: damaged run file:"),
    "empty scenario.resolved.yaml": (lambda f: (f / "scenario.resolved.yaml").write_text(""),
                                     "scenario.resolved.yaml: damaged run file: empty, or not a YAML mapping"),
    "invalid scenario.resolved.yaml": (lambda f: (f / "scenario.resolved.yaml").write_text("a: [\n"),
                                       "scenario.resolved.yaml: damaged run file: not valid YAML"),
    "faults.csv empty": (lambda f: (f / "faults.csv").write_text(""), "faults.csv: damaged run file"),
    "gates that are not numbers": (lambda f: (f / "scenario.resolved.yaml").write_text(
        (f / "scenario.resolved.yaml").read_text() + "gates: {min_savings: abc}\n"),
        "scenario.resolved.yaml: damaged run file: gates: must be a number"),
}


#: Cases that damage a file only one command reads (the gate reads no request table, the report no
#: per-replication table); the rest are damaged for both.
READ_BY = {"truncated requests.parquet": ("report",), "requests.parquet not Parquet": ("report",),
           "a dropped column": ("report",), "faults.csv empty": ("report",),
           "truncated replications.parquet": ("gate",), "a dropped metric column": ("gate",),
           "gates that are not numbers": ("gate",)}


@pytest.mark.parametrize("case, command", [(case, command) for case in CASES
                                           for command in READ_BY.get(case, ("gate", "report"))])
def test_a_damaged_run_folder_is_exit_2_naming_the_file(finished_run, tmp_path, case, command):
    damage, message = CASES[case]
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    damage(folder)
    args = ["gate", str(folder), "--candidate", "static-small", "--min-savings", "0.1"] if command == "gate" \
        else ["report", str(folder)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert message in result.output
    assert str(folder) in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("option, value, message", [
    ("--min-savings", "nan", "--min-savings nan: must be a finite number"),
    ("--max-p95-latency-ratio", "inf", "--max-p95-latency-ratio inf: must be a finite number"),
    ("--min-savings", "20", "--min-savings 20: thresholds are fractions, e.g. 0.2 for 20%"),
    ("--min-success-rate", "99.9", "--min-success-rate 99.9: thresholds are fractions, e.g. 0.2 for 20%"),
    ("--max-quality-drop", "-0.1", "--max-quality-drop -0.1: must be >= 0"),
])
def test_thresholds_that_cannot_mean_what_was_meant_are_exit_2(cli, finished_run, option, value, message):
    result = cli("gate", finished_run, "--candidate", "static-small", option, value)
    assert result.exit_code == 2 and message in result.output


def test_an_accepted_cost_rise_is_a_valid_threshold(cli, finished_run):
    # static-small is far cheaper than static-big: savings of about 90% pass a -10% floor.
    result = cli("gate", finished_run, "--candidate", "static-small", "--min-savings", "-0.1")
    assert result.exit_code == 0, result.output
