"""Reading a location: its files, the Location entities they point to, placeholders, validation.

Nothing here writes; `catalog.services` applies what a read produced.
"""

# About 400 lines, kept whole: one reader of a location, its files and the Location entities
# they point to, whose steps share the reader's state.

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml

from catalog.descriptors import DescriptorError, ValidEntity, validate_entity
from catalog.fetch import FetchError, FetchRefused, UrlScope, fetch_url
from catalog.routes import AUDIENCE, GATEWAY_ROUTES
from catalog.yamlfiles import MAX_DEPTH, MAX_FILE_BYTES, DescriptorFileError, load_documents

DESCRIPTOR_SUFFIXES = (".yaml", ".yml")
MAX_FILES = 5_000


@dataclass(frozen=True)
class Problem:
    source: str
    document: int | None
    message: str
    field: str = ""
    # The entity the problem belongs to, when the document names one.
    ref: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.document}" if self.document is not None else self.source
        return f"{where}: {self.message}"


@dataclass
class Emitted:
    valid: ValidEntity
    source: str
    document: int
    # The Location entity whose target this entity's file was read through, if any.
    parent: Emitted | None = None
    # A Location entity's targets that could not be read: shown on the Location's page.
    problems: list[Problem] = field(default_factory=list)


@dataclass
class ReadResult:
    entities: list[Emitted] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Files that could not be read at all: their entities must not be treated as gone.
    unreadable: set[str] = field(default_factory=set)
    # Files skipped as unchanged (`known`): their stored entities stand as they are.
    kept: set[str] = field(default_factory=set)
    # Files read whole that could be skipped next time while unchanged: their digest and how
    # many entities they gave (see `_Reader.read_file` for which qualify).
    digests: dict[str, tuple[str, int]] = field(default_factory=dict)


def file_digest(salt: str, parent_ref: str, raw: bytes) -> str:
    """What a file's entities are made from, besides the file: `salt` (the location's rules and
    the reading code, catalog.services), and the Location entity it was read through."""
    digest = hashlib.sha256(f"{salt}\0{parent_ref}\0".encode())
    digest.update(raw)
    return digest.hexdigest()


