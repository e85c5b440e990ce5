"""Entity references (`[<kind>:][<namespace>/]<name>`), parsed with Backstage's defaulting."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.urls import NoReverseMatch, reverse

DEFAULT_NAMESPACE = "default"


class EntityRefError(ValueError):
    pass


@dataclass(frozen=True)
class EntityRef:
    """A reference as written (case kept); compare and store through `key`."""

    kind: str
    namespace: str
    name: str

    @cached_property
    def key(self) -> str:
        """Backstage's stringified form, every part lower-cased: names match case-insensitively.

        Kept once made: a refresh asks each reference for it several times."""
        return f"{self.kind.lower()}:{self.namespace.lower()}/{self.name.lower()}"

    def __str__(self) -> str:
        return self.key

    @property
    def url(self) -> str:
        """The entity's page: /catalog/<namespace>/<kind>/<name>/; empty for a reference no
        entity can answer (a relation may name `group:default/a/b`), shown as text."""

        try:
            return reverse(
                "catalog:entity_detail",
                kwargs={"namespace": self.namespace, "kind": self.kind.lower(), "name": self.name},
            )
        except NoReverseMatch:
            return ""


def parse_entity_ref(
    ref: object, *, default_kind: str | None = None, default_namespace: str = DEFAULT_NAMESPACE
) -> EntityRef:
    """Parse as Backstage's parseEntityRef does: the kind from the field, the namespace from
    the referring entity, unless the reference names them."""
    if not ref:
        raise EntityRefError("Entity reference must not be empty")
    if not isinstance(ref, str):
        raise EntityRefError(f"Entity reference {_json(ref)} was not a string")
    colon, slash = ref.find(":"), ref.find("/")
    if slash != -1 and colon > slash:
        colon = -1  # a ':' after the '/' belongs to the name
    kind = ref[:colon] if colon != -1 else None
    namespace_start = colon + 1 if colon != -1 else 0
    namespace = ref[namespace_start:slash] if slash != -1 else None
    name = ref[max(colon, slash) + 1 :]
    if kind == "" or namespace == "" or name == "":
        raise EntityRefError(
            f'Entity reference "{ref}" was not on the form [<kind>:][<namespace>/]<name>'
        )
    kind = kind or default_kind
    if not kind:
        raise EntityRefError(
            f"Entity reference {_json(ref)} had missing or empty kind "
            '(e.g. did not start with "component:" or similar)'
        )
    return EntityRef(kind=kind, namespace=namespace or default_namespace, name=name)


def parse_entity_ref_value(
    ref: object, *, default_kind: str | None = None, default_namespace: str = DEFAULT_NAMESPACE
) -> EntityRef:
    """parseEntityRef given whatever a descriptor's free-form field holds (Component's and
    Resource's `dependencyOf` have no schema): a string, or Backstage's compound form
    `{kind, namespace, name}` with the missing parts defaulted."""
    if isinstance(ref, str) or is_falsy_in_javascript(ref):
        return parse_entity_ref(ref, default_kind=default_kind, default_namespace=default_namespace)
    fields: dict[str, Any] = ref if isinstance(ref, dict) else {}
    kind, namespace, name = fields.get("kind"), fields.get("namespace"), fields.get("name")
    kind = default_kind if kind is None else kind
    namespace = default_namespace if namespace is None else namespace
    for part, value in (("kind", kind), ("namespace", namespace), ("name", name)):
        if is_falsy_in_javascript(value):
            hint = ' (e.g. did not start with "component:" or similar)' if part == "kind" else ""
            raise EntityRefError(f"Entity reference {_json(ref)} had missing or empty {part}{hint}")
    if not (isinstance(kind, str) and isinstance(namespace, str) and isinstance(name, str)):
        raise EntityRefError(
            f"Entity reference {_json(ref)} had a kind, namespace or name that is not a string"
        )
    return EntityRef(kind=kind, namespace=namespace, name=name)


def is_falsy_in_javascript(value: object) -> bool:
    """`!value` in JavaScript, for a value read from YAML: Backstage skips or refuses these."""
    if value is None or value is False or value == "":
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def _json(value: object) -> str:
    """JSON.stringify's text of a value, for Backstage's messages."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
