"""What every routesim command shares: how bad input is reported (its problems on
stderr, exit 2, the traceback first under ``--debug``) and how warnings are."""

from __future__ import annotations

import traceback
from contextlib import contextmanager
from typing import Iterator

import typer

from sim.errors import InputError

state = {"debug": False}  # set by the --debug option of the main command


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input -> its problems on stderr and exit 2 (with the traceback first under --debug)."""
    try:
        yield
    except InputError as exc:
        if state["debug"]:
            traceback.print_exc()
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None


def warn(problems) -> None:
    for problem in problems:
        typer.echo(f"warning: {problem}", err=True)
