"""YAML that remembers where things are: every mapping and list knows its line numbers.

Flow and policy files are written by merchants, so every mistake is reported as
"file:line: message". PyYAML's safe loader is extended to build `LineDict` and `LineList`
(plain `dict` and `list` subclasses) that keep the 1-based line of the node itself and of each
key or item.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["LineDict", "LineList", "YamlError", "line_of", "load_yaml"]


class LineDict(dict):
    """A mapping read from YAML: `line` is where it starts, `key_lines[key]` where each key is."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_for(self, key: Any) -> int:
        """The line of `key`, or of the mapping when the key is absent."""
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A list read from YAML: `line` is where it starts, `item_lines[i]` where each item is."""

    line: int = 0
    item_lines: list[int]

    def line_for(self, index: int) -> int:
        """The line of item `index`, or of the list when out of range."""
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class YamlError(ValueError):
    """A file that is not valid YAML; `line` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


class _Loader(yaml.SafeLoader):
    """Safe loader building LineDict/LineList with line numbers.

    Booleans are only `true` and `false` (YAML 1.2): a merchant's `yes:`, `no:` or `on` stays
    the word they wrote.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise YamlError("a mapping key must be a plain value", key_node.start_mark.line + 1)
        if key in result:
            raise YamlError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> Any:
    """Read one YAML document with line numbers; raises `YamlError` naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise YamlError(f"cannot be read as UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlError(f"not valid YAML: {exc.problem or exc}", line) from exc
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {exc}") from exc


def line_of(data: Any, loc: Sequence[Any]) -> int:
    """The line of the deepest node on `loc` (a pydantic error location) found in `data`."""
    line = getattr(data, "line", 0)
    node = data
    for part in loc:
        in_dict = isinstance(node, LineDict) and part in node
        in_list = isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            break
        line = node.line_for(part)
        node = node[part]
    return line
