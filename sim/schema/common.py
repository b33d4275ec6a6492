"""What every scenario section shares: strict models (unknown keys, non-finite
numbers, booleans or quoted strings as numbers are errors) and number types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..errors import format_number

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]


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
