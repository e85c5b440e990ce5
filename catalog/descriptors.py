"""Backstage descriptors validated by Backstage's own rules, and the relations they imply.

The checks run in the order Backstage's catalog runs them, and each failure carries the text
Backstage would report, so a descriptor Backstage rejects is rejected here with the same reason:
the envelope, then the entity policies (schema, foreign root fields, field formats), then the
kind's own schema, then the references that become relations.
"""

# Over 400 lines, kept whole: one validator whose checks run in Backstage's order with its
# wording; split up, that order would be spread over modules. The URL check is catalog.whatwg_url.

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from catalog.refs import (
    DEFAULT_NAMESPACE,
    EntityRef,
    EntityRefError,
    is_falsy_in_javascript,
    parse_entity_ref_value,
)
from catalog.whatwg_url import whatwg_url_parses

API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
ADR_LINK = (
    " To learn more about catalog file format, visit: https://github.com/backstage/backstage/"
    "blob/master/docs/architecture-decisions/adr002-default-catalog-file-format.md"
)

_DNS_LABEL = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_OBJECT_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_KIND = re.compile(r"[a-zA-Z][a-z0-9A-Z]*")
_API_VERSION_SUFFIX = re.compile(r"[a-z0-9A-Z]+")
_TAG = re.compile(r"[a-z0-9:+#]+(-[a-z0-9:+#]+)*")


class DescriptorError(Exception):
    """A descriptor Backstage would reject; `field` is the dotted path at fault, if one is."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message, self.field = message, field


# --- Backstage's validator functions ------------------------------------------------------------


def is_dns_label(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_DNS_LABEL.fullmatch(value))


def is_dns_subdomain(value: object) -> bool:
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 253
        and all(is_dns_label(part) for part in value.split("."))
    )


def is_object_name(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_OBJECT_NAME.fullmatch(value))


def _prefix_and_or_suffix(value: object, prefix_ok: Any, suffix_ok: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = value.split("/")
    if len(parts) == 1:
        return bool(suffix_ok(parts[0]))
    if len(parts) == 2:
        return bool(prefix_ok(parts[0]) and suffix_ok(parts[1]))
    return False


def is_api_version(value: object) -> bool:
    return _prefix_and_or_suffix(
        value,
        is_dns_subdomain,
        lambda s: 1 <= len(s) <= 63 and bool(_API_VERSION_SUFFIX.fullmatch(s)),
    )


def is_kind(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_KIND.fullmatch(value))


def is_label_key(value: object) -> bool:
    return _prefix_and_or_suffix(value, is_dns_subdomain, is_object_name)


def is_label_value(value: object) -> bool:
    return value == "" or is_object_name(value)


def is_annotation_value(value: object) -> bool:
    return isinstance(value, str)


def is_tag(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_TAG.fullmatch(value))


def is_url(value: object) -> bool:
    """Whether `new URL(value)` succeeds, as Backstage's isValidUrl asks: the WHATWG URL
    parser's failures, without building the URL (`catalog.whatwg_url`)."""
    return isinstance(value, str) and whatwg_url_parses(value)


def is_nonempty_string(value: object) -> bool:
    return isinstance(value, str) and len(value.strip()) >= 1


EXPECTATIONS = {
    is_object_name: "a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], "
    "at most 63 characters in total",
    is_label_value: "a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], "
    "at most 63 characters in total",
    is_label_key: "a valid prefix and/or suffix",
    is_api_version: "a valid prefix and/or suffix",
    is_dns_label: "a string that is sequences of [a-z0-9] separated by [-], "
    "at most 63 characters in total",
    is_tag: "a string that is sequences of [a-z0-9+#] separated by [-], "
    "at most 63 characters in total",
    is_annotation_value: "a string",
    is_kind: "a string that is a sequence of [a-zA-Z][a-z0-9A-Z], at most 63 characters in total",
    is_url: "a string that is a valid url",
    is_nonempty_string: "a non empty string",
}


