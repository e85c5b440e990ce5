"""Reading descriptor files as Backstage reads them: YAML 1.2, one or many documents, safely."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import CollectionEndEvent, CollectionStartEvent, DocumentStartEvent, StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_DOCUMENTS = 1_000
# Nodes a document may hold once aliases are expanded: a "billion laughs" file is a few lines
# of YAML that expand to billions of nodes; it is refused here, before anything is built.
MAX_EXPANDED_NODES = 100_000
# Lists and mappings a document may nest, aliases expanded. Descriptors use a handful; without a
# limit a file of `[[[[…` exhausts the stack of whoever reads it.
MAX_DEPTH = 64


class DescriptorFileError(Exception):
    """A file that cannot be read as descriptors at all; `document` is 1-based where known."""

    def __init__(self, source: str, message: str, document: int | None = None) -> None:
        where = f"{source}:{document}" if document is not None else source
        super().__init__(f"{where}: {message}")
        self.source, self.document, self.message = source, document, message


@dataclass(frozen=True)
class Document:
    """One YAML document of a file; `number` counts from 1 in file order, empty ones too.

    A document that could not be read has `data` None and `error` saying why (only when
    load_documents is asked for per-document errors)."""

    number: int
    data: Any
    error: str | None = None


# --- YAML 1.2's core schema, as the `yaml` package Backstage uses resolves it -------------------

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INTEGER = re.compile(r"0o[0-7]+|[-+]?[0-9]+|0x[0-9a-fA-F]+")
_FRACTION = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+|[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)"
)
_NOT_FINITE = {
    **{f"{sign}.{inf}": sign != "-" for sign in ("", "+", "-") for inf in ("inf", "Inf", "INF")},
    **{f".{nan}": None for nan in ("nan", "NaN", "NAN")},
}
# Every plain scalar the core schema reads as other than a string starts with one of these
# (or is empty): the rest, most of a descriptor, is a string at a glance.
_MAY_NOT_BE_STRING = frozenset("~nNtTfF0123456789+-.")
# Tags PyYAML would build into dates, bytes, sets or Python objects, none of which JSON holds.
_REFUSED_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("timestamp", "binary", "set", "omap",
                                                          "pairs")}  # fmt: skip
_PYTHON_TAGS = "tag:yaml.org,2002:python/"
# Python's int() refuses longer decimal strings; JavaScript reads them as Infinity.
_MAX_INT_DIGITS = 4_000


def _core_tag(value: str) -> str:
    if value in _NULLS:
        return _NULL
    if value in _BOOLS:
        return _BOOL
    if _INTEGER.fullmatch(value):
        return _INT
    if value in _NOT_FINITE or _FRACTION.fullmatch(value):
        return _FLOAT
    return _STR


class _CoreSchema:
    """The resolver libyaml's composer asks for each node's tag: YAML 1.2's core schema, where
    `yes`, `on`, `10:30` and `2024-01-01` are strings and `<<` is an ordinary key, instead of
    PyYAML's YAML 1.1 rules. (libyaml reports `! 12` as untagged: the non-specific tag, which
    nobody writes in a descriptor, does not make a string here.)"""

    def resolve(self, kind: type[Node], value: str | None, implicit: Any) -> str:
        if kind is ScalarNode:
            # implicit[0]: a plain scalar without a tag; quoted ones and `!` are strings.
            if implicit[0] and (not value or value[0] in _MAY_NOT_BE_STRING):
                return _core_tag(value or "")
            return _STR
        return _SEQ if kind is SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


try:  # libyaml parses and composes several times faster than PyYAML's Python
    from yaml._yaml import CParser

    class _Loader(_CoreSchema, CParser):
        pass

except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(_CoreSchema, Reader, Scanner, Parser, Composer):  # type: ignore[no-redef]
        def __init__(self, stream: bytes) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)

        def dispose(self) -> None:
            pass


class _Refused(Exception):
    """A document that is valid YAML but not a descriptor Atrium reads; the file's other
    documents are still read."""


def _line(node: Node | yaml.Event) -> int:
    return int(node.start_mark.line) + 1 if node.start_mark else 0


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


def _refuse_tag(node: Node) -> None:
    """Refuse the tags that build what JSON cannot hold; others are read as Backstage's parser
    reads a tag it does not know: as the text or collection it stands on."""
    if node.tag in _REFUSED_TAGS or node.tag.startswith(_PYTHON_TAGS):
        raise _Refused(
            f"the tag {_tag_name(node.tag)} (line {_line(node)}) is not supported; a descriptor "
            "holds only strings, numbers, booleans, null, lists and mappings"
        )


def _scalar(node: ScalarNode) -> Any:
    """A scalar other than a plain string. An explicit core tag whose text does not fit it stays
    text (`!!int abc` is "abc"), as in Backstage's parser."""
    tag, value = node.tag, node.value
    if tag == _NULL:
        return None if value in _NULLS else value
    if tag == _BOOL:
        return _BOOLS.get(value, value)
    if tag == _INT:
        if not _INTEGER.fullmatch(value):
            return value
        if value.startswith(("0o", "0x")):
            return int(value[2:], 8 if value[1] == "o" else 16)
        return int(value) if len(value) <= _MAX_INT_DIGITS else None
    if tag == _FLOAT:
        if value in _NOT_FINITE:
            # JSON has no NaN or Infinity: Backstage stores them as null, as JSON.stringify does.
            return None
        if not _FRACTION.fullmatch(value):
            return value
        number = float(value)
        return number if math.isfinite(number) else None
    if tag != _STR:
        _refuse_tag(node)
    return value


