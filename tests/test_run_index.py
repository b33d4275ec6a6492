"""reports/index.html: every run in the folder, newest first, with its gate result and links;
written after a run into reports/ (never elsewhere unasked) and never over a user's file."""

from __future__ import annotations

import os
import re

from conftest import scenario, write_scenario


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-run="([^"]+)"', html)


def test_runs_into_reports_keep_an_index(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = write_scenario(tmp_path, scenario(name="first", replications=2), "first.yaml")
    second = write_scenario(tmp_path, scenario(name="second", replications=2, seed=5), "second.yaml")
    assert cli("run", first).exit_code == 0  # default --out: reports/first
    result = cli("run", second, "--no-report")
    assert result.exit_code == 0 and "updated" in result.output
    reports = tmp_path / "reports"
    os.utime(reports / "first" / "summary.json", (1_000_000_000, 1_000_000_000))  # make 'first' the older one
    assert cli("index", reports).exit_code == 0
    html = (reports / "index.html").read_text()
    assert _rows(html) == ["second", "first"]  # newest first
    assert '<a href="first/report.html">first</a>' in html  # a report to open
    assert '<a href="second/report.html">' not in html  # --no-report: no link to a report that is not there
    assert "2001-09-09" in html  # 'first' as its summary's time says
    row = html.split('data-run="second"', 1)[1].split("</tr>", 1)[0]
    assert "<td>second</td>" in row and '<td class="num">5</td>' in row and '<td class="num">2</td>' in row
    # A gate on a run shows in the index at once (the gate rebuilds it).
    assert cli("gate", reports / "first", "--candidate", "static-small", "--min-savings", "0.5").exit_code == 0
    html = (reports / "index.html").read_text()
    assert 'data-run="first" data-gate="pass"' in html and "PASS: static-small vs static-big" in html
    # A damaged run is listed with what is wrong, not a failure of the whole index.
    (reports / "second" / "summary.json").write_text("{")
    assert cli("index", reports).exit_code == 0
    assert "cannot be read" in (reports / "index.html").read_text()


def test_no_index_is_written_where_it_was_not_asked_for_or_over_a_users_file(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_scenario(tmp_path, scenario(replications=2))
    elsewhere = tmp_path / "mine"
    assert cli("run", path, "--out", elsewhere / "run", "--no-report").exit_code == 0
    assert not (elsewhere / "index.html").exists()  # not reports/, and no index of ours there
    users = tmp_path / "reports"
    users.mkdir()
    (users / "index.html").write_text("<p>my page</p>")
    result = cli("run", path, "--out", users / "run", "--no-report")
    assert result.exit_code == 0  # the run stands
    assert "the index of runs was not updated" in result.output
    assert cli("index", users).exit_code == 2
    assert (users / "index.html").read_text() == "<p>my page</p>"
