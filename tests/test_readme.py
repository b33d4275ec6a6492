"""The README's commands work as written (documentation that runs)."""

from __future__ import annotations

import json

import shlex
from pathlib import Path

import pandas as pd

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
            if previous in ("--out", "-o", "--png", "--html"):
                # A reader who pastes the tour gets its files under reports/, which .gitignore covers.
                assert a.startswith("reports/"), (args, a)
                moved[a] = str(tmp_path / Path(a).name)
        if args[:2] == ["trace", "import"]:
            assert args[-1].startswith("reports/"), args
        if args[0] == "index":  # the folder the tour's runs went to
            assert args[1] == "reports", args
            args = ["index", str(tmp_path)]
        args = [moved.get(a, a) for a in args]
        if args[:2] == ["trace", "import"]:
            if not Path(args[-2]).exists():  # ../shared/data is not in every clone: a stand-in in its format
                stand_in = tmp_path / Path(args[-2]).name
                stand_in.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                    "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n"
                                    "2023-11-16 18:15:51.2012340,879,4\n")
                args[-2] = str(stand_in)
            args[-1] = str(tmp_path / Path(args[-1]).name)
        result = cli(*args)
        if args[0] == "gate":  # a verdict: 0 when every check passed, 1 when one failed, as gate.json says
            record = json.loads((Path(args[1]) / "gate.json").read_text())
            assert result.exit_code == (0 if record["passed"] else 1), (args, result.output)
        elif args[0] == "tune":  # 0 only with a choice that holds on the fresh seed
            holds = "on a fresh seed: passes every check" in result.output
            assert result.exit_code == (0 if holds else 1), (args, result.output)
        else:
            assert result.exit_code == 0, (args, result.output)
        if args[0] == "run":  # a whole run folder
            out = Path(args[args.index("--out") + 1]) if "--out" in args else ROOT / "reports" / Path(args[1]).stem
            assert (out / "summary.json").is_file() and (out / "routesim-manifest.json").is_file(), args
        if args[:2] == ["trace", "import"]:  # every source row, in order
            source, imported = pd.read_csv(args[-2]), pd.read_parquet(args[-1])
            assert imported.input_tokens.tolist() == source.ContextTokens.tolist(), args
