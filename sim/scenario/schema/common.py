"""What every scenario section shares: strict models (unknown keys, non-finite
numbers, booleans or quoted strings as numbers are errors) and number types."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.distributions import Lognormal
from sim.errors import format_number
from sim.limits import MAX_CARBON_G_PER_MTOK, MAX_PRICE_PER_MTOK

#: One folder name: a scenario's or sweep's name makes the default output folder
#: (reports/<name>/, reports/sweeps/<name>/), so a name must not be a path.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SAFE_NAME_RULE = "letters, digits, '-', '_' and '.', starting with a letter or digit, at most 100 characters"


def one_folder_name(value: str, folder: str) -> str:
    """``value`` if it is one plain folder name, else ValueError saying it names ``folder``."""
    if not SAFE_NAME.fullmatch(value):
        raise ValueError(f"must be a plain folder name (it names the default folder {folder}): {SAFE_NAME_RULE} "
                         f"(got {value!r})")
    return value

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
# Bounded so that costs and carbon summed over a run stay finite numbers.
PricePerMtok = Annotated[float, Field(ge=0, le=MAX_PRICE_PER_MTOK)]
CarbonPerMtok = Annotated[float, Field(ge=0, le=MAX_CARBON_G_PER_MTOK)]


class Strict(BaseModel):
    # strict: a boolean or a quoted string is not a number ('1.0' in YAML is text); an
    # integer is still a valid float. Fields that convert on purpose say strict=False.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=True)


def require_order(model: BaseModel, low: str, high: str, strict: bool = False) -> None:
    """Raise unless ``model.<low> <= model.<high>`` (``<`` when strict), naming both fields."""
    lo, hi = getattr(model, low), getattr(model, high)
    if hi < lo or (strict and hi == lo):
        relation = "must be after" if strict else "must be >="
        raise ValueError(f"{high} ({format_number(hi)}) {relation} {low} ({format_number(lo)})")


class LognormalSpec(Strict):
    """A lognormal written as its median and one other percentile: the field named by
    ``tail`` (p95 of a latency or token count, p5 of a rate's slow tail, p90 of a duration)."""

    tail: ClassVar[str]
    percentile: ClassVar[int]
    median: Positive

    def distribution(self) -> Lognormal:
        return Lognormal.from_percentile(self.median, getattr(self, self.tail), self.percentile)

    @model_validator(mode="after")
    def _ordered(self):
        low, high = ("median", self.tail) if self.percentile > 50 else (self.tail, "median")
        require_order(self, low, high)
        return self
