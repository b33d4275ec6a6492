"""Reading back a finished run folder (for ``routesim report`` and ``routesim gate``)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .errors import InputError, Problem


def read_run_files(folder: Path) -> tuple[dict, dict]:
    """(summary.json, scenario.resolved.yaml) of a finished run; InputError when it is not one."""
    folder = Path(folder)
    for name in ("summary.json", "scenario.resolved.yaml", "requests.parquet"):
        if not (folder / name).exists():
            raise InputError(Problem(f"not a finished routesim run (no {name})", file=str(folder)))
    try:
        doc = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        resolved = yaml.safe_load((folder / "scenario.resolved.yaml").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(Problem(f"a run file is damaged: {exc}", file=str(folder))) from None
    return doc, resolved
