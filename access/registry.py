"""The role registry's format (SPEC's "The role registry"): one entry per role, read from the
API, `import_roles` and the Roles page into one checked shape, and written back as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from access.models import Role
from catalog.refs import EntityRefError, parse_entity_ref
from catalog.yamlfiles import DescriptorFileError, load_documents
from portal.bounds import MAX_LIST
from portal.durations import DurationError, duration_iso, duration_parse

# What an entry sets, by its name in the API and in files.
FIELDS = ("owners", "requestable", "maxDuration", "minApprovals")
# SPEC's policies that come with later features. Refused rather than kept: a `sensitive: true`
# accepted and not enforced would tell an admin a role is guarded when it is not.
NOT_YET = ("reviewEvery", "sensitive", "conflictsWith", "autoApprove", "breakGlass")
# Read-only in the API's answers, so what a GET gave can be PUT back as it is.
READ_ONLY = ("name", "description", "memberCount")
MOST_APPROVALS = 10


class RegistryError(ValueError):
    """An entry that cannot be used; the message names the field and says why."""


@dataclass(frozen=True)
class RegistryEntry:
    """A role's registry entry. Absent fields mean no such policy: no owners (so nobody can be
    granted it), requestable, the portal's longest grant, one approval."""

    owners: tuple[str, ...] = ()
    requestable: bool = True
    max_duration: timedelta | None = None
    min_approvals: int = 1


def registry_entry_parse(
    data: Mapping[str, Any], *, allowed: tuple[str, ...] = ()
) -> RegistryEntry:
    """A registry entry from its JSON or YAML form; `allowed` names other keys to ignore."""
    if not isinstance(data, Mapping):
        raise RegistryError("an entry is a mapping of the fields " + ", ".join(FIELDS))
    for key in data:
        if key in NOT_YET:
            raise RegistryError(f"{key}: not supported by this version of Atrium yet")
        if key not in FIELDS and key not in allowed:
            raise RegistryError(f"{key}: unknown field; an entry has {', '.join(FIELDS)}")
    return RegistryEntry(
        owners=_owners(data.get("owners", [])),
        requestable=_boolean(data.get("requestable", True)),
        max_duration=_duration(data.get("maxDuration")),
        min_approvals=_approvals(data.get("minApprovals", 1)),
    )


def _owners(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RegistryError("owners: a list of group references such as group:default/team-x")
    if len(value) > MAX_LIST:
        raise RegistryError(f"owners: {len(value):,} groups; at most {MAX_LIST:,}")
    owners = []
    for raw in value:
        if not isinstance(raw, str):
            raise RegistryError(f"owners: {raw!r} is not a group reference")
        try:
            ref = parse_entity_ref(raw, default_kind="Group", default_namespace="default")
        except EntityRefError as error:
            raise RegistryError(f"owners: {error}") from error
        if ref.kind.lower() != "group":
            raise RegistryError(f"owners: {raw!r} is not a group; a role is owned by groups")
        owners.append(ref.key)
    return tuple(dict.fromkeys(owners))


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise RegistryError(f"requestable: {value!r} is not true or false")
    return value


def _duration(value: Any) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RegistryError(f"maxDuration: {value!r} is not an ISO 8601 duration such as P30D")
    try:
        return duration_parse(value)
    except DurationError as error:
        raise RegistryError(f"maxDuration: {error}") from error


def _approvals(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MOST_APPROVALS:
        raise RegistryError(
            f"minApprovals: {value!r} is not a whole number from 1 to {MOST_APPROVALS}"
        )
    return value


def registry_file_read(source: str) -> list[tuple[str, RegistryEntry]]:
    """Every entry of a registry file (a YAML list), checked; RegistryError naming the file, the
    first entry that is not valid and its field."""
    try:
        documents = load_documents(Path(source).read_bytes(), source=source)
    except OSError as error:
        raise RegistryError(f"{source}: {error.strerror or error}") from error
    except DescriptorFileError as error:
        raise RegistryError(str(error)) from error
    data = documents[0].data if documents else []
    if len(documents) > 1 or not isinstance(data, list):
        raise RegistryError(f"{source}: the file must hold one YAML list of role entries")
    entries: dict[str, RegistryEntry] = {}
    for number, item in enumerate(data, start=1):
        name = item.get("role") if isinstance(item, dict) else None
        where = f"{source}: entry {number}" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(name, str) or not name.strip():
            raise RegistryError(f"{where}: role: every entry names its role")
        if name in entries:
            raise RegistryError(f"{where}: role: {name} is named twice")
        try:
            entries[name] = registry_entry_parse(item, allowed=("role",))
        except RegistryError as error:
            raise RegistryError(f"{where}: {error}") from error
    return list(entries.items())


def registry_entry_of(role: Role) -> RegistryEntry:
    return RegistryEntry(
        owners=tuple(role.owners),
        requestable=role.requestable,
        max_duration=role.max_duration,
        min_approvals=role.min_approvals,
    )


def registry_entry_json(entry: RegistryEntry) -> dict[str, Any]:
    """The entry as the API and `import_roles` write it."""
    return {
        "owners": list(entry.owners),
        "requestable": entry.requestable,
        "maxDuration": duration_iso(entry.max_duration) if entry.max_duration else None,
        "minApprovals": entry.min_approvals,
    }