def _key(node: Node) -> str:
    """A mapping key as the JSON object key Backstage's parser makes of it."""
    if not isinstance(node, ScalarNode):
        raise _Refused(
            f"the key at line {_line(node)} is a list or mapping; descriptor keys are plain values"
        )
    if node.tag == _STR:
        return str(node.value)
    if node.tag == _FLOAT and node.value in _NOT_FINITE:
        infinite = _NOT_FINITE[node.value]
        return "NaN" if infinite is None else "Infinity" if infinite else "-Infinity"
    value = _scalar(node)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _build(node: Node, depth: int) -> Any:
    """The JSON value of `node`, `depth` lists and mappings down, refusing keys given twice, in
    one pass: descriptors are plain mappings, lists and scalars, and a general constructor
    (PyYAML's: generators, recursion bookkeeping) would be most of the cost of reading them."""
    cls = node.__class__
    if cls is ScalarNode:
        return node.value if node.tag == _STR else _scalar(node)  # type: ignore[arg-type]
    if depth >= MAX_DEPTH:
        raise _too_deep(node)
    if node.tag != (_MAP if cls is MappingNode else _SEQ):
        _refuse_tag(node)
    depth += 1
    if cls is MappingNode:
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _STR and key_node.__class__ is ScalarNode:
                key = key_node.value
            else:
                key = _key(key_node)
            # Keys are compared as JSON will hold them: `1` and "1" count as one key here,
            # where Backstage's parser would keep the later; nobody writes both.
            if key in mapping:
                raise _Refused(f"the key {key!r} appears twice (line {_line(key_node)})")
            mapping[key] = _build(value_node, depth)
        return mapping
    return [_build(item, depth) for item in node.value]


def _too_deep(node: Node) -> _Refused:
    return _Refused(
        f"lists and mappings nest more than {MAX_DEPTH} deep (line {_line(node)}); "
        "the document was refused, not read"
    )


def _measure(node: Node, memo: dict[int, tuple[int, int]], depth: int) -> int:
    """How many nodes `node` stands for with every alias expanded, refusing a document that
    expands past MAX_EXPANDED_NODES or nests past MAX_DEPTH (an alias may hold itself). `memo`
    keeps each shared node's size and height, so it is walked once."""
    known = memo.get(id(node))
    if known is not None:
        size, height = known
        if depth + height > MAX_DEPTH:
            raise _too_deep(node)
        return size
    if isinstance(node, ScalarNode):
        memo[id(node)] = (1, 0)
        return 1
    if depth >= MAX_DEPTH:
        raise _too_deep(node)
    children = (
        [child for pair in node.value for child in pair]
        if isinstance(node, MappingNode)
        else node.value
    )
    size, height = 1, 1
    for child in children:
        size += _measure(child, memo, depth + 1)
        if size > MAX_EXPANDED_NODES:
            raise _Refused(
                f"the document expands to more than {MAX_EXPANDED_NODES:,} values through "
                "YAML aliases; it was refused, not expanded"
            )
        height = max(height, memo[id(child)][1] + 1)
    memo[id(node)] = (size, height)
    return size