def _js_string(value: object) -> str:
    """How JavaScript prints a value inside a template string, for Backstage's messages."""
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return ",".join(_js_string(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _policy_error(message: str, field_path: str) -> DescriptorError:
    return DescriptorError(f"Policy check failed; caused by Error: {message}", field_path)


def _require(field_path: str, value: object, check: Any) -> None:
    if value is None:
        raise _policy_error(f"{field_path} must have a value", field_path)
    if not check(value):
        expectation = EXPECTATIONS.get(check)
        detail = f' expected {expectation} but found "{_js_string(value)}".' if expectation else ""
        raise _policy_error(f'"{field_path}" is not valid;{detail}{ADR_LINK}', field_path)


# --- JSON-schema-like checks, worded as Ajv words them ---------------------------------------


def _pointer(path: str) -> str:
    return path or "<root>"


def _schema_string(value: Any, path: str) -> str | None:
    """Ajv's message for a value that must be a non-empty string, else None."""
    if not isinstance(value, str):
        return f"{_pointer(path)} must be string - type: string"
    if len(value) < 1:
        return f"{_pointer(path)} must NOT have fewer than 1 characters - limit: 1"
    return None


def _schema_string_array(value: Any, path: str) -> str | None:
    if not isinstance(value, list):
        return f"{_pointer(path)} must be array - type: array"
    for index, item in enumerate(value):
        problem = _schema_string(item, f"{path}/{index}")
        if problem:
            return problem
    return None


def _schema_profile(value: Any, path: str) -> str | None:
    """User and Group `spec.profile`: an object whose known fields are non-empty strings."""
    if not isinstance(value, dict):
        return f"{path} must be object - type: object"
    for key in ("displayName", "email", "picture"):
        if key in value:
            problem = _schema_string(value[key], f"{path}/{key}")
            if problem:
                return problem
    return None


def _schema_presence(value: Any, path: str) -> str | None:
    """Location `spec.presence`."""
    if not isinstance(value, str):
        return f"{path} must be string - type: string"
    if value not in ("required", "optional"):
        return (
            f"{path} must be equal to one of the allowed values - allowedValues: required,optional"
        )
    return None


def _envelope_problem(entity: dict[str, Any]) -> str | None:
    for key in ("apiVersion", "kind", "metadata"):
        if key not in entity:
            return f"<root> must have required property '{key}' - missingProperty: {key}"
    for key in ("apiVersion", "kind"):
        problem = _schema_string(entity[key], f"/{key}")
        if problem:
            return problem
    metadata = entity["metadata"]
    if not isinstance(metadata, dict):
        return "/metadata must be object - type: object"
    if "name" not in metadata:
        return "/metadata must have required property 'name' - missingProperty: name"
    problem = _schema_string(metadata["name"], "/metadata/name")
    if problem is None and "namespace" in metadata:
        problem = _schema_string(metadata["namespace"], "/metadata/namespace")
    return problem


_ENTITY_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec", "relations", "status"})


def _entity_schema_problem(entity: dict[str, Any]) -> str | None:
    """The first failure against Backstage's Entity schema, in the order Ajv checks it."""
    for key in entity:
        if key not in _ENTITY_FIELDS:
            return f"<root> must NOT have additional properties - additionalProperty: {key}"
    problem = _metadata_problem(entity["metadata"])
    if problem:
        return problem
    for key, expected in (("spec", dict), ("relations", list), ("status", dict)):
        if key in entity and not isinstance(entity[key], expected):
            shape = "object" if expected is dict else "array"
            return f"/{key} must be {shape} - type: {shape}"
    return None


def _metadata_problem(metadata: dict[str, Any]) -> str | None:
    """Backstage's EntityMeta schema: types of the well-known metadata fields."""
    for key in ("uid", "etag", "name", "namespace", "title"):
        if key in metadata:
            problem = _schema_string(metadata[key], f"/metadata/{key}")
            if problem:
                return problem
    if "description" in metadata and not isinstance(metadata["description"], str):
        return "/metadata/description must be string - type: string"
    for key in ("labels", "annotations"):
        if key in metadata:
            mapping = metadata[key]
            if not isinstance(mapping, dict):
                return f"/metadata/{key} must be object - type: object"
            for name, value in mapping.items():
                if not isinstance(value, str):
                    return f"/metadata/{key}/{_pointer_part(name)} must be string - type: string"
    if "tags" in metadata:
        problem = _schema_string_array(metadata["tags"], "/metadata/tags")
        if problem:
            return problem
    if "links" in metadata:
        links = metadata["links"]
        if not isinstance(links, list):
            return "/metadata/links must be array - type: array"
        for index, link in enumerate(links):
            path = f"/metadata/links/{index}"
            if not isinstance(link, dict):
                return f"{path} must be object - type: object"
            if "url" not in link:
                return f"{path} must have required property 'url' - missingProperty: url"
            for key in ("url", "title", "icon", "type"):
                if key in link:
                    problem = _schema_string(link[key], f"{path}/{key}")
                    if problem:
                        return problem
    return None


# --- Kinds --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelationSpec:
    field: str
    default_kind: str | None
    outgoing: str
    incoming: str


# The shapes a kind's schema gives its spec fields.
STRING, STRINGS, PROFILE, PRESENCE = "string", "strings", "profile", "presence"
_SHAPE_PROBLEM = {
    STRING: _schema_string,
    STRINGS: _schema_string_array,
    PROFILE: _schema_profile,
    PRESENCE: _schema_presence,
}


@dataclass(frozen=True)
class KindSpec:
    """A kind's JSON schema in catalog-model 1.10.1: its required spec fields and the shapes of
    those it names, in the schema's order (Ajv reports the first failure in that order). Fields
    it does not name (Component's and Resource's `dependencyOf`) may hold anything."""

    required: tuple[str, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()
    relations: tuple[RelationSpec, ...] = ()


def _owner() -> RelationSpec:
    return RelationSpec("owner", "Group", "ownedBy", "ownerOf")


def _system() -> RelationSpec:
    return RelationSpec("system", "System", "partOf", "hasPart")


KINDS: dict[str, KindSpec] = {
    "Component": KindSpec(
        required=("type", "lifecycle", "owner"),
        properties=(
            ("type", STRING),
            ("lifecycle", STRING),
            ("owner", STRING),
            ("system", STRING),
            ("subcomponentOf", STRING),
            ("providesApis", STRINGS),
            ("consumesApis", STRINGS),
            ("dependsOn", STRINGS),
        ),
        relations=(
            _owner(),
            RelationSpec("subcomponentOf", "Component", "partOf", "hasPart"),
            RelationSpec("providesApis", "API", "providesApi", "apiProvidedBy"),
            RelationSpec("consumesApis", "API", "consumesApi", "apiConsumedBy"),
            RelationSpec("dependsOn", None, "dependsOn", "dependencyOf"),
            RelationSpec("dependencyOf", None, "dependencyOf", "dependsOn"),
            _system(),
        ),
    ),
    "API": KindSpec(
        required=("type", "lifecycle", "owner", "definition"),
        properties=(
            ("type", STRING),
            ("lifecycle", STRING),
            ("owner", STRING),
            ("system", STRING),
            ("definition", STRING),
        ),
        relations=(_owner(), _system()),
    ),
    "Resource": KindSpec(
        required=("type", "owner"),
        properties=(
            ("type", STRING),
            ("owner", STRING),
            ("dependsOn", STRINGS),
            ("system", STRING),
        ),
        relations=(
            _owner(),
            RelationSpec("dependsOn", None, "dependsOn", "dependencyOf"),
            RelationSpec("dependencyOf", None, "dependencyOf", "dependsOn"),
            _system(),
        ),
    ),
    "System": KindSpec(
        required=("owner",),
        properties=(("owner", STRING), ("domain", STRING), ("type", STRING)),
        relations=(_owner(), RelationSpec("domain", "Domain", "partOf", "hasPart")),
    ),
    "Domain": KindSpec(
        required=("owner",),
        properties=(("owner", STRING), ("subdomainOf", STRING), ("type", STRING)),
        relations=(_owner(), RelationSpec("subdomainOf", "Domain", "partOf", "hasPart")),
    ),
    "Group": KindSpec(
        required=("type", "children"),
        properties=(
            ("type", STRING),
            ("profile", PROFILE),
            ("parent", STRING),
            ("children", STRINGS),
            ("members", STRINGS),
        ),
        relations=(
            RelationSpec("parent", "Group", "childOf", "parentOf"),
            RelationSpec("children", "Group", "parentOf", "childOf"),
            RelationSpec("members", "User", "hasMember", "memberOf"),
        ),
    ),
    "User": KindSpec(
        required=("memberOf",),
        properties=(("profile", PROFILE), ("memberOf", STRINGS)),
        relations=(RelationSpec("memberOf", "Group", "memberOf", "hasMember"),),
    ),
    "Location": KindSpec(
        properties=(
            ("type", STRING),
            ("target", STRING),
            ("targets", STRINGS),
            ("presence", PRESENCE),
        ),
    ),
}


def _kind_problem(spec_of_kind: KindSpec, spec: Any) -> str | None:
    if not isinstance(spec, dict):
        return "/spec must be object - type: object"
    for name in spec_of_kind.required:
        if name not in spec:
            return f"/spec must have required property '{name}' - missingProperty: {name}"
    for name, shape in spec_of_kind.properties:
        if name in spec:
            problem = _SHAPE_PROBLEM[shape](spec[name], f"/spec/{name}")
            if problem:
                return problem
    return None


# --- The whole check ------------------------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    type: str
    source: EntityRef
    target: EntityRef


@dataclass
class ValidEntity:
    """An entity Backstage would accept: namespace defaulted, with its relations both ways."""

    ref: EntityRef
    entity: dict[str, Any]
    relations: list[Relation] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.ref.kind


def validate_entity(data: Any) -> ValidEntity:
    """The entity as Backstage's catalog would accept it, or DescriptorError with its reason."""
    if not isinstance(data, dict):
        raise DescriptorError(f"Expected object at root, got {_js_type(data)}")
    problem = _envelope_problem(data)
    if problem:
        raise DescriptorError(
            "Entity envelope failed validation before processing; caused by TypeError: " + problem,
            _field_of(problem),
        )
    # Policies, in Backstage's order: schema, default namespace, foreign root fields, formats.
    problem = _entity_schema_problem(data)
    if problem:
        # This policy's Ajv reports the message without its parameters.
        message = problem.rpartition(" - ")[0] or problem
        raise _policy_error(f"Malformed envelope, {message}", _field_of(problem))
    entity = {**data, "metadata": {**data["metadata"]}}
    entity["metadata"].setdefault("namespace", DEFAULT_NAMESPACE)
    if not entity["metadata"]["namespace"]:
        entity["metadata"]["namespace"] = DEFAULT_NAMESPACE
    for key in entity:
        if key not in {"apiVersion", "kind", "metadata", "spec"}:
            raise _policy_error(f"Unknown field {key}", key)
    _check_field_formats(entity)

    kind_spec = KINDS.get(entity["kind"])
    if kind_spec is None or entity["apiVersion"] not in API_VERSIONS:
        raise DescriptorError(
            "No processor recognized the entity as valid, possibly caused by a foreign kind "
            "or apiVersion",
            "kind" if kind_spec is None else "apiVersion",
        )
    if "spec" not in entity:
        problem = "<root> must have required property 'spec' - missingProperty: spec"
    else:
        problem = _kind_problem(kind_spec, entity["spec"])
    if problem:
        raise DescriptorError(
            "Processor BuiltinKindsEntityProcessor threw an error while validating the entity; "
            f"caused by TypeError: {problem}",
            _field_of(problem),
        )
    metadata = entity["metadata"]
    ref = EntityRef(kind=entity["kind"], namespace=metadata["namespace"], name=metadata["name"])
    return ValidEntity(ref=ref, entity=entity, relations=_relations(ref, kind_spec, entity["spec"]))


def _check_field_formats(entity: dict[str, Any]) -> None:
    metadata = entity["metadata"]
    _require("apiVersion", entity.get("apiVersion"), is_api_version)
    _require("kind", entity.get("kind"), is_kind)
    _require("metadata.name", metadata.get("name"), is_object_name)
    _require("metadata.namespace", metadata.get("namespace"), is_dns_label)
    for key, value in (metadata.get("labels") or {}).items():
        _require(f"labels.{key}", key, is_label_key)
        _require(f"labels.{key}", value, is_label_value)
    for key, value in (metadata.get("annotations") or {}).items():
        _require(f"annotations.{key}", key, is_label_key)
        _require(f"annotations.{key}", value, is_annotation_value)
    for index, tag in enumerate(metadata.get("tags") or []):
        _require(f"tags.{index}", tag, is_tag)
    for index, link in enumerate(metadata.get("links") or []):
        _require(f"links.{index}.url", link.get("url"), is_url)
        if "title" in link:
            _require(f"links.{index}.title", link["title"], is_nonempty_string)
        if "icon" in link:
            _require(f"links.{index}.icon", link["icon"], is_nonempty_string)


# References are stored in varchar(300) columns (Relation's source and target, Entity's owner
# and system). Backstage has no such limit; Atrium refuses a longer reference, deliberately,
# rather than fail the whole refresh when the database refuses it.
MAX_REF_LENGTH = 300


def _relations(ref: EntityRef, kind_spec: KindSpec, spec: dict[str, Any]) -> list[Relation]:
    relations: list[Relation] = []
    for relation in kind_spec.relations:
        targets = spec.get(relation.field)
        if is_falsy_in_javascript(targets):  # Backstage's `if (!targets) return`
            continue
        for target in targets if isinstance(targets, list) else [targets]:
            try:
                other = parse_entity_ref_value(
                    target, default_kind=relation.default_kind, default_namespace=ref.namespace
                )
            except EntityRefError as error:
                raise DescriptorError(
                    "Processor BuiltinKindsEntityProcessor threw an error while postprocessing; "
                    f"caused by Error: {error}",
                    f"spec.{relation.field}",
                ) from error
            if len(other.key) > MAX_REF_LENGTH:
                raise DescriptorError(
                    f"spec.{relation.field}: entity reference is {len(other.key)} characters; "
                    f"at most {MAX_REF_LENGTH}",
                    f"spec.{relation.field}",
                )
            relations.append(Relation(relation.outgoing, ref, other))
            relations.append(Relation(relation.incoming, other, ref))
    return relations


def _pointer_part(key: str) -> str:
    """A key as a JSON pointer writes it, as in Ajv's messages: `a/b` is `a~1b`."""
    return key.replace("~", "~0").replace("/", "~1")


def _field_of(problem: str) -> str:
    """`metadata.name` from an Ajv-style message such as `/metadata/name must be string`."""
    path = problem.split(" ", 1)[0]
    parts = [
        part.replace("~1", "/").replace("~0", "~")
        for part in ([] if path == "<root>" else path.strip("/").split("/"))
    ]
    missing = re.search(r"(?:missingProperty|additionalProperty): (\S+)", problem)
    if missing:
        parts.append(missing.group(1))
    return ".".join(parts)


def _js_type(value: object) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "object"
