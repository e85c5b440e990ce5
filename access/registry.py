"""The role registry's format (SPEC's "The role registry"): one entry per role, read from the
API, `import_roles` and the Roles page into one checked shape, and written back as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from access.models import Role
from catalog.refs import EntityRefError, parse_entity_ref
from catalog.yamlfiles import DescriptorFileError, load_documents
from portal.bounds import MAX_LIST
from portal.durations import DurationError, duration_iso, duration_parse

# What an entry sets, by its name in the API and in files.
FIELDS = (
    "owners", "requestable", "maxDuration", "minApprovals",
    # Access reviews (access/reviews.py): how often the owners re-certify the holders, the day
    # the reviews are anchored to, and what is removed when nobody reviewed it in time.
    "reviewEvery", "reviewDay", "removeUnreviewedAfter",
)  # fmt: skip
# SPEC's policies that come with later features. Refused rather than kept: a `sensitive: true`
# accepted and not enforced would tell an admin a role is guarded when it is not.
NOT_YET = ("sensitive", "conflictsWith", "autoApprove", "breakGlass")
# Read-only in the API's answers, so what a GET gave can be PUT back as it is.
READ_ONLY = ("name", "description", "memberCount", "nextReviewDue")
MOST_APPROVALS = 10
# The review intervals Atrium offers, in months: what SOC 2 and ISO 27001 auditors expect to see
# (monthly to yearly). A week is too often to review with care; beyond a year is no control.
REVIEW_INTERVALS = {"P1M": 1, "P3M": 3, "P6M": 6, "P1Y": 12}


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
    # Access reviews: every this many months (None: no scheduled review), anchored to this day
    # (None: the day the schedule is set), and what is not reviewed this long after a review's
    # due date is removed (None: nothing is removed unreviewed).
    review_every: int | None = None
    review_day: date | None = None
    remove_unreviewed_after: timedelta | None = None


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
    review_every = _review_every(data.get("reviewEvery"))
    review_day = _review_day(data.get("reviewDay"))
    if review_day is not None and review_every is None:
        raise RegistryError("reviewDay: anchors reviewEvery's reviews; set reviewEvery too")
    return RegistryEntry(
        owners=_owners(data.get("owners", [])),
        requestable=_boolean(data.get("requestable", True)),
        max_duration=_duration(data.get("maxDuration")),
        min_approvals=_approvals(data.get("minApprovals", 1)),
        review_every=review_every,
        review_day=review_day,
        remove_unreviewed_after=_remove_after(data.get("removeUnreviewedAfter")),
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


def _duration(value: Any, field: str = "maxDuration") -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RegistryError(f"{field}: {value!r} is not an ISO 8601 duration such as P30D")
    try:
        return duration_parse(value)
    except DurationError as error:
        raise RegistryError(f"{field}: {error}") from error


def _review_every(value: Any) -> int | None:
    if value is None:
        return None
    months = REVIEW_INTERVALS.get(value.strip().upper()) if isinstance(value, str) else None
    if months is None:
        raise RegistryError(
            f"reviewEvery: {value!r} is not one of {', '.join(REVIEW_INTERVALS)} "
            "(every 1, 3, 6 or 12 months)"
        )
    return months


def _review_day(value: Any) -> date | None:
    """An ISO date (`2025-01-15`); YAML 1.2, as the files are read, leaves it a string."""
    if value is None:
        return None
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise RegistryError(f"reviewDay: {value!r} is not a date such as 2025-01-15")


def _remove_after(value: Any) -> timedelta | None:
    """Whole days, from one day to a year (P14D)."""
    removal = _duration(value, "removeUnreviewedAfter")
    if removal is not None and (removal.seconds or removal.microseconds):
        raise RegistryError(
            f"removeUnreviewedAfter: {value!r} is not a number of days such as P14D"
        )
    return removal


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
        review_every=role.review_every,
        review_day=role.review_day,
        remove_unreviewed_after=role.review_remove_after,
    )


def review_every_iso(months: int | None) -> str | None:
    """P1M, P3M, P6M, P1Y: the interval as the registry writes it."""
    return next((iso for iso, each in REVIEW_INTERVALS.items() if each == months), None)


def registry_entry_json(entry: RegistryEntry) -> dict[str, Any]:
    """The entry as the API and `import_roles` write it."""
    return {
        "owners": list(entry.owners),
        "requestable": entry.requestable,
        "maxDuration": duration_iso(entry.max_duration) if entry.max_duration else None,
        "minApprovals": entry.min_approvals,
        "reviewEvery": review_every_iso(entry.review_every),
        "reviewDay": entry.review_day.isoformat() if entry.review_day else None,
        "removeUnreviewedAfter": (
            duration_iso(entry.remove_unreviewed_after) if entry.remove_unreviewed_after else None
        ),
    }
