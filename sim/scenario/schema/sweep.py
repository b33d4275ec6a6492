"""The sweep file (``routesim sweep SWEEP.yaml``): a base scenario and the
overrides that make each cell."""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from sim.limits import MAX_REPLICATIONS, MAX_SEED
from .common import Strict, one_folder_name

MAX_CELLS = 10_000


class Claim(Strict):
    """A claim about one policy, checked in every run of the sweep: it saves at least
    ``min_savings`` over the scenario's baseline (the lower bound of the 95% interval),
    at most ``max_savings`` (the mean), losing at most ``max_quality_drop`` of quality
    (the interval's lower bound of the change); and no ``rival`` beats it (costs no more
    on average and reaches at least its mean quality)."""

    policy: str
    min_savings: float | None = None
    max_savings: float | None = None
    max_quality_drop: Annotated[float, Field(ge=0)] | None = None
    rivals: list[str] = Field(default_factory=list)
    statement: str = ""  # the claim in words, for the report


class SweepSpec(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    base: str = Field(min_length=1)  # the base scenario, relative to the sweep file
    # Every cell runs with each seed (the same seeds for every cell: common random numbers).
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] | None = None  # default: the base scenario's seed
    replications: Annotated[int, Field(ge=1, le=MAX_REPLICATIONS)] | None = None  # default: the base's
    # field path -> the values it takes; the cells are every combination.
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    # or an explicit list of cells, each {field path: value}.
    cells: list[dict[str, Any]] = Field(default_factory=list)
    claim: Claim | None = None  # checked in every run (sweep.md: where it holds)

    @field_validator("name")
    @classmethod
    def _one_folder_name(cls, value):
        return one_folder_name(value, "reports/sweeps/<name>/")

    @model_validator(mode="after")
    def _one_way_to_give_cells(self):
        if bool(self.grid) == bool(self.cells):
            raise ValueError("give the cells either as grid: {field.path: [values]} or as cells: [{field.path: value}]")
        empty = [path for path, values in self.grid.items() if not values]
        if empty:
            raise ValueError(f"grid: {', '.join(empty)} has no values")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: a seed is listed twice")
        runs = self.cell_count() * len(self.seeds or [0])  # counted from the axes: no cell is built
        if runs > MAX_CELLS:
            raise ValueError(f"{runs:,} runs (cells x seeds): at most {MAX_CELLS:,}; split the sweep")
        return self

    def cell_count(self) -> int:
        return math.prod(len(values) for values in self.grid.values()) if self.grid else len(self.cells)

    def overrides(self) -> list[dict[str, Any]]:
        """Each cell's overrides, in the sweep's order (the grid's last path varies fastest)."""
        if self.cells:
            return [dict(cell) for cell in self.cells]
        paths = list(self.grid)
        return [dict(zip(paths, values)) for values in itertools.product(*self.grid.values())]

    def parameters(self) -> list[str]:
        """The swept field paths, in the order they are first given."""
        return list(dict.fromkeys(path for cell in self.overrides() for path in cell))
