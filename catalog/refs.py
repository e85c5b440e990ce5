"""Entity references (`[<kind>:][<namespace>/]<name>`), parsed with Backstage's defaulting."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

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
        """The entity's page: /catalog/<namespace>/<kind>/<name>/."""
        from django.urls import reverse

        return reverse(
            "catalog:entity_detail",
            kwargs={"namespace": self.namespace, "kind": self.kind.lower(), "name": self.name},
        )


def parse_entity_ref(
    ref: object, *, default_kind: str | None = None, default_namespace: str = DEFAULT_NAMESPACE
) -> EntityRef:
    """Parse as Backstage's parseEntityRef does: the kind from the field, the namespace from
    the referring entity, unless the reference names them."""
    if not ref:
        raise EntityRefError("Entity reference must not be empty")
    if not isinstance(ref, str):
        raise EntityRefError(f"Entity reference {json.dumps(ref)} was not a string")
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
            f"Entity reference {json.dumps(ref)} had missing or empty kind "
            '(e.g. did not start with "component:" or similar)'
        )
    return EntityRef(kind=kind, namespace=namespace or default_namespace, name=name)
