"""Issue 10, second part: routesim runs only what a scenario names as a policy class,
a policy cannot end the run or change the scenario, and the exit codes say what happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from conftest import ROOT, patience, read, scenario, write_scenario


def _module(folder, name: str, code: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(code), encoding="utf-8")


@pytest.mark.parametrize("kind, what", [("os:system", "is a function, not a policy class"),
                                        ("builtins:print", "is a function, not a policy class"),
                                        ("os:path", "is a module, not a policy class"),
                                        ("builtins:object", "is a class without a route(request, view) method"),
                                        ("sys:maxsize", "is a int, not a policy class")])
def test_an_import_path_that_is_not_a_policy_class_is_never_called(cli, tmp_path, kind, what):
    marker = tmp_path / "PWNED"
    data = scenario()
    data["policies"]["evil"] = {"kind": kind, "command": f"touch {marker}"}
    path = write_scenario(tmp_path, data)
    for command in ("validate", "run"):
        result = cli(command, path, *(["--out", tmp_path / "out"] if command == "run" else []))
        assert result.exit_code == 2, result.output
        assert f"policies.evil.kind: '{kind}' {what}" in result.output
        assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_a_policy_calling_sys_exit_is_a_policy_error_and_the_run_goes_on(cli, tmp_path, monkeypatch):
    _module(tmp_path, "exiting_policy", """
        import sys
        from sim.policies import Decision

        class ExitOnCode:
            def route(self, request, view):
                if request.workload == "code":
                    sys.exit(0)
                return Decision(("small",), "chat goes to small")

            def observe(self, request, outcome):
                sys.exit(0)
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = scenario(router={"timeout_s": 60, "max_attempts": 3, "default_model": "big"})
    data["policies"]["exits"] = {"kind": "exiting_policy:ExitOnCode"}
    path = write_scenario(tmp_path, data)
    out = tmp_path / "out"
    result = cli("run", path, "--out", out, "--no-report")
    assert result.exit_code == 0, result.output
    decisions = read(out, "decisions")
    requests = read(out)
    mine = requests[requests.policy == "exits"].merge(decisions[decisions.policy == "exits"],
                                                      on=["replication", "request_id"])
    code = mine.workload == "code"
    assert code.any() and (~code).any()
    # route() exited on code requests; observe() exited after every request: both are policy errors.
    assert (mine.policy_error[code] == "SystemExit: 0; observe: SystemExit: 0").all()
    assert (mine.policy_error[~code] == "observe: SystemExit: 0").all()
    ok = mine.status == "ok"
    assert set(mine.model[code & ok]) == {"big"} and set(mine.model[~code & ok]) == {"small"}
    # observe() exits too: recorded, and the run still wrote every output.
    assert (out / "summary.json").is_file() and (out / "requests.parquet").is_file()


