"""The words people read for what the access app records: the audit log's actions as sentences,
how a role came to be held, and through what a change was made. The raw names stay what the
API returns and the audit page filters on; these are for people."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from access.registry import AutoApproveRule, BreakGlassRule, RegistryEntry
from portal.durations import duration_words

# Every action the portal records (`Actor.record` / `Actor.event`), as a sentence that reads
# before "by <person>". Grouped as the audit page's action filter lists them.
ACTIONS: dict[str, str] = {
    "request.created": "Asked for access",
    "request.approved": "Approved",
    "request.denied": "Denied",
    "request.cancelled": "Request withdrawn",
    "request.lapsed": "Lapsed without a decision",
    "request.auto_approved": "Approved at once by rule",
    "request.break_glass": "Break-glass: taken at once",
    "request.review_opened": "Review of the use opened",
    "grant.activated": "Access granted",
    "grant.extended": "Access extended",
    "grant.expired": "Access ended",
    "grant.ended": "Access ended",
    "grant.revoked": "Access revoked",
    "grant.failed": "Granting failed",
    "grant.refused": "Granting refused",
    "grant.retried": "Granting retried",
    "role.imported": "Role found in Auth0",
    "role.removed": "Role removed in Auth0",
    "role.gone": "Role deleted in Auth0",
    "role.registry_changed": "Owners or rules changed",
    "auth.stepped_up": "Confirmed with MFA",
    "review.opened": "Access review opened",
    "review.kept": "Kept in an access review",
    "review.removed": "Removed in an access review",
    "review.removal_done": "Access removed after a review",
    "review.removal_failed": "Removal after a review failed",
    "review.removal_superseded": "Removal after a review overtaken by a later approval",
    "review.removal_retried": "Removal after a review retried",
    "review.policy_removed": "Removed as not reviewed in time",
    "review.policy_withheld": "Last admins left by the removal policy",
    "review.completed": "Access review completed",
    "review.reminded": "Reviewers told",
    "user.deactivated": "Account deactivated",
    "user.reactivated": "Account reactivated",
    "sync.blocked": "Sync stopped by the breaker",
    "auth.signed_in": "Signed in",
    "auth.signed_out": "Signed out",
    "catalog.location_registered": "Location registered",
    "catalog.location_removed": "Location removed",
    "catalog.entity_removed": "Entity removed",
    "authz.denied": "Refused at a gateway",
}

# Through what a change came, where it is worth saying; the web, the worker and the sync are
# how things usually happen, and go unsaid.
VIAS = {"api": "through the API", "cli": "from the command line"}

# How a membership came to be, said of the person reading ("your") or of someone else ("their").
SOURCES = {
    "sign_in": "from {whose} last sign-in",
    "auth0": "granted in Auth0 directly",
    "portal_grant": "granted through Atrium",
}


def action_words(action: str) -> str:
    """The sentence of an action ("Access granted" for `grant.activated`); one this module
    does not know, as it was recorded."""
    return ACTIONS.get(action, action)


def via_words(via: str) -> str:
    """Through what, when it is worth saying: "through the API", "from the command line"."""
    return VIAS.get(via, "")


def source_words(source: str, whose: str = "their") -> str:
    """How a role is held: "from your last sign-in", "granted through Atrium", …"""
    return SOURCES.get(source, source).format(whose=whose)


def names_words(names: list[str]) -> str:
    """People listed as a sentence says them: "Grace Hopper and Alan Turing"."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


# --- the registry's policies, as the role page and the request form say them -----------------


def rule_words(rule: AutoApproveRule, group: Callable[[str], str] = str) -> str:
    """ "members of group:default/team-x, for at most 8 hours, with a reason matching ^INC-"."""
    said = f"members of {group(rule.group)}, for at most {duration_words(rule.max_duration)}"
    if rule.reason_pattern:
        said += f", with a reason matching {rule.reason_pattern}"
    return said


def break_glass_words(rule: BreakGlassRule, group: Callable[[str], str] = str) -> str:
    return (
        f"Members of {group(rule.group)} may break glass: take it themselves at once, for at "
        f"most {duration_words(rule.max_duration)}, saying why. Every owner and portal admin "
        "is told at once, and the owners review the use."
    )


def registry_words(
    entry: RegistryEntry, *, name: str, group: Callable[[str], str] = str
) -> list[str]:
    """Each policy of a role's entry as a sentence: "Members of Payments may have it for at
    most 8 hours without review, with a reason matching ^INC-[0-9]+." `group` names a group
    ref as the page does (its title)."""
    said = []
    if entry.owners:
        owners = names_words([group(ref) for ref in entry.owners])
        approvals = (
            "an approval" if entry.min_approvals == 1 else f"{entry.min_approvals} approvals"
        )
        said.append(f"A request needs {approvals} from {owners}.")
    if entry.max_duration:
        said.append(f"Nobody is granted it for more than {duration_words(entry.max_duration)}.")
    if not entry.requestable:
        said.append("It takes no requests.")
    for rule in entry.auto_approve:
        also = f", with a reason matching {rule.reason_pattern}" if rule.reason_pattern else ""
        said.append(
            f"Members of {group(rule.group)} may have it for "
            f"{duration_words(rule.max_duration)} without review{also}."
        )
    if entry.break_glass:
        said.append(break_glass_words(entry.break_glass, group))
    if entry.sensitive:
        fresh = duration_words(settings.ACCESS_STEP_UP_MAX_AGE)
        said.append(
            f"Sensitive: whoever approves or denies a request confirms with a multi-factor "
            f"sign-in (within the last {fresh})."
        )
    if entry.conflicts_with:
        said.append(f"Nobody may hold it together with {names_words(list(entry.conflicts_with))}.")
    return said
