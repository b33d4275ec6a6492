"""Field-path overrides of a scenario, as sweeps and tuning write them:
``policies.dynamic.weights.cost``, ``events[0].end_s``,
``models.claude-sonnet-4.5.price.input_per_mtok``.

A path is read against the data it changes: at each mapping the longest key
that the path continues with is taken, so names that contain dots (model names
such as ``claude-sonnet-4.5``) need no quoting; ``[i]`` indexes a list. Every
step but the last must exist; the last may add a key to an existing mapping.
"""

from __future__ import annotations

import copy
import re
from typing import Any

_INDEX = re.compile(r"\[(\d+)\]")


class OverrideError(ValueError):
    """A path that does not lead anywhere in the data, with the reason."""


def apply_overrides(data: dict, overrides: dict[str, Any]) -> dict:
    """A deep copy of ``data`` with each path set to its value."""
    data = copy.deepcopy(data)
    for path, value in overrides.items():
        set_path(data, path, copy.deepcopy(value))
    return data


def set_path(data: Any, path: str, value: Any) -> None:
    parent, last = _walk(data, path)
    parent[last] = value


def get_path(data: Any, path: str) -> Any:
    parent, last = _walk(data, path)
    if isinstance(last, str) and last not in parent:
        raise OverrideError(f"'{path}': no '{last}' here")
    return parent[last]


def _walk(data: Any, path: str) -> tuple[Any, Any]:
    """(the container the path's last step is in, that step: a key or an index)."""
    if not path:
        raise OverrideError("an empty path")
    node, rest, done = data, path, ""
    while True:
        if isinstance(node, list):
            match = _INDEX.match(rest)
            if not match:
                raise OverrideError(f"'{path}': '{done}' is a list; index it as {done}[0]")
            index = int(match.group(1))
            if index >= len(node):
                raise OverrideError(f"'{path}': '{done}' has {len(node)} item(s); there is no [{index}]")
            rest, done = rest[match.end():], done + match.group(0)
            if not rest:
                return node, index
            node = node[index]
            rest = rest[1:] if rest.startswith(".") else rest
            continue
        if not isinstance(node, dict):
            raise OverrideError(f"'{path}': '{done}' is a single value, not a mapping or a list")
        key = _longest_key(node, rest)
        if key is None:  # a new key, allowed only as the last step
            last = _INDEX.split(rest)[0]
            if "." in last or _INDEX.search(rest):
                where = f"'{done}'" if done else "the top level"
                raise OverrideError(f"'{path}': {where} has no key that '{rest}' starts with "
                                    f"(keys: {', '.join(map(str, node)) or 'none'})")
            return node, rest
        rest, done = rest[len(str(key)):], f"{done}.{key}" if done else str(key)
        if not rest:
            return node, key
        node = node[key]
        rest = rest[1:] if rest.startswith(".") else rest


def _longest_key(node: dict, rest: str) -> Any:
    """The longest key of ``node`` that ``rest`` is or continues with ('.' or '[' after it)."""
    best = None
    for key in node:
        text = str(key)
        if rest == text or rest.startswith(text + ".") or rest.startswith(text + "["):
            if best is None or len(text) > len(str(best)):
                best = key
    return best
