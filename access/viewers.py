"""What a person's viewer is read from, kept between requests in the cache (Redis).

`access.policy.viewer_for` builds a Viewer from three reads: the roles a person holds, the
catalog Users that are them, and those Users' groups. Every request needs it, and those reads
were most of a cheap API call's time, so their answer is kept here, under one version that
anything able to change it replaces (`viewers_changed`): a role membership written or removed
(by a grant, a revocation, a sync, a sign-in: the model's signals and the bulk writers' own
calls), and a catalog change (a refresh that changed entities, a location removed or allowed
other kinds). A changed version makes every kept answer stale at once: the next request of each
person reads again. Changes are rare beside reads, so one version for everyone costs little.

Besides the version:
- the key names the person by id, `sub`, e-mail and whether it is verified, so an e-mail
  changed at sign-in is a new key, and an answer kept for another account with a recycled id
  (a database made anew) is never found;
- a role that ends is dropped when it ends: a kept answer holding one that has ended is read
  again, and none is kept past the first end it holds;
- nothing is kept longer than `VIEWER_CACHE_SECONDS`, a bound for a version change the cache
  missed (it was unreachable when the change was made);
- when the cache cannot be read or written, the viewer is read from the database, as without
  it: an unreachable cache costs time, never a rule; without Redis (a cache of one process,
  deaf to changes made in another) nothing is kept.

The version is replaced twice: at once, and again when the transaction commits, so that a
request that read the database before the commit cannot keep its answer under the new version.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from access.models import Role, RoleMembership
from portal.models import User

logger = logging.getLogger(__name__)

VIEWER_CACHE_SECONDS = 60
_VERSION_KEY = "atrium:viewers:version"


@dataclass(frozen=True)
class ViewerParts:
    """What the database says of a person: each role held with its end (None: none), and
    the catalog Users that are them and their groups."""

    held: tuple[tuple[str, bool, datetime | None], ...]  # (role, portal grant that ends, end)
    user_refs: tuple[str, ...]
    group_refs: tuple[str, ...]

    def in_force(self, now: datetime) -> bool:
        """Whether every role held then is still held now."""
        return all(end is None or end > now for _, _, end in self.held)

    def seconds_left(self, now: datetime) -> int:
        """How long this answer may be kept: until its first end, at most the bound."""
        ends = [end for _, _, end in self.held if end is not None]
        if not ends:
            return VIEWER_CACHE_SECONDS
        return max(0, min(VIEWER_CACHE_SECONDS, int((min(ends) - now).total_seconds())))


def _key(user: User) -> str:
    who = f"{user.pk}\0{user.sub}\0{user.email.lower()}\0{bool(user.email_verified)}"
    return f"atrium:viewer:{hashlib.sha256(who.encode()).hexdigest()[:32]}"


def viewer_parts(user: User, read: Callable[[], ViewerParts]) -> ViewerParts:
    """This person's parts as kept in the cache, or `read` from the database (and kept)."""
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        # A cache of this process alone would not hear of changes made by another (a Celery
        # worker ending a grant): without Redis, every request reads.
        return read()
    key = _key(user)
    try:
        found: dict[str, Any] = cache.get_many([_VERSION_KEY, key])
    except Exception as error:  # the cache is down: read the database, as without it
        logger.warning("viewer cache unreadable, reading the database: %s", error)
        return read()
    version = found.get(_VERSION_KEY)
    kept = found.get(key)
    now = timezone.now()
    if (
        version is not None
        and isinstance(kept, tuple)
        and len(kept) == 2
        and kept[0] == version
        and isinstance(kept[1], ViewerParts)
        and kept[1].in_force(now)
    ):
        return kept[1]
    if version is None:
        version = _version_start(cache)
    # The version is read before the database: a change committed meanwhile replaces it, and
    # this answer, kept under the old one, is never used.
    parts = read()
    seconds = parts.seconds_left(now)
    if version is not None and seconds > 0:
        try:
            cache.set(key, (version, parts), seconds)
        except Exception as error:
            logger.warning("viewer cache unwritable: %s", error)
    return parts


def _version_start(cache: RedisCache) -> str | None:
    """The version when the cache has none (new, flushed or evicted); None if unreachable."""
    try:
        cache.add(_VERSION_KEY, secrets.token_hex(8), None)
        version: str | None = cache.get(_VERSION_KEY)
    except Exception as error:
        logger.warning("viewer cache unreadable: %s", error)
        return None
    return version


def viewers_version() -> str | None:
    """The version kept answers are valid under now, for other process caches that anything
    changing a viewer also changes (the gateways' routes and holdings, access.gateway); None
    without Redis or when it cannot be read: keep nothing then."""
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return None
    try:
        version: str | None = cache.get(_VERSION_KEY)
    except Exception as error:
        logger.warning("viewer cache unreadable: %s", error)
        return None
    return version if version is not None else _version_start(cache)


def viewers_forget_all() -> None:
    """Make every kept viewer stale now (`viewers_changed` does, within a transaction too)."""
    try:
        caches["default"].set(_VERSION_KEY, secrets.token_hex(8), None)
    except Exception as error:
        # Kept answers stay unreachable while the cache is; they lapse within the bound.
        logger.error("could not mark kept viewers stale: %s", error)


def viewers_changed() -> None:
    """Make every kept viewer stale: at once, and again once the transaction commits."""
    viewers_forget_all()
    transaction.on_commit(viewers_forget_all, robust=True)


# Within `viewers_changed_once`, the rows' signals only note that something changed.
_batch = threading.local()


@contextmanager
def viewers_changed_once() -> Iterator[None]:
    """A bulk delete of memberships (which sends a signal per row) makes kept viewers stale
    once, when it is done, rather than once a row."""
    if getattr(_batch, "open", False):
        yield
        return
    _batch.open, _batch.changed = True, False
    try:
        yield
    finally:
        changed = _batch.changed
        _batch.open = _batch.changed = False
        if changed:
            viewers_changed()


def _on_membership_change(sender: Any, **kwargs: Any) -> None:
    if getattr(_batch, "open", False):
        _batch.changed = True
        return
    viewers_changed()


# Memberships written one by one (grants, revocations, the admin, tests' factories) and roles
# (whose removal takes their memberships); bulk writers call viewers_changed themselves.
for _model in (RoleMembership, Role):
    post_save.connect(_on_membership_change, sender=_model, dispatch_uid=f"viewers:{_model}")
    post_delete.connect(_on_membership_change, sender=_model, dispatch_uid=f"viewers:{_model}:d")
