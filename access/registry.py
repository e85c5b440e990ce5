"""The role registry's format (SPEC's "The role registry"): one entry per role, read from the
API, `import_roles` and the Roles page into one checked shape, and written back as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import re2

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
    # The policies of access/policy.py: step-up to decide, separation of duties, auto-approval
    # and break-glass.
    "sensitive", "conflictsWith", "autoApprove", "breakGlass",
)  # fmt: skip
# Read-only in the API's answers, so what a GET gave can be PUT back as it is.
READ_ONLY = ("name", "description", "memberCount", "nextReviewDue")
MOST_APPROVALS = 10
# A role conflicts with a handful of others, and has a few auto-approval rules, not hundreds.
MOST_CONFLICTS = 50
MOST_RULES = 20
# Role names, as Auth0 allows them.
ROLE_NAME_LENGTH = 255
# An auto-approval's reason pattern: a ticket pattern (`^INC-[0-9]+`), not a program.
PATTERN_LENGTH = 200
# Break-glass is for an emergency: at most a day, whatever the role allows otherwise.
BREAK_GLASS_LONGEST = timedelta(days=1)
# The review intervals Atrium offers, in months: what SOC 2 and ISO 27001 auditors expect to see
# (monthly to yearly). A week is too often to review with care; beyond a year is no control.
REVIEW_INTERVALS = {"P1M": 1, "P3M": 3, "P6M": 6, "P1Y": 12}


class RegistryError(ValueError):
    """An entry that cannot be used; the message names the field and says why."""


@dataclass(frozen=True)
class AutoApproveRule:
    """Members of `group` are granted the role at once, without a decision, for at most
    `max_duration`, when their reason matches `reason_pattern` (any reason when empty)."""

    group: str
    max_duration: timedelta
    reason_pattern: str = ""

    def reason_matches(self, reason: str) -> bool:
        return (
            not self.reason_pattern
            or reason_pattern_compile(self.reason_pattern).search(reason) is not None
        )


@dataclass(frozen=True)
class BreakGlassRule:
    """Members of `group` may grant themselves the role at once, for at most `max_duration`,
    saying why; the owners and admins are told and review the use."""

    group: str
    max_duration: timedelta


@dataclass(frozen=True)
class RegistryEntry:
    """A role's registry entry. Absent fields mean no such policy: no owners (so nobody can be
    granted it), requestable, the portal's longest grant, one approval, deciding with the
    sign-in one has, no conflict, no auto-approval, no break-glass."""

    owners: tuple[str, ...] = ()
    requestable: bool = True
    max_duration: timedelta | None = None
    min_approvals: int = 1
    sensitive: bool = False
    conflicts_with: tuple[str, ...] = ()
    auto_approve: tuple[AutoApproveRule, ...] = ()
    break_glass: BreakGlassRule | None = None
    # Access reviews: every this many months (None: no scheduled review), anchored to this day
    # (None: the day the schedule is set), and what is not reviewed this long after a review's
    # due date is removed (None: nothing is removed unreviewed).
    review_every: int | None = None
    review_day: date | None = None
    remove_unreviewed_after: timedelta | None = None


def registry_entry_parse(
    data: Mapping[str, Any], *, allowed: tuple[str, ...] = (), name: str = ""
) -> RegistryEntry:
    """A registry entry from its JSON or YAML form; `allowed` names other keys to ignore;
    `name`, the role's, when known (a role never conflicts with itself).

    Only the entry's own shape is checked here; the rules that read the rest of the portal
    (break-glass never on a protected role, conflicting roles that exist) are the policy's
    `registry_refusal`, which the services ask before anything is written."""
    if not isinstance(data, Mapping):
        raise RegistryError("an entry is a mapping of the fields " + ", ".join(FIELDS))
    for key in data:
        if key not in FIELDS and key not in allowed:
            raise RegistryError(f"{key}: unknown field; an entry has {', '.join(FIELDS)}")
    owners = _owners(data.get("owners", []))
    requestable = _boolean(data.get("requestable", True))
    max_duration = _duration(data.get("maxDuration"))
    min_approvals = _approvals(data.get("minApprovals", 1))
    review_every = _review_every(data.get("reviewEvery"))
    review_day = _review_day(data.get("reviewDay"))
    if review_day is not None and review_every is None:
        raise RegistryError("reviewDay: anchors reviewEvery's reviews; set reviewEvery too")
    remove_unreviewed_after = _remove_after(data.get("removeUnreviewedAfter"))
    rules = _auto_approve(data.get("autoApprove", []))
    for number, rule in enumerate(rules, start=1):
        if max_duration is not None and rule.max_duration > max_duration:
            raise RegistryError(
                f"autoApprove: rule {number}: maxDuration {duration_iso(rule.max_duration)} is "
                f"longer than the role's maxDuration {duration_iso(max_duration)}"
            )
    return RegistryEntry(
        owners=owners,
        requestable=requestable,
        max_duration=max_duration,
        min_approvals=min_approvals,
        review_every=review_every,
        review_day=review_day,
        remove_unreviewed_after=remove_unreviewed_after,
        sensitive=_boolean(data.get("sensitive", False), "sensitive"),
        conflicts_with=_conflicts(data.get("conflictsWith", []), name=name),
        auto_approve=rules,
        break_glass=_break_glass(data.get("breakGlass")),
    )


def _owners(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RegistryError("owners: a list of group references such as group:default/team-x")
    if len(value) > MAX_LIST:
        raise RegistryError(f"owners: {len(value):,} groups; at most {MAX_LIST:,}")
    return tuple(dict.fromkeys(_group(raw, "owners") for raw in value))


def _group(raw: Any, field: str) -> str:
    """A catalog group's ref (`group:default/team-x`; `team-x` for short), lower-cased."""
    if not isinstance(raw, str):
        raise RegistryError(f"{field}: {raw!r} is not a group reference")
    try:
        ref = parse_entity_ref(raw, default_kind="Group", default_namespace="default")
    except EntityRefError as error:
        raise RegistryError(f"{field}: {error}") from error
    if ref.kind.lower() != "group":
        raise RegistryError(f"{field}: {raw!r} is not a group; a role is owned by groups")
    return ref.key


