"""Reading descriptor files: YAML, one or many documents, loaded safely and within limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # libyaml is several times faster; the pure-Python loader behaves the same
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader  # type: ignore[assignment]

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_DOCUMENTS = 1_000
# Nodes a document may hold once aliases are expanded: a "billion laughs" file is a few lines
# of YAML that expand to billions of nodes; it is refused here, before anything is built.
MAX_EXPANDED_NODES = 100_000


class DescriptorFileError(Exception):
    """A file that cannot be read as descriptors at all; `document` is 1-based where known."""

    def __init__(self, source: str, message: str, document: int | None = None) -> None:
        where = f"{source}:{document}" if document is not None else source
        super().__init__(f"{where}: {message}")
        self.source, self.document, self.message = source, document, message


@dataclass(frozen=True)
class Document:
    """One YAML document of a file; `number` counts from 1 in file order, empty ones too."""

    number: int
    data: Any


def _expanded_size(node: Node, memo: dict[int, int], budget: int) -> int:
    """How many nodes `node` stands for with every alias expanded, stopping past `budget`."""
    key = id(node)
    if key in memo:
        return memo[key]
    size = 1
    if isinstance(node, SequenceNode):
        for child in node.value:
            size += _expanded_size(child, memo, budget)
            if size > budget:
                break
    elif isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            size += _expanded_size(key_node, memo, budget) + _expanded_size(
                value_node, memo, budget
            )
            if size > budget:
                break
    memo[key] = size
    return size


class _Duplicate(Exception):
    """A mapping key given twice (PyYAML would silently keep the last)."""

    def __init__(self, key: str, line: int) -> None:
        self.key, self.line = key, line


class _Unusual(Exception):
    """A node the plain builder leaves to PyYAML's constructor: merge keys, complex keys,
    sets and other tagged collections."""


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


def _build(node: Node, loader: Any) -> Any:
    """The document PyYAML's safe constructor would build from `node`, refusing duplicate
    keys, in one pass: descriptors are plain mappings, lists and scalars, and PyYAML's
    general constructor (generators, recursion bookkeeping) is most of the cost of reading
    them. Anything else raises _Unusual, and the caller uses PyYAML's constructor."""
    if isinstance(node, ScalarNode):
        if node.tag == _STR:
            return node.value
        construct = loader.yaml_constructors.get(node.tag)
        if construct is None:
            raise _Unusual
        return construct(loader, node)
    if isinstance(node, MappingNode):
        if node.tag != _MAP:
            raise _Unusual
        mapping: dict[Any, Any] = {}
        written: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.value == "<<":
                raise _Unusual
            if key_node.value in written:
                raise _Duplicate(key_node.value, key_node.start_mark.line + 1)
            written.add(key_node.value)
            mapping[_build(key_node, loader)] = _build(value_node, loader)
        return mapping
    if isinstance(node, SequenceNode) and node.tag == _SEQ:
        return [_build(item, loader) for item in node.value]
    raise _Unusual


def _duplicate_key(node: Node) -> tuple[str, int] | None:
    """The first mapping key given twice (PyYAML would silently keep the last), with its line."""
    seen: set[int] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, MappingNode):
            keys: set[str] = set()
            for key_node, value_node in current.value:
                if isinstance(key_node.value, str):
                    if key_node.value in keys and key_node.value != "<<":
                        return key_node.value, key_node.start_mark.line + 1
                    keys.add(key_node.value)
                pending.extend((key_node, value_node))
        elif isinstance(current, SequenceNode):
            pending.extend(current.value)
    return None


def _construct(node: Node, loader: Any, *, may_expand: bool) -> Any:
    """The document's data; _Duplicate if a mapping repeats a key."""
    if not may_expand:  # without anchors no node is shared, and the plain builder applies
        try:
            return _build(node, loader)
        except _Unusual:
            pass
    duplicate = _duplicate_key(node)
    if duplicate is not None:
        raise _Duplicate(*duplicate)
    return loader.construct_document(node)


def load_documents(text: str | bytes, *, source: str) -> list[Document]:
    """Every non-empty document of a descriptor file, or DescriptorFileError saying why not."""
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_FILE_BYTES:
        raise DescriptorFileError(
            source, f"the file is {len(raw):,} bytes; descriptor files may be at most "
            f"{MAX_FILE_BYTES:,} bytes"
        )  # fmt: skip
    # Aliases need anchors (`&name`): a file without `&` cannot expand, and skips the count.
    may_expand = b"&" in raw
    loader = SafeLoader(raw)
    documents: list[Document] = []
    number = 0
    try:
        while loader.check_node():
            number += 1
            if number > MAX_DOCUMENTS:
                raise DescriptorFileError(
                    source, f"a file may hold at most {MAX_DOCUMENTS} documents", number
                )
            node = loader.get_node()
            if node is None:
                continue
            if may_expand and _expanded_size(node, {}, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
                raise DescriptorFileError(
                    source,
                    f"the document expands to more than {MAX_EXPANDED_NODES:,} values through "
                    "YAML aliases; it was refused, not expanded",
                    number,
                )
            try:
                data = _construct(node, loader, may_expand=may_expand)
            except _Duplicate as duplicate:
                raise DescriptorFileError(
                    source,
                    f"the key {duplicate.key!r} appears twice (line {duplicate.line})",
                    number,
                ) from None
            if data is not None:
                documents.append(Document(number=number, data=data))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        raise DescriptorFileError(source, f"YAML error{position}: {problem}", number) from error
    except yaml.YAMLError as error:
        raise DescriptorFileError(source, f"YAML error: {error}", number or None) from error
    finally:
        loader.dispose()
    return documents
