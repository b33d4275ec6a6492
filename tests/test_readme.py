"""The README's commands work as written (documentation that runs)."""

from __future__ import annotations

import shlex
from pathlib import Path

from conftest import ROOT


def tour_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## A short tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.strip().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("routesim "):
            commands.append(shlex.split(line)[1:])
    return commands


def test_the_tour_runs(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    commands = tour_commands()
    assert len(commands) >= 4
    moved: dict[str, str] = {}  # outputs go to a scratch folder; later commands read them there
    for args in commands:
        for previous, a in zip([""] + args, list(args)):
            if previous in ("--out", "-o", "--png"):
                moved[a] = str(tmp_path / Path(a).name)
        args = [moved.get(a, a) for a in args]
        if args[:2] == ["trace", "import"]:
            if not Path(args[-2]).exists():
                continue  # reads ../shared/data, which a fresh clone may not have
            args[-1] = str(tmp_path / Path(args[-1]).name)
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