def test_a_constructor_that_mutates_its_params_changes_nothing_outside(cli, tmp_path, monkeypatch):
    _module(tmp_path, "greedy_policy", """
        from sim.policies import Decision

        class PopsModels:
            def __init__(self, models):
                self.first = models.pop(0)  # mutates the list it was given
                self.rest = models

            def route(self, request, view):
                return Decision((self.first, *self.rest), "first, then the rest")
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = scenario(replications=3)
    data["policies"]["greedy"] = {"kind": "greedy_policy:PopsModels", "models": ["small", "big"]}
    path = write_scenario(tmp_path, data)
    out = tmp_path / "out"
    assert cli("run", path, "--out", out, "--no-report").exit_code == 0
    resolved = yaml.safe_load((out / "scenario.resolved.yaml").read_text())
    assert resolved["policies"]["greedy"]["params"] == {"models": ["small", "big"]}
    decisions = read(out, "decisions")
    # Every replication's policy was built from the list as written, not from what an earlier one left.
    greedy = decisions[decisions.policy == "greedy"]
    assert sorted(greedy.replication.unique()) == [0, 1, 2]
    assert set(greedy.candidates) == {"small>big"}


def test_a_constructor_that_exits_is_bad_input(cli, tmp_path, monkeypatch):
    _module(tmp_path, "exiting_init", """
        import sys

        class ExitsInInit:
            def __init__(self):
                sys.exit(0)

            def route(self, request, view):
                raise AssertionError("never reached")
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = scenario()
    data["policies"]["x"] = {"kind": "exiting_init:ExitsInInit"}
    path = write_scenario(tmp_path, data)
    result = cli("run", path, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "policies.x: cannot construct the policy: SystemExit: 0" in result.output
    assert not (tmp_path / "out").exists()


def _routesim(*args, cwd, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120, **kwargs)


def test_a_bug_of_ours_is_exit_3_with_the_traceback_only_under_debug(tmp_path):
    path = write_scenario(tmp_path, scenario(replications=1))
    # A bug planted in the summary step (no user input can cause it).
    code = ("import sys, sim.metrics.stats as r\n"
            "def broken(*a, **k):\n    raise ZeroDivisionError('planted')\n"
            "r.summarize = broken\nfrom sim.cli.app import main\nsys.argv = ['routesim'] + sys.argv[1:]\nmain()\n")
    for debug in ([], ["--debug"]):
        proc = subprocess.run([sys.executable, "-c", code, *debug, "run", str(path), "--out", str(tmp_path / "out")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 3, proc.stderr
        assert "internal error: this is a bug in routesim" in proc.stderr
        assert ("Traceback" in proc.stderr) == bool(debug)
        assert ("ZeroDivisionError: planted" in proc.stderr) == bool(debug)
        assert not (tmp_path / "out").exists()


def test_debug_keeps_the_exit_code_of_bad_input(tmp_path):
    proc = _routesim("--debug", "validate", tmp_path / "absent.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and proc.stderr.rstrip().endswith(f"{tmp_path / 'absent.yaml'}: file not found")


def test_ctrl_c_prints_one_line_and_writes_nothing(tmp_path):
    path = write_scenario(tmp_path, scenario(replications=200))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "sim", "run", str(path), "--out", str(out)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + patience(60)
    while time.monotonic() < deadline and not any(out.glob(".routesim-partial-*")):  # simulating
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=patience(30))
    except subprocess.TimeoutExpired:  # a hang: its threads' stacks say where
        proc.send_signal(signal.SIGABRT)
        _, stderr = proc.communicate()
        pytest.fail(f"still running {patience(30):.0f} s after Ctrl-C:\n{stderr[-5000:]}")
    assert proc.returncode == 130
    assert stderr.strip().splitlines() == ["interrupted: nothing was written (an earlier run in the output folder "
                                           "is as it was)"]
    assert not out.exists()


def test_an_unknown_kind_lists_plug_ins_without_importing_them(tmp_path):
    # An installed plug-in whose module has a side effect on import.
    site = tmp_path / "site"
    dist = site / "noisy_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: noisy-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[routesim.policies]\nnoisy = noisy_module:Noisy\n")
    marker = tmp_path / "IMPORTED"
    (site / "noisy_module.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Noisy:\n    def route(self, r, v): ...\n")
    data = scenario()
    data["policies"]["typo"] = {"kind": "statik", "model": "big"}
    path = write_scenario(tmp_path, data)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    proc = _routesim("validate", path, cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert "unknown policy kind 'statik'" in proc.stderr and "noisy" in proc.stderr and "static" in proc.stderr
    assert not marker.exists()
    proc = _routesim("policies", cwd=tmp_path, env=env)  # listing the policies does load them: that is its job
    assert proc.returncode == 0 and "noisy" in proc.stdout and marker.exists()


def test_a_broken_plug_in_is_reported_not_hidden(tmp_path):
    site = tmp_path / "site"
    dist = site / "broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[routesim.policies]\nbroken = broken_module:Missing\n"
                                           "notaclass = broken_module:helper\n")
    (site / "broken_module.py").write_text("def helper():\n    pass\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    proc = _routesim("policies", cwd=tmp_path, env=env)
    assert proc.returncode == 0 and "static:" in proc.stdout
    assert "warning: installed plug-in 'broken' cannot be used: broken_module:Missing failed to load: " \
           "AttributeError" in proc.stderr
    assert "warning: installed plug-in 'notaclass' cannot be used: entry point 'notaclass' is a function" in proc.stderr


def test_a_crash_inside_a_built_in_policy_is_our_bug(tmp_path, monkeypatch):
    # A built-in's parameters are validated first, so its constructor failing is a bug of ours: exit 3.
    path = write_scenario(tmp_path, scenario(replications=1))
    code = ("import sys\nfrom sim.policies import static\n"
            "def broken(self, *a, **k):\n    raise KeyError('planted')\n"
            "static.StaticPolicy.__init__ = broken\nfrom sim.cli.app import main\n"
            "sys.argv = ['routesim'] + sys.argv[1:]\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", code, "validate", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "internal error: this is a bug in routesim" in proc.stderr


def test_an_installation_without_its_dependencies_says_so(tmp_path):
    # typer (the command line) and pandas (imported when a command runs) made unimportable.
    for blocked in ("typer", "pandas"):
        scenario_path = ROOT / "scenarios" / "compare.yaml"
        code = (f"import sys\nsys.modules[{blocked!r}] = None\n"
                f"sys.argv = ['routesim', 'validate', {str(scenario_path)!r}]\nfrom sim.cli.app import main\nmain()\n")
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "ROUTESIM_MOVED_TO_VENV": "1"})
        assert proc.returncode == 2, proc.stderr  # an installation problem, not a bug of ours
        assert proc.stderr.strip() == (f"routesim cannot start: the package '{blocked}' is not installed. Install "
                                       "routesim with its dependencies, e.g. python -m venv .venv && . .venv/bin/activate "
                                       "&& pip install -e ."), proc.stderr
