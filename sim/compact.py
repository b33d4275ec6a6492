"""Per-request columns the hot path indexes, held compactly.

An ``array.array`` over a numpy column's bytes: indexing it is as fast as a
list's (several times faster than a numpy scalar) while it keeps 8 bytes a value
instead of a 32-byte Python object per cell, a difference of about 100 MB per
million requests across the columns the router reads.
"""

from __future__ import annotations

from array import array

import numpy as np

_CODES = {np.dtype(np.float64): "d", np.dtype(np.int64): "q"}


def compact(column: np.ndarray) -> array:
    values = np.ascontiguousarray(column)
    code = _CODES.get(values.dtype)
    if code is None:  # other widths: widen to what array.array holds
        values = values.astype(np.float64 if values.dtype.kind == "f" else np.int64)
        code = _CODES[values.dtype]
    out = array(code)
    out.frombytes(values.tobytes())
    return out