# --- Nesting, checked before libyaml composes -------------------------------------------------

# libyaml's composer recurses in C once per level of nesting, and a few tens of thousands of
# levels (a 100 KB file) overflow the C stack: the process dies, no exception to catch. These
# bounds keep what it is given under ~500 levels, far from that, from the bytes alone.
_COMPOSE_LIMIT = 512
_FLOW_LIMIT = 256
# Block nesting steps at least one column right every two levels, and the text before a block
# collection's first entry on its line is spaces and the indicators `-`, `?`, `:` (tabs may
# separate them): a run of 128 such characters is needed to nest 256 block levels.
_BLOCK_RUN = b" " * 128
_AS_BLOCK_RUN = bytes.maketrans(b"\t-?:", b"    ")
# A document starts at a `---` line; libyaml refuses one inside a flow collection or a quoted
# string, so the `[` and `{` open at any point are in the current document.
_DOCUMENT_START = re.compile(rb"\n---(?=[ \t\r\n]|\Z)")


def _surely_shallow(raw: bytes) -> bool:
    """True when no document of `raw` can nest past _COMPOSE_LIMIT: at most _FLOW_LIMIT `[`
    and `{` per document, and no long indentation. Over-counts (brackets in strings); never
    under-counts."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: the bytes are not the characters
        return False
    if _BLOCK_RUN in raw.translate(_AS_BLOCK_RUN):
        return False
    if raw.count(b"[") + raw.count(b"{") <= _FLOW_LIMIT:
        return True
    start = 0
    for marker in _DOCUMENT_START.finditer(raw):
        end = marker.start()
        if raw.count(b"[", start, end) + raw.count(b"{", start, end) > _FLOW_LIMIT:
            return False
        start = end
    return raw.count(b"[", start) + raw.count(b"{", start) <= _FLOW_LIMIT


def _refuse_deep_nesting(raw: bytes, source: str) -> None:
    """Count the nesting of a file the bytes could not vouch for, from libyaml's events (no
    recursion), and refuse the file if a document nests past what the composer can take."""
    loader = _Loader(raw)
    number = depth = 0
    try:
        while True:
            event = loader.get_event()
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > _COMPOSE_LIMIT:
                    raise DescriptorFileError(
                        source,
                        f"lists and mappings nest more than {MAX_DEPTH} deep (line "
                        f"{_line(event)}); the file was refused, not read",
                        number,
                    )
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            elif isinstance(event, DocumentStartEvent):
                number += 1
            elif isinstance(event, StreamEndEvent):
                return
    except yaml.YAMLError as error:
        raise _file_error(source, error, number) from error
    finally:
        loader.dispose()


def _file_error(source: str, error: yaml.YAMLError, number: int) -> DescriptorFileError:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        return DescriptorFileError(source, f"YAML error{position}: {problem}", number)
    return DescriptorFileError(source, f"YAML error: {error}", number or None)


def load_documents(
    text: str | bytes, *, source: str, per_document_errors: bool = False
) -> list[Document]:
    """Every non-empty document of a descriptor file, or DescriptorFileError saying why not.

    A document that is valid YAML but cannot be a descriptor (a key given twice, a date, too
    deep) refuses the whole file, unless `per_document_errors`: then it is returned with its
    `error`, and the file's other documents are read, as Backstage reads them. Syntax errors,
    which stop the parser, always refuse the file."""
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_FILE_BYTES:
        raise DescriptorFileError(
            source, f"the file is {len(raw):,} bytes; descriptor files may be at most "
            f"{MAX_FILE_BYTES:,} bytes"
        )  # fmt: skip
    if not _surely_shallow(raw):
        _refuse_deep_nesting(raw, source)
    # Aliases need anchors (`&name`): a file without `&` cannot expand, and skips the count.
    may_expand = b"&" in raw
    loader = _Loader(raw)
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
            try:
                if may_expand:
                    _measure(node, {}, 0)
                data = _build(node, 0)
            except _Refused as refused:
                if not per_document_errors:
                    raise DescriptorFileError(source, str(refused), number) from None
                documents.append(Document(number=number, data=None, error=str(refused)))
                continue
            if data is not None:
                documents.append(Document(number=number, data=data))
    except yaml.YAMLError as error:
        raise _file_error(source, error, number) from error
    finally:
        loader.dispose()
    return documents
