"""Reading a study file with bounds: size, alias expansion, nesting depth, duplicate keys.

Why: a study file is user input and YAML can be hostile. A "billion laughs" file
(anchors referencing anchors) is a few hundred bytes that PyYAML builds as shared
references, and then validation and the saved spec expand it to gigabytes; a 50,000-deep
list ends in a ``RecursionError``; ``dse run /dev/zero`` reads until memory runs out; a
duplicate key silently keeps the last value (issue 14). Every such file gets one message
naming the file and the limit, before anything is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: a study file larger than this is refused (real study files are a few KB)
MAX_BYTES = 1_000_000
#: nodes the document may have once every alias is expanded (a study file has hundreds)
MAX_EXPANDED_NODES = 100_000
#: deepest nesting of mappings / lists
MAX_DEPTH = 64


class StudyFileError(ValueError):
    """A study file that cannot be read within the bounds; the message names the file."""


def _limits_loader(where: str) -> type[yaml.SafeLoader]:
    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that stops at MAX_DEPTH and refuses duplicate mapping keys."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    raise StudyFileError(
                        f"{where}: nested deeper than {MAX_DEPTH} levels at line "
                        f"{mark.line + 1}; allowed: at most {MAX_DEPTH}"
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # noqa: D102
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # unhashable key: SafeLoader reports it below
                    continue
                if first != key_node.start_mark.line + 1:
                    raise StudyFileError(
                        f"{where}: duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                        f"(first at line {first}); allowed: each key once per mapping"
                    )
            return super().construct_mapping(node, deep=deep)

    return BoundedLoader


def _expanded_size(root: yaml.Node, where: str) -> int:
    """Nodes of the document with every alias expanded, memoized per node (linear in the
    composed graph, so a billion-laughs file is measured without expanding it)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        kids = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if children_done:
            total = 1 + sum(sizes[id(k)] for k in kids)
            sizes[id(node)] = total
            if total > MAX_EXPANDED_NODES:
                raise StudyFileError(
                    f"{where}: anchors and aliases expand to more than {MAX_EXPANDED_NODES:,} "
                    f"values (line {node.start_mark.line + 1}); allowed: at most "
                    f"{MAX_EXPANDED_NODES:,}"
                )
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)
    return sizes[id(root)]


def load_study_yaml(path: Path) -> Any:
    """The parsed study file at ``path``, or :class:`StudyFileError` naming what is wrong
    (``yaml.YAMLError`` for plain syntax errors, which the caller formats)."""
    where = str(path)
    if path.is_dir():
        raise StudyFileError(f"{where} is a directory; expected a study YAML file")
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise StudyFileError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_BYTES:
        raise StudyFileError(
            f"{where} is larger than {MAX_BYTES:,} bytes; a study file is a small YAML text"
        )
    if b"\x00" in raw:
        raise StudyFileError(f"{where} is not a text file (NUL bytes); expected UTF-8 YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StudyFileError(
            f"{where} is not UTF-8 text (byte {exc.start}); expected a UTF-8 YAML file"
        ) from None
    loader = _limits_loader(where)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, where)
        return loader.construct_document(node)
    finally:
        loader.dispose()
