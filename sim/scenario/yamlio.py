"""YAML reading that remembers where each key was written and rejects duplicates.

PyYAML silently keeps the last of two equal keys; in a scenario that hides a
mistake (two models with one name), so a duplicate is an error here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sim.errors import InputError, Problem
from sim.files import check_input_file
from sim.limits import MAX_YAML_BYTES, MAX_YAML_NODES

FieldPath = tuple[Any, ...]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):  # `? [x, y]`: a list or mapping as a key
            raise InputError(Problem("a key must be a single value such as a name, not a list or a mapping",
                                     file=loader.name, line=key_node.start_mark.line + 1))
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
    check_input_file(path)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise InputError(Problem(f"{path.stat().st_size:,} bytes: more than a scenario may have "
                                     f"({MAX_YAML_BYTES:,})", file=str(path)))
        with path.open(encoding="utf-8") as f:
            text = f.read(MAX_YAML_BYTES + 1)  # bounded even where the size is not known (/proc reports 0)
    except UnicodeDecodeError as exc:
        raise InputError(Problem(f"not UTF-8 text (byte {exc.start + 1})", file=str(path))) from None
    except OSError as exc:
        raise InputError(Problem(f"cannot read: {exc.strerror or exc}", file=str(path))) from None
    if len(text) > MAX_YAML_BYTES:
        raise InputError(Problem(f"more than a scenario may have ({MAX_YAML_BYTES:,} bytes)", file=str(path)))
    loader = _Loader(text)
    loader.name = str(path)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_expansion(node, str(path))  # before anything follows the aliases
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s)
        raise InputError(Problem(f"not valid YAML: {what}", file=str(path), line=line)) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(f"not valid YAML: {exc}", file=str(path))) from None
    except RecursionError:
        raise InputError(Problem("nested too deeply to be a scenario", file=str(path))) from None
    finally:
        loader.dispose()
    lines: dict[FieldPath, int] = {}
    _record_lines(node, (), lines)
    return data, lines


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse a document whose aliases expand to more than MAX_YAML_NODES values (an
    alias bomb: a few lines that expand to billions) or refer to themselves.

    Aliases share their node, so each distinct node is sized once (memoised)."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # iterative: deep nesting must not hit Python's recursion limit
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if children_done:
            in_progress.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_YAML_NODES:
                raise InputError(Problem(f"expands to more than {MAX_YAML_NODES:,} values through its aliases "
                                         "(*name repeats what &name marks); a scenario needs far fewer",
                                         file=file, line=node.start_mark.line + 1))
            continue
        in_progress.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in in_progress:
                raise InputError(Problem("an alias refers to the value that contains it", file=file,
                                         line=child.start_mark.line + 1))
            if id(child) not in sizes:
                stack.append((child, False))


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