class _Reader:
    def __init__(self, root: str, *, known: dict[str, str] | None = None, salt: str = "") -> None:
        # Files whose digest, if it is still this, lets them be skipped (`read_file`).
        self.known, self.salt = known or {}, salt
        self.is_url = urlsplit(root).scheme in {"http", "https"}
        self.root = root if self.is_url else os.path.realpath(root)
        # What the location may read: under the folder of its URL, or inside its folder (the
        # file's own folder when it is a file), symbolic links resolved.
        self.scope: UrlScope | None = None
        self.scope_error: FetchRefused | None = None
        if self.is_url:
            try:
                self.scope = UrlScope.of(root)
            except FetchRefused as error:
                self.scope_error = error
        self.root_dir = self.root if os.path.isdir(self.root) else os.path.dirname(self.root)
        self.result = ReadResult()
        self.seen: set[str] = set()

    # --- fetching -------------------------------------------------------------------------

    def _inside_root(self, target: str) -> bool:
        if self.is_url:
            return self.scope is not None and self.scope.contains(target)
        if urlsplit(target).scheme in {"http", "https"}:
            return False
        return _is_within(os.path.realpath(target), self.root_dir)

    def _fetch(self, target: str) -> bytes:
        if self.is_url:
            if self.scope is None:
                raise self.scope_error or FetchRefused("refused: not a URL that can be read")
            return fetch_url(target, scope=self.scope, max_bytes=MAX_FILE_BYTES)
        # Resolved again as it is opened: every caller's check holds for what is read.
        if not _is_within(os.path.realpath(target), self.root_dir):
            raise FetchRefused("refused: the file is outside the location's folder")
        try:
            # Non-blocking, so that a named pipe is refused below rather than waited on.
            descriptor = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise FetchRefused("refused: a loop of symbolic links") from error
            raise
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise FetchRefused("refused: not a regular file")
            return handle.read(MAX_FILE_BYTES + 1)

    def _resolve(self, base: str, relative: str) -> str:
        if self.is_url or urlsplit(relative).scheme in {"http", "https"}:
            # An absolute URL stays itself; from a folder it is outside the location.
            return urljoin(base, relative) if self.is_url else relative
        # realpath, not Path.resolve: a symbolic link loop is then the read's problem, not
        # a RuntimeError.
        return os.path.realpath(os.path.join(os.path.dirname(base), relative))

    def _descriptor_files(self, folder: str, *, parent: Emitted | None) -> list[str]:
        """The descriptor files under a folder, sorted, each resolved; a symbolic link that
        leads outside the location is refused by name, and one looping back is read once."""
        files: list[str] = []
        pending, walked = [folder], set()
        while pending and len(files) <= MAX_FILES:
            current = pending.pop()
            if os.path.realpath(current) in walked:
                continue
            walked.add(os.path.realpath(current))
            try:
                entries = sorted(os.scandir(current), key=lambda entry: entry.name)
            except OSError as error:
                self._problem(current, None, f"could not be read: {error.strerror}", parent=parent)
                continue
            for entry in entries:
                real = os.path.realpath(entry.path)
                inside = _is_within(real, self.root_dir)
                if entry.is_dir(follow_symlinks=False) or (
                    entry.is_symlink() and os.path.isdir(real)
                ):
                    if not inside:
                        self.result.unreadable.add(entry.path)
                        message = "refused: a symbolic link to a folder outside the location"
                        self._problem(entry.path, None, message, parent=parent)
                    else:
                        pending.append(entry.path)
                elif os.path.splitext(entry.name)[1] in DESCRIPTOR_SUFFIXES:
                    if not inside:
                        self.result.unreadable.add(entry.path)
                        message = "refused: a symbolic link to a file outside the location"
                        self._problem(entry.path, None, message, parent=parent)
                    elif os.path.isfile(real):
                        files.append(real)
                    elif entry.is_symlink() and os.path.lexists(real):
                        # realpath stops where links loop; a dangling link is no file, as before.
                        self.result.unreadable.add(entry.path)
                        message = "refused: a loop of symbolic links"
                        self._problem(entry.path, None, message, parent=parent)
        return sorted(set(files))

    # --- reading --------------------------------------------------------------------------

    def read(self, target: str, *, parent: Emitted | None = None, optional: bool = False) -> None:
        """Read a file, or every descriptor file under a folder. `parent` is the Location
        entity that pointed here, which the problems of reading are shown on; an `optional`
        target (`presence: optional`) may be missing."""
        if not self.is_url and os.path.isdir(target):
            for path in self._descriptor_files(target, parent=parent)[:MAX_FILES]:
                self.read_file(path, parent=parent)
            return
        self.read_file(target, parent=parent, optional=optional)

    def read_file(
        self, source: str, *, parent: Emitted | None = None, optional: bool = False
    ) -> None:
        if source in self.seen:
            return
        self.seen.add(source)
        if len(self.seen) > MAX_FILES:
            self._problem(source, None, f"more than {MAX_FILES} files; the rest were not read")
            return
        try:
            raw = self._fetch(source)
            digest = file_digest(self.salt, parent.valid.ref.key if parent else "", raw)
            if self.known.get(source) == digest:
                self.result.kept.add(source)
                return
            documents = load_documents(raw, source=source, per_document_errors=True)
        except DescriptorFileError as error:
            self.result.unreadable.add(source)
            self._problem(source, error.document, error.message, parent=parent)
            return
        except FileNotFoundError:
            if optional:  # as Backstage: an optional target that is missing emits nothing
                return
            self.result.unreadable.add(source)
            self._problem(source, None, "NotFoundError: no file at this location", parent=parent)
            return
        except FetchRefused as error:
            # What was refused, never whether anything answered there.
            self.result.unreadable.add(source)
            self._problem(source, None, str(error), parent=parent)
            return
        except (OSError, FetchError) as error:
            self.result.unreadable.add(source)
            self._problem(source, None, f"could not be read: {error}", parent=parent)
            return
        # A file without a `$` has no placeholders: most files, spared a walk of every value.
        placeholders = b"$" in raw
        # Nor, without one of these, a NUL character (PostgreSQL stores none in text or JSON).
        may_hold_nul = any(mark in raw for mark in NUL_MARKS)
        problems, emitted = len(self.result.problems), len(self.result.entities)
        for document in documents:
            if document.error is not None:
                # One document is refused, its neighbours still read; the entity it held before
                # is unknown, so nothing of this file counts as gone until it is fixed.
                self.result.unreadable.add(source)
                self._problem(source, document.number, document.error, parent=parent)
                continue
            self._document(
                source, document.number, document.data, parent=parent,
                placeholders=placeholders, may_hold_nul=may_hold_nul,
            )  # fmt: skip
        entities = self.result.entities[emitted:]
        # Skippable next time while unchanged: a file whose entities come from its own bytes
        # alone. Not one with placeholders (other files), a Location entity (its targets are
        # read again), gateway routes (judged against other entities') or a problem (it may
        # hang on what else the catalog holds); catalog.refresh also drops one whose entities
        # the refresh refused.
        if (
            not placeholders
            and len(self.result.problems) == problems
            and source not in self.result.unreadable
            and not any(_depends_on_more(entity) for entity in entities)
        ):
            self.result.digests[source] = (digest, len(entities))

    def _document(
        self,
        source: str,
        number: int,
        data: Any,
        *,
        parent: Emitted | None,
        placeholders: bool,
        may_hold_nul: bool,
    ) -> None:
        ref = _ref_of(data)
        try:
            if placeholders:
                data = self._placeholders(source, data)
            if placeholders or may_hold_nul:
                _refuse_unstorable(data)
            valid = validate_entity(data)
        except DescriptorError as error:
            self._problem(source, number, error.message, error.field, ref)
            return
        except Exception as error:  # noqa: BLE001 - one entity's failure is its own problem
            # Nothing one document holds may stop the rest of its location from refreshing.
            message = f"the entity could not be processed: {type(error).__name__}: {error}"
            self._problem(source, number, message, "", ref)
            return
        emitted = Emitted(valid=valid, source=source, document=number, parent=parent)
        self.result.entities.append(emitted)
        if valid.kind == "Location":
            spec = valid.entity.get("spec") or {}
            targets = list(spec.get("targets") or [])
            if spec.get("target"):
                targets.insert(0, spec["target"])
            optional = spec.get("presence") == "optional"
            for target in targets:
                resolved = self._resolve(source, target)
                if not self._inside_root(resolved):
                    self._problem(
                        source,
                        number,
                        f"the target {target!r} is outside the registered location {self.root}",
                        "spec.targets",
                        ref,
                        parent=emitted,
                    )
                    continue
                self.read(resolved, parent=emitted, optional=optional)

    def _placeholders(self, source: str, value: Any) -> Any:
        """Backstage's `$text`, `$json` and `$yaml`: the content of a file beside the descriptor."""
        if isinstance(value, list):
            return [self._placeholders(source, item) for item in value]
        if not isinstance(value, dict):
            return value
        keys = [key for key in value if isinstance(key, str) and key.startswith("$")]
        if keys and keys[0] in {"$text", "$json", "$yaml"}:
            if len(value) != 1:
                raise DescriptorError(
                    f"Placeholder {keys[0]} must be the only key of its object", keys[0]
                )
            return self._substitute(source, keys[0], value[keys[0]])
        return {key: self._placeholders(source, item) for key, item in value.items()}

    def _substitute(self, source: str, kind: str, relative: Any) -> Any:
        if not isinstance(relative, str) or not relative:
            raise DescriptorError(f"Placeholder {kind} must name a file", kind)
        target = self._resolve(source, relative)
        if not self._inside_root(target):
            raise DescriptorError(
                f"Placeholder {kind} refers to {relative!r}, outside the registered location",
                kind,
            )
        try:
            raw = self._fetch(target)
        except (OSError, FetchError) as error:
            raise DescriptorError(
                f"Placeholder {kind} could not read {relative!r}: {error}", kind
            ) from error
        if len(raw) > MAX_FILE_BYTES:
            raise DescriptorError(f"Placeholder {kind} file {relative!r} is too large", kind)
        text = raw.decode("utf-8", errors="replace")
        try:
            if kind == "$json":
                return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
            if kind == "$yaml":
                documents = load_documents(raw, source=target)
                if len(documents) > 1:
                    raise ValueError("it holds more than one YAML document")
                return documents[0].data if documents else None
        except RecursionError as error:
            raise DescriptorError(
                f"Placeholder {kind} failed to parse {relative!r}: it nests too deep", kind
            ) from error
        except (ValueError, DescriptorFileError, yaml.YAMLError) as error:
            raise DescriptorError(
                f"Placeholder {kind} failed to parse {relative!r}: {error}", kind
            ) from error
        return text

    def _problem(
        self,
        source: str,
        document: int | None,
        message: str,
        field_path: str = "",
        ref: str | None = None,
        *,
        parent: Emitted | None = None,
    ) -> None:
        problem = Problem(source, document, message, field_path, ref)
        self.result.problems.append(problem)
        if parent is not None:
            parent.problems.append(problem)


