"""YAML reading that remembers where each key was written and rejects duplicates.

PyYAML silently keeps the last of two equal keys; in a scenario that hides a
mistake (two models with one name), so a duplicate is an error here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Problem

FieldPath = tuple[Any, ...]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise InputError(Problem(
                f"duplicate key '{key}' (first written on line {seen[key]})",
                file=loader.name, line=key_node.start_mark.line + 1))
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _record_lines(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = path + (key_node.value,)
            _record_lines(value_node, key_path, lines)
            lines[key_path] = key_node.start_mark.line + 1  # point at the key, not its value
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, path + (i,), lines)


def load_yaml(path: Path) -> tuple[Any, dict[FieldPath, int]]:
    """Parse ``path``; return the data and a map from field path to line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(Problem("file not found", file=str(path))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Problem(f"cannot read: {exc}", file=str(path))) from None
    loader = _Loader(text)
    loader.name = str(path)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s)
        raise InputError(Problem(f"not valid YAML: {what}", file=str(path), line=line)) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(f"not valid YAML: {exc}", file=str(path))) from None
    finally:
        loader.dispose()
    lines: dict[FieldPath, int] = {}
    _record_lines(node, (), lines)
    return data, lines


def line_of(lines: dict[FieldPath, int], path: FieldPath) -> int | None:
    """Line of the deepest prefix of ``path`` that was written in the file."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def format_path(path: FieldPath) -> str:
    """``('events', 0, 'end_s')`` -> ``events[0].end_s``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
