"""The words people read for what the access app records: the audit log's actions as sentences,
how a role came to be held, and through what a change was made. The raw names stay what the
API returns and the audit page filters on; these are for people."""

from __future__ import annotations

# Every action the portal records (`Actor.record` / `Actor.event`), as a sentence that reads
# before "by <person>". Grouped as the audit page's action filter lists them.
ACTIONS: dict[str, str] = {
    "request.created": "Asked for access",
    "request.approved": "Approved",
    "request.denied": "Denied",
    "request.cancelled": "Request withdrawn",
    "request.lapsed": "Lapsed without a decision",
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
    "review.opened": "Access review opened",
    "review.kept": "Kept in an access review",
    "review.removed": "Removed in an access review",
    "review.removal_done": "Access removed after a review",
    "review.removal_failed": "Removal after a review failed",
    "review.removal_superseded": "Removal after a review overtaken by a later approval",
    "review.removal_retried": "Removal after a review retried",
    "review.policy_removed": "Removed as not reviewed in time",
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