# How a NUL character gets into a YAML document: raw, or escaped in a double-quoted string.
# (Half a surrogate pair, which PostgreSQL cannot store either, only a `$json` placeholder
# makes: libyaml refuses the escape, and UTF-8 has no bytes for one.)
NUL_MARKS = (b"\x00", b"\\0", b"\\x00", b"\\u0000", b"\\U00000000")


def _unstorable(text: str) -> str | None:
    """What of `text` PostgreSQL would refuse to store, as a problem says it; None if nothing."""
    if "\x00" in text:
        return "a NUL character (\\0)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "half of a UTF-16 surrogate pair"
    return None


def _path_part(key: str) -> str:
    """A key as a problem's field path shows it: printable, and short."""
    shown = key if key.isprintable() else repr(key)[1:-1]
    return shown if len(shown) <= 60 else f"{shown[:60]}…"


def _refuse_unstorable(value: Any, path: str = "", depth: int = 0) -> None:
    """DescriptorError if a key or value anywhere holds what PostgreSQL stores in neither text
    nor JSON, or if placeholders made the document nest past the YAML limit, naming where."""
    if isinstance(value, str):
        unstorable = _unstorable(value)
        if unstorable:
            where = path or "<root>"
            raise DescriptorError(f"{where} holds {unstorable}, which is not stored", path)
    elif isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise DescriptorError(
                f"{path or '<root>'} nests lists and mappings more than {MAX_DEPTH} deep", path
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            inner = f"{path}.{_path_part(str(key))}" if path else _path_part(str(key))
            if isinstance(key, str):
                _refuse_unstorable(key, inner, depth + 1)
            _refuse_unstorable(item, inner, depth + 1)


def _refuse_constant(name: str) -> None:
    """NaN and Infinity are not JSON (Python reads them; PostgreSQL would refuse to store them)."""
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    """A JSON number too large for a float (`1e999`) is Infinity to Python, and no JSON."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:40]} is too large a number")
    return number


def _ref_of(data: Any) -> str | None:
    """The entity a rejected document meant to be, so its problem can be shown on its page."""
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        return None
    kind, metadata = data.get("kind"), data["metadata"]
    name, namespace = metadata.get("name"), metadata.get("namespace") or "default"
    if not all(isinstance(part, str) and part for part in (kind, name, namespace)):
        return None
    return f"{kind}:{namespace}/{name}".lower()


def _depends_on_more(emitted: Emitted) -> bool:
    """Whether what is stored of this entity depends on more than its document."""
    if emitted.valid.kind == "Location":
        return True
    annotations = emitted.valid.entity["metadata"].get("annotations") or {}
    return GATEWAY_ROUTES in annotations or AUDIENCE in annotations


def _is_within(path: str, folder: str) -> bool:
    """Whether a resolved path is the folder or under it (by parts: /a/bc is not in /a/b)."""
    return os.path.commonpath([path, folder]) == folder


def read_location(
    target: str, *, known: dict[str, str] | None = None, salt: str = ""
) -> ReadResult:
    """Read every descriptor of the location. A file of `known` whose `file_digest` (with
    `salt`) is still the one given is not parsed: it lands in the result's `kept`."""
    reader = _Reader(target, known=known, salt=salt)
    reader.read(reader.root)
    return reader.result
