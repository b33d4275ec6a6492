"""Checking the raw columns of a trace table (read by ``traces/table.py`` or streamed by
``traces/formats.py``): numbers, token counts and timestamps, each refused with the
file line (or Parquet row) of the first bad value and what is wrong with it.

Where a row came from is a ``Locate`` function, made once per table or chunk:
a CSV row's line is found by re-reading the file only when an error needs it
(a quoted field may span lines), a JSON-lines row keeps the line it was read
from (blank lines are skipped), a Parquet row is its 1-based row number.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from sim.errors import InputError, Problem
from sim.limits import MAX_TOKENS

if TYPE_CHECKING:  # pandas is imported when a table is checked: a synthetic run never is
    import pandas as pd

Locate = Callable[[int], dict]  # row index in the table -> Problem keyword arguments (file, line or path)


def csv_rows(path: Path, first_row: int = 0) -> Locate:
    """Row i of a table read from CSV ``path`` starting at data row ``first_row`` -> its line."""

    def locate(i: int) -> dict:
        target = first_row + i
        with path.open(encoding="utf-8", errors="replace", newline="") as f:
            reader = csv.reader(f)
            next(reader, None)  # the header
            start = reader.line_num + 1
            for k, _ in enumerate(reader):
                if k == target:
                    return {"file": str(path), "line": start}
                start = reader.line_num + 1
        return {"file": str(path), "path": f"row {target + 1}"}

    return locate


def text_lines(source: str, lines) -> Locate:
    """Row i was read from line ``lines[i]`` of ``source``."""
    return lambda i: {"file": source, "line": int(lines[i])}


def table_rows(source: str, first_row: int = 0) -> Locate:
    """Row i is row ``first_row + i + 1`` of ``source`` (Parquet, or a table built in memory)."""
    return lambda i: {"file": source, "path": f"row {first_row + i + 1}"}


_COLUMN_NAME = re.compile(r"[\w. -]{1,40}")


def found_columns(columns) -> str:
    """What a table's header holds, for a 'missing column' message: names that look like
    column names, never a quote of whatever line a wrong file starts with."""
    names = [str(c) for c in columns]
    plain = [n for n in names if _COLUMN_NAME.fullmatch(n)]
    if not plain:
        return f"its first line has {len(names)} field(s), none of which looks like a column name: is it a trace?"
    shown = ", ".join(plain[:12]) + (", ..." if len(plain) > 12 else "")
    return f"found: {shown}" + (f"; and {len(names) - len(plain)} other field(s)" if len(plain) < len(names) else "")


def _refuse_kinds(raw: pd.Series, label: str, locate: Locate) -> None:
    """Values that pandas would silently turn into numbers: booleans, dates, durations, lists."""
    import pandas as pd

    dtype = raw.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise InputError(Problem(f"{label}: holds booleans (true/false), not numbers", **locate(0)))
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise InputError(Problem(f"{label}: holds {dtype} values, not numbers of seconds; convert them with "
                                 "routesim trace import --time-unit datetime (or store seconds)", **locate(0)))
    if dtype == object:
        for i, value in enumerate(raw):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, int, float, np.number, type(None))):
                raise InputError(Problem(f"{label}: not a number ({type(value).__name__} {_short(value)})",
                                         **locate(i)))


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def numbers(raw: pd.Series, label: str, locate: Locate) -> np.ndarray:
    """Finite float64 values; an empty cell, text, NaN, infinity or a boolean is refused."""
    import pandas as pd

    _refuse_kinds(raw, label, locate)
    # Empty CSV cells are empty strings (read as text): missing, like NaN.
    values = pd.to_numeric(raw.replace("", np.nan), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise InputError(Problem(f"{label}: not a finite number ({_short(raw.iloc[bad[0]])})", **locate(int(bad[0]))))
    return values


def token_counts(raw: pd.Series, label: str, locate: Locate) -> np.ndarray:
    """Whole numbers in [0, MAX_TOKENS] as int64 (larger ones would overflow or are not real requests)."""
    values = numbers(raw, label, locate)
    bad = np.flatnonzero((values < 0) | (values > MAX_TOKENS) | (values != np.round(values)))
    if len(bad):
        raise InputError(Problem(f"{label}: must be a whole number from 0 to {MAX_TOKENS:,} "
                                 f"(got {_short(raw.iloc[bad[0]])})", **locate(int(bad[0]))))
    return values.astype(np.int64)