def _boolean(value: Any, field: str = "requestable") -> bool:
    if not isinstance(value, bool):
        raise RegistryError(f"{field}: {value!r} is not true or false")
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


def _duration_required(value: Any, field: str) -> timedelta:
    duration = _duration(value, field)
    if duration is None:
        raise RegistryError(f"{field} is required")
    return duration


def _conflicts(value: Any, *, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RegistryError("conflictsWith: a list of role names such as payments.auditor")
    if len(value) > MOST_CONFLICTS:
        raise RegistryError(f"conflictsWith: {len(value):,} roles; at most {MOST_CONFLICTS}")
    names = []
    for raw in value:
        if not isinstance(raw, str) or not raw.strip() or len(raw) > ROLE_NAME_LENGTH:
            raise RegistryError(f"conflictsWith: {raw!r} is not a role name")
        if raw.strip() == name:
            raise RegistryError(f"conflictsWith: {name} cannot conflict with itself")
        names.append(raw.strip())
    return tuple(sorted(set(names)))


def _mapping(value: Any, field: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RegistryError(f"{field}: a mapping of {', '.join(keys)}")
    for key in value:
        if key not in keys:
            raise RegistryError(f"{field}: {key}: unknown field; it has {', '.join(keys)}")
    for key in keys[:2]:  # the group and the longest grant are required
        if value.get(key) is None:
            raise RegistryError(f"{field}: {key} is required")
    return value


AUTO_APPROVE_KEYS = ("group", "maxDuration", "reasonPattern")
BREAK_GLASS_KEYS = ("group", "maxDuration")


def _auto_approve(value: Any) -> tuple[AutoApproveRule, ...]:
    if not isinstance(value, list):
        raise RegistryError(
            "autoApprove: a list of rules such as {group: team-x, maxDuration: PT8H}"
        )
    if len(value) > MOST_RULES:
        raise RegistryError(f"autoApprove: {len(value):,} rules; at most {MOST_RULES}")
    rules = []
    for number, raw in enumerate(value, start=1):
        field = f"autoApprove: rule {number}"
        rule = _mapping(raw, field, AUTO_APPROVE_KEYS)
        rules.append(
            AutoApproveRule(
                group=_group(rule["group"], f"{field}: group"),
                max_duration=_duration_required(rule["maxDuration"], f"{field}: maxDuration"),
                reason_pattern=_pattern(rule.get("reasonPattern"), f"{field}: reasonPattern"),
            )
        )
    return tuple(rules)


def _break_glass(value: Any) -> BreakGlassRule | None:
    if value is None:
        return None
    rule = _mapping(value, "breakGlass", BREAK_GLASS_KEYS)
    duration = _duration_required(rule["maxDuration"], "breakGlass: maxDuration")
    if duration > BREAK_GLASS_LONGEST:
        raise RegistryError(
            f"breakGlass: maxDuration {duration_iso(duration)} is longer than a day (P1D): "
            "break-glass is for an emergency, granted for hours"
        )
    return BreakGlassRule(group=_group(rule["group"], "breakGlass: group"), max_duration=duration)


def _pattern(value: Any, field: str) -> str:
    """A reason pattern, checked by compiling it as it will run."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise RegistryError(f"{field}: {value!r} is not a regular expression")
    if len(value) > PATTERN_LENGTH:
        raise RegistryError(
            f"{field}: {len(value):,} characters; a reason pattern has at most {PATTERN_LENGTH}"
        )
    try:
        reason_pattern_compile(value)
    except re2.error as error:
        detail = error.args[0] if error.args else error
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        raise RegistryError(f"{field}: {value!r} is not a pattern Atrium runs: {detail}") from error
    return value


# Compiled patterns, by their text: a rule is read again on every request it is asked about.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
# RE2's memory for one pattern (its default is 8 MiB): a 200-character ticket pattern needs
# far less, and a pattern that would need more is refused when it is set.
_RE2_OPTIONS.max_mem = 1 << 20


@lru_cache(maxsize=256)
def reason_pattern_compile(pattern: str) -> Any:
    """The pattern as RE2 runs it, searched anywhere in the reason (`^` anchors it at the start).

    Admins write these patterns and every request's reason runs through them, so they run on
    RE2 (google-re2), not Python's `re`: RE2 matches in time linear in the reason whatever the
    pattern (no backtracking, so `(a+)+$` cannot hang a worker), in bounded memory, and it
    refuses what it cannot run that way (back-references, look-arounds) when the pattern is
    set, with the reason. The pattern's length is bounded too, for what the page shows."""
    return re2.compile(pattern, _RE2_OPTIONS)


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
            entries[name] = registry_entry_parse(item, allowed=("role",), name=name)
        except RegistryError as error:
            raise RegistryError(f"{where}: {error}") from error
    _conflicts_agree(entries, source=source)
    return list(entries.items())


def _conflicts_agree(entries: Mapping[str, RegistryEntry], *, source: str) -> None:
    """Conflicts are symmetric: a file naming both roles of a conflict says so in both entries
    (a role the file leaves out is given the conflict when the file is applied)."""
    for number, (name, entry) in enumerate(entries.items(), start=1):
        for other in entry.conflicts_with:
            if other in entries and name not in entries[other].conflicts_with:
                raise RegistryError(
                    f"{source}: entry {number} ({name}): conflictsWith: {other} is listed, but "
                    f"the entry of {other} does not list {name}; a conflict holds both ways"
                )


def registry_entry_of(role: Role) -> RegistryEntry:
    """The entry a role holds. Its policies were checked when they were set, and are stored in
    their JSON form: read back by the same parsers (a pattern is compiled once, and kept)."""
    return RegistryEntry(
        owners=tuple(role.owners),
        requestable=role.requestable,
        max_duration=role.max_duration,
        min_approvals=role.min_approvals,
        sensitive=role.sensitive,
        conflicts_with=tuple(role.conflicts_with),
        auto_approve=_auto_approve(role.auto_approve) if role.auto_approve else (),
        break_glass=_break_glass(role.break_glass),
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
        "sensitive": entry.sensitive,
        "conflictsWith": list(entry.conflicts_with),
        "autoApprove": [
            {
                "group": rule.group,
                "maxDuration": duration_iso(rule.max_duration),
                "reasonPattern": rule.reason_pattern or None,
            }
            for rule in entry.auto_approve
        ],  # fmt: skip
        "breakGlass": {
            "group": entry.break_glass.group,
            "maxDuration": duration_iso(entry.break_glass.max_duration),
        }
        if entry.break_glass
        else None,
        "reviewEvery": review_every_iso(entry.review_every),
        "reviewDay": entry.review_day.isoformat() if entry.review_day else None,
        "removeUnreviewedAfter": (
            duration_iso(entry.remove_unreviewed_after) if entry.remove_unreviewed_after else None
        ),
    }
