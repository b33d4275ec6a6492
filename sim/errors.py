"""User-facing errors: bad input the command line reports with exit code 2, and
pydantic validation errors translated into short sentences."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (file, line, field path) and what."""

    message: str
    path: str = ""  # field path such as ``models.gpt-5.price.input_per_mtok``
    file: str = ""
    line: int | None = None  # 1-based line in ``file``, or a row for tables

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        parts = [p for p in (where, self.path) if p]
        return ": ".join(parts + [self.message])


class InputError(Exception):
    """Bad input; carries every problem found so the user can fix them in one go."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- pydantic errors in plain words
def format_number(value) -> str:
    """0.0 -> '0', 0.5 -> '0.5': bounds read as the user would write them."""
    return f"{value:g}" if isinstance(value, float) else str(value)


_MESSAGES = {
    "greater_than_equal": lambda c: f"must be >= {format_number(c['ge'])}",
    "greater_than": lambda c: f"must be > {format_number(c['gt'])}",
    "less_than_equal": lambda c: f"must be <= {format_number(c['le'])}",
    "less_than": lambda c: f"must be < {format_number(c['lt'])}",
    "missing": lambda c: "required field is missing",
    "extra_forbidden": lambda c: "unknown key",
    "finite_number": lambda c: "must be a finite number",
    "float_parsing": lambda c: "must be a number",
    "float_type": lambda c: "must be a number",
    "int_parsing": lambda c: "must be a whole number",
    "int_from_float": lambda c: "must be a whole number",
    "int_type": lambda c: "must be a whole number",
    "literal_error": lambda c: f"must be one of {c['expected']}",
    "union_tag_invalid": lambda c: f"unknown kind {c['tag']!r} (expected one of {c['expected_tags']})",
    "union_tag_not_found": lambda c: f"needs a '{c['discriminator'].strip(chr(39))}' field",
    "string_too_short": lambda c: "must not be empty",
    "dict_type": lambda c: "must be a mapping (key: value)",
    "list_type": lambda c: "must be a list",
    "model_type": lambda c: "must be a mapping (key: value)",
    "model_attributes_type": lambda c: "must be a mapping (key: value)",
}


def describe_error(error: dict) -> str:
    """A pydantic error as a short sentence, with the offending value where useful."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind in _MESSAGES:
        try:
            message = _MESSAGES[kind](ctx)
        except KeyError:
            message = error["msg"]
    else:
        message = error["msg"][:1].lower() + error["msg"][1:]
    value = error.get("input")
    if kind not in ("missing", "extra_forbidden") and isinstance(value, bool):
        return message + f" (got {str(value).lower()})"
    if kind not in ("missing", "extra_forbidden") and isinstance(value, (int, float, str)):
        if isinstance(value, float) and math.isnan(value):
            value = "nan"
        message += f" (got {value!r})" if isinstance(value, str) else f" (got {value})"
    return message


#: Tags of the scenario's callable-discriminated unions (schema/latency.py): labels, never keys.
UNION_TAGS = frozenset({"lognormal", "table"})


def error_location(data: Any, loc: tuple) -> tuple:
    """Drop pydantic's union and tag labels from ``loc`` so it follows the YAML."""
    path: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif not last or (isinstance(node, dict) and node.get("kind") == part) or part in UNION_TAGS:
            continue  # a label such as 'outage' or 'function-after[...]', not a key
        else:
            node = None
        path.append(part)
    return tuple(path)
