"""Issue 10, first part: a run never deletes or overwrites a file it did not write,
never writes where nobody asked, and refuses an output it cannot write before simulating."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess

import pytest

from conftest import scenario, write_scenario

RUN_NAMES = {"requests.parquet", "attempts.parquet", "decisions.parquet", "replications.parquet", "summary.json",
             "summary.csv",
             "faults.csv", "scenario.resolved.yaml"}


def _manifest(out):
    return json.loads((out / "routesim-manifest.json").read_text())["files"]


def test_a_rerun_keeps_the_users_files_in_the_run_folder(cli, tmp_path):
    path = write_scenario(tmp_path, scenario(replications=1))
    out = tmp_path / "out"
    assert cli("run", path, "--out", out).exit_code == 0
    # The user keeps notes, and even the scenario, in the run folder.
    (out / "notes.md").write_text("why we ran this")
    shutil.copy(path, out / "scenario.yaml")
    assert cli("run", out / "scenario.yaml", "--out", out, "--seed", "5").exit_code == 0
    assert (out / "notes.md").read_text() == "why we ran this"
    assert (out / "scenario.yaml").read_text() == path.read_text()
    assert json.loads((out / "summary.json").read_text())["seed"] == 5  # the run was replaced
    listed = set(_manifest(out))
    assert RUN_NAMES | {"report.md", "report.html", "latency_cdf.png"} <= listed
    assert not listed & {"notes.md", "scenario.yaml"}


def test_a_folder_with_a_summary_but_no_manifest_is_not_replaced(cli, tmp_path):
    # Before manifests, a summary.json was taken as proof; the user's files beside it were deleted.
    path = write_scenario(tmp_path, scenario(replications=1))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text('{"mine": true}')
    (out / "notes.txt").write_text("precious")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = cli("run", path, "--out", out)
    assert result.exit_code == 2
    assert f"{out}: is not empty and is not a routesim run (no routesim-manifest.json)" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (out / "requests.parquet").write_bytes(b"an older routesim's table")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = cli("run", path, "--out", out)
    assert result.exit_code == 2
    assert f"{out}: looks like a run of an older routesim, which has no routesim-manifest.json" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_file_of_ours_by_name_but_not_in_the_manifest_is_not_overwritten(cli, tmp_path):
    path = write_scenario(tmp_path, scenario(replications=1))
    out = tmp_path / "out"
    assert cli("run", path, "--out", out, "--no-report").exit_code == 0
    (out / "report.md").write_text("my own report")  # not written by routesim: not in its manifest
    result = cli("run", path, "--out", out)
    assert result.exit_code == 2 and "holds report.md, which routesim did not write" in result.output
    assert (out / "report.md").read_text() == "my own report"
    result = cli("report", out)
    assert result.exit_code == 2 and "holds report.md, which routesim did not write" in result.output
    assert (out / "report.md").read_text() == "my own report"


def test_a_rerun_without_report_removes_the_earlier_runs_report(cli, tmp_path):
    # A report left from the earlier run would describe numbers that are no longer in the folder.
    path = write_scenario(tmp_path, scenario(replications=1))
    out = tmp_path / "out"
    assert cli("run", path, "--out", out).exit_code == 0
    assert cli("run", path, "--out", out, "--no-report").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_NAMES | {"routesim-manifest.json"})
    assert sorted(_manifest(out)) == sorted(RUN_NAMES)
    assert cli("report", out).exit_code == 0  # the report is added later, and listed
    assert {"report.html", "cost_vs_quality.png"} <= set(_manifest(out))


@pytest.mark.parametrize("name", ["/an/absolute/folder", "../../escaped", "..", "a/b", "", ".hidden", "x" * 101])
def test_a_scenario_name_must_be_one_folder_name(cli, tmp_path, monkeypatch, name):
    victim = tmp_path / "an" / "absolute" / "folder"
    victim.mkdir(parents=True)
    (victim / "keep.txt").write_text("keep")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    path = write_scenario(work, scenario(name=name))
    result = cli("run", path)
    assert result.exit_code == 2
    assert f"{path}:1: name:" in result.output
    assert (victim / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in work.iterdir()) == ["scenario.yaml"]  # no reports/ either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["an", "work"]


def test_a_locked_folder_is_refused_untouched(cli, tmp_path):
    path = write_scenario(tmp_path, scenario(replications=1))
    out = tmp_path / "out"
    assert cli("run", path, "--out", out, "--no-report").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)  # what a run in progress holds
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = cli("run", path, "--out", out, "--seed", "3")
        assert result.exit_code == 2
        assert "another routesim process is writing this folder" in result.output
        result = cli("report", out)
        assert result.exit_code == 2 and "another routesim process" in result.output
    finally:
        os.close(fd)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_two_runs_into_one_folder_at_once(tmp_path):
    """Started together, one run writes the folder and the other exits 2 (or runs after it):
    never a traceback, never a partial folder left behind."""
    import sys

    path = write_scenario(tmp_path, scenario(replications=3))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sim", "run", str(path), "--out", str(out), "--no-report"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    assert not any("Traceback" in err for _, err in results)
    if codes == [0, 2]:
        assert any("another routesim process is writing this folder" in err for _, err in results)
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_NAMES | {"routesim-manifest.json"})


def test_an_output_under_a_file_is_refused_before_simulating(cli, tmp_path):
    path = write_scenario(tmp_path, scenario(replications=1))
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    result = cli("run", path, "--out", blocker / "out")
    assert result.exit_code == 2
    assert f"{blocker / 'out'}: cannot create the output folder: Not a directory" in result.output
    result = cli("run", path, "--out", blocker)
    assert result.exit_code == 2 and "exists and is not a folder" in result.output
    assert "Traceback" not in result.output


def _chattr(flag: str, path) -> bool:
    return shutil.which("chattr") is not None and subprocess.run(["chattr", flag, str(path)],
                                                                 capture_output=True).returncode == 0


def test_an_immutable_earlier_run_is_refused_before_simulating(cli, tmp_path):
    path = write_scenario(tmp_path, scenario(replications=1))
    out = tmp_path / "out"
    assert cli("run", path, "--out", out, "--no-report").exit_code == 0
    if not _chattr("+i", out / "summary.json"):
        pytest.skip("chattr +i is not available on this file system")
    try:
        before = (out / "summary.json").read_bytes()
        result = cli("run", path, "--out", out, "--seed", "4", "--no-report")
        assert result.exit_code == 2
        assert f"{out / 'summary.json'}: cannot replace this file of the earlier run: Operation not permitted" \
            in result.output
        assert (out / "summary.json").read_bytes() == before
        assert not [p for p in out.iterdir() if p.name.startswith(".routesim-partial")]
    finally:
        _chattr("-i", out / "summary.json")


def test_an_immutable_output_folder_is_refused(cli, tmp_path):
    path = write_scenario(tmp_path, scenario(replications=1))
    out = tmp_path / "out"
    out.mkdir()
    if not _chattr("+i", out):
        pytest.skip("chattr +i is not available on this file system")
    try:
        result = cli("run", path, "--out", out)
        assert result.exit_code == 2
        assert f"{out}: cannot write in the output folder: Operation not permitted" in result.output
    finally:
        _chattr("-i", out)


def test_replications_on_the_command_line_share_the_scenarios_cap(cli, tmp_path):
    path = write_scenario(tmp_path, scenario())
    result = cli("run", path, "-r", "1000000000", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "1000" in result.output
    assert not (tmp_path / "out").exists()


def test_an_unwritable_figure_path_is_refused_before_reading_the_trace(cli, tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    missing_trace = tmp_path / "absent.csv"  # not read: the figure's path is checked first
    result = cli("trace", "inspect", missing_trace, "--png", blocker / "fig.png")
    assert result.exit_code == 2
    assert f"{blocker / 'fig.png'}: cannot write the figure here: {blocker} is not a folder" in result.output
    result = cli("trace", "inspect", missing_trace, "--png", tmp_path)
    assert result.exit_code == 2 and "is a folder; give a file name for the figure" in result.output


def test_nothing_beside_the_output_folder_is_removed_however_it_is_named(cli, tmp_path):
    # Older versions wrote `.NAME.<random>.partial` beside the output folder, and a rerun removed
    # folders named so that held only files named like routesim's: a user's folder among them.
    path = write_scenario(tmp_path, scenario(replications=1))
    beside = {}
    for name, files in {".out.k3j2.partial": {"requests.parquet": b"half", "latency_cdf.png": b"half"},
                        ".out.mine.partial": {"summary.json": b'{"mine": 1}', "report.md": b"my notes",
                                              "chart.png": b"my chart"},
                        ".out.draft.partial": {"draft.txt": b"not routesim's"}}.items():
        (tmp_path / name).mkdir()
        for file, data in files.items():
            (tmp_path / name / file).write_bytes(data)
            beside[f"{name}/{file}"] = data
    for _ in range(2):  # a first run and a rerun
        assert cli("run", path, "--out", tmp_path / "out", "--no-report").exit_code == 0
    assert {key: (tmp_path / key).read_bytes() for key in beside} == beside


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_manifest_that_names_a_folder_changes_nothing(cli, tmp_path):
    """The manifest lists a folder (edited by hand, or a file replaced by a folder): the rerun
    refuses before simulating, and every file of the earlier run is still there."""
    path = write_scenario(tmp_path, scenario(replications=1))
    out = tmp_path / "out"
    assert cli("run", path, "--out", out, "--no-report").exit_code == 0
    doc = json.loads((out / "routesim-manifest.json").read_text())
    doc["files"].append("mydata")
    (out / "routesim-manifest.json").write_text(json.dumps(doc))
    (out / "mydata").mkdir()
    (out / "mydata" / "precious.csv").write_text("a,b\n1,2\n")
    before = _files(out)
    for command in (("run", path, "--out", out, "--seed", "9", "--no-report"), ("report", out)):
        result = cli(*command)
        assert result.exit_code == 2, result.output
        assert f"{out}: routesim-manifest.json lists mydata, which is a folder" in result.output
        assert _files(out) == before and (out / "mydata" / "precious.csv").read_text() == "a,b\n1,2\n"
    # A file of the run replaced by a folder, the manifest untouched: the same.
    (out / "mydata" / "precious.csv").unlink()
    (out / "mydata").rmdir()
    (out / "routesim-manifest.json").write_text(json.dumps({**doc, "files": doc["files"][:-1]}))
    (out / "faults.csv").unlink()
    (out / "faults.csv").mkdir()
    before = _files(out)
    result = cli("run", path, "--out", out, "--seed", "9", "--no-report")
    assert result.exit_code == 2 and "lists faults.csv, which is a folder" in result.output
    assert _files(out) == before


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB file system of its own (tmpfs), to be filled by the test; skipped where it cannot
    be mounted (mounting needs root, which CI has)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(disk, leave: int = 0) -> None:
    """Fill ``disk`` but for about ``leave`` bytes."""
    free = shutil.disk_usage(disk).free - leave
    with open(disk / "filler", "wb") as f:
        with contextlib.suppress(OSError):
            while free > 0:
                f.write(b"\0" * min(free, 1 << 16))
                free -= 1 << 16


BACKTEST = {"policy": "static-big", "groups": {"big": "g"},
            "logged": {"since": "2025-01-01T00:00:00Z", "until": "2025-01-01T00:10:00Z", "rows": 1200,
                       "requests": 1200, "spend_usd": 1.0, "spend_by_group": {"g": 1.0}, "success_rate": 1.0,
                       "failover_rate": 0.0}}


@pytest.mark.parametrize("command", ["run", "backtest"])
def test_a_full_disk_is_exit_2_and_keeps_the_earlier_run(cli, tmp_path, small_disk, command):
    path = write_scenario(tmp_path, scenario(replications=1, backtest=BACKTEST))
    out = small_disk / "out"
    _fill(small_disk)
    result = cli(command, path, "--out", out, "--no-report" if command == "run" else "-r1")
    assert result.exit_code == 2, result.output
    assert f"{out}: cannot write" in result.output and "No space left on device" in result.output
    assert "Traceback" not in result.output and not out.exists()
    (small_disk / "filler").unlink()
    assert cli(command, path, "--out", out, "--no-report" if command == "run" else "-r1").exit_code == 0
    before = _files(out)
    _fill(small_disk, leave=20_000)  # the rerun's tables no longer fit
    result = cli(command, path, "--out", out, "--seed", "3") if command == "run" else \
        cli(command, path, "--out", out, "-r2")
    assert result.exit_code == 2, result.output
    assert "No space left on device; the earlier files in the folder are as they were" in result.output
    assert _files(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".routesim-partial")]


def test_an_output_folder_under_proc_is_refused_before_simulating(cli, tmp_path):
    path = write_scenario(tmp_path, scenario(replications=1))
    result = cli("run", path, "--out", "/proc/routesim-cannot-be-here")
    assert result.exit_code == 2
    assert "/proc/routesim-cannot-be-here: cannot create the output folder:" in result.output


# --------------------------------------------------------------------------- sweeps and tuning (issue 25)
def _sweep_base(tmp_path, trace_rows=60):
    """A base scenario replaying trace.csv, and a two-cell sweep of it."""
    pd = pytest.importorskip("pandas")
    pd.DataFrame({"arrival_s": [2.0 * i for i in range(trace_rows)], "input_tokens": [400] * trace_rows,
                  "output_tokens": [100] * trace_rows}).to_csv(tmp_path / "trace.csv", index=False)
    data = scenario(replications=2, trace={"path": "trace.csv"})
    write_scenario(tmp_path, data, "base.yaml")
    return _sweep_file(tmp_path, "s")


def _sweep_file(tmp_path, name, **spec):
    import yaml

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": name, "base": "base.yaml",
                                    **(spec or {"grid": {"models.big.price.input_per_mtok": [2.0, 4.0]}})}))
    return path


def test_a_sweep_reruns_its_cells_when_an_input_file_changes_at_the_same_path(cli, tmp_path):
    """The cell key holds the trace's content: a trace rewritten in place (twice the requests)
    is run again, not answered from the old cells."""
    import pandas as pd

    path = _sweep_base(tmp_path, trace_rows=60)
    out = tmp_path / "out"
    assert "2 now, 0 reused" in cli("sweep", path, "--out", out, "-w", "1").output
    assert "0 now, 2 reused" in cli("sweep", path, "--out", out, "-w", "1").output
    first = pd.read_parquet(out / "sweep.parquet")
    _sweep_base(tmp_path, trace_rows=120)  # same path, new content
    result = cli("sweep", path, "--out", out, "-w", "1")
    assert "2 now, 0 reused" in result.output, result.output
    again = pd.read_parquet(out / "sweep.parquet")
    assert (again.requests_mean == 2 * first.requests_mean).all() and (first.requests_mean == 60).all()


def test_a_sweep_refused_for_the_lock_changes_nothing(cli, tmp_path):
    path = _sweep_base(tmp_path)
    out = tmp_path / "out"
    assert cli("sweep", path, "--out", out, "-w", "1").exit_code == 0
    other = _sweep_file(tmp_path, "another")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another sweep is writing the folder
        result = cli("sweep", other, "--out", out, "-w", "1")
    finally:
        os.close(fd)
    assert result.exit_code == 2 and "another routesim process is writing this folder" in result.output
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert json.loads((out / "routesim-sweep.json").read_text())["sweep"] == "s"


@pytest.mark.parametrize("name", ["../../escaped", "..", "a/b", "/abs", ".hidden", "x" * 101])
def test_a_sweep_name_must_be_one_folder_name(cli, tmp_path, monkeypatch, name):
    path = _sweep_base(tmp_path)
    _sweep_file(tmp_path, name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p for p in tmp_path.rglob("*"))
    result = cli("sweep", path, "-w", "1")  # the default folder: reports/sweeps/<name>/
    assert result.exit_code == 2 and "name: must be a plain folder name" in result.output
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_a_tune_whose_policy_is_named_like_a_path_needs_out(cli, tmp_path, monkeypatch):
    data = scenario(replications=2, gates={"min_success_rate": 0.5},
                    policies={"static-big": {"kind": "static", "model": "big"},
                              "../../../x": {"kind": "weighted", "weights": {"cost": 0.1, "quality": 1.0}}},
                    baseline="static-big")
    data["trace"]["synthetic"]["duration_s"] = 120
    path = write_scenario(tmp_path, data, "tune.yaml")
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    result = cli("tune", path, "--policy", "../../../x", "--param", "weights.cost=0.1", "-w", "1")
    assert result.exit_code == 2 and "must be one plain folder name" in result.output and "give --out" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "tune.yaml"] and not list(work.iterdir())
    result = cli("tune", path, "--policy", "../../../x", "--param", "weights.cost=0.1", "-w", "1", "--out", "t")
    assert result.exit_code == 0, result.output
    assert (work / "t" / "tune.md").is_file()


def test_a_sweep_does_not_write_through_a_linked_cells_folder(cli, tmp_path):
    path = _sweep_base(tmp_path)
    out = tmp_path / "out"
    assert cli("sweep", path, "--out", out, "-w", "1").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(out / "cells")
    (out / "cells").symlink_to(elsewhere)
    result = cli("sweep", path, "--out", out, "-w", "1")
    assert result.exit_code == 2 and "cells is a link or a file" in result.output
    assert not list(elsewhere.iterdir())
