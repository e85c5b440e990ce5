"""The roles mirror: which Auth0 roles exist and who holds them, with where each came from."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.models import User


class Role(models.Model):
    """An Auth0 role, known from a sign-in token or from the Management API, with its entry in
    the role registry: who owns it and how it may be granted (SPEC's "The role registry").

    The registry is Atrium's, never a descriptor's: portal admins set it on the Roles pages,
    through `PUT /api/access/roles/{name}` or `import_roles`. A new role has no owners, so
    nobody can be granted it through the portal until an admin says who decides.
    """

    name = models.CharField(max_length=255, unique=True)
    auth0_id = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    # Set when a sync no longer finds the role in Auth0: entities declaring it are flagged.
    gone_at = models.DateTimeField(null=True, blank=True)
    # Catalog group refs (`group:default/team-payments`, lower-case) whose members decide.
    owners = models.JSONField(default=list, blank=True)
    requestable = models.BooleanField(default=True)
    # The longest grant, whatever an entity declares; none: the portal's ACCESS_MAX_DURATION.
    max_duration = models.DurationField(null=True, blank=True)
    # An entity's `atrium.dev/approvals-required` may raise it, never lower it.
    min_approvals = models.PositiveSmallIntegerField(default=1)
    # Access reviews (access/reviews.py): every this many months (none: no scheduled review),
    # anchored to review_day as the registry says it, else to the day the schedule was set
    # (review_anchor keeps whichever it is, so the dates do not drift).
    review_every = models.PositiveSmallIntegerField(null=True, blank=True)
    review_day = models.DateField(null=True, blank=True)
    review_anchor = models.DateField(null=True, blank=True)
    # When the next scheduled review falls due; moved on as each one opens.
    review_next_due = models.DateTimeField(null=True, blank=True)
    # What is not reviewed this long after a review's due date is removed; none: nothing is.
    review_remove_after = models.DurationField(null=True, blank=True)
    # Deciding a request for it needs a fresh multi-factor sign-in.
    sensitive = models.BooleanField(default=False)
    # Role names nobody may hold together with this one (kept on both roles of a conflict).
    conflicts_with = models.JSONField(default=list, blank=True)
    # Auto-approval rules and the break-glass rule, in the registry's JSON form
    # (`access.registry` reads and checks them).
    auto_approve = models.JSONField(default=list, blank=True)
    break_glass = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def in_force(through: str = "") -> models.Q:
    """Memberships in force now: without an end, or ending in the future. `through` reaches
    them from another model (`"memberships__"` from a Role)."""
    return models.Q(**{f"{through}expires_at__isnull": True}) | models.Q(
        **{f"{through}expires_at__gt": timezone.now()}
    )


class RoleMembershipQuerySet(models.QuerySet["RoleMembership"]):
    def active(self) -> RoleMembershipQuerySet:
        return self.filter(in_force())

    def held_by(self, user: User) -> list[tuple[str, str, datetime | None]]:
        """(role name, source, end) of each role this person holds now."""
        held = self.active().filter(user=user)
        return list(held.values_list("role__name", "source", "expires_at"))


class RoleMembership(models.Model):
    """A person holds a role. `source` says how the portal learned it."""

    class Source(models.TextChoices):
        SIGN_IN = "sign_in", "seen in a sign-in token"
        AUTH0 = "auth0", "granted outside the portal"
        PORTAL_GRANT = "portal_grant", "granted by the portal"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_memberships"
    )
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="memberships")
    source = models.CharField(max_length=20, choices=Source.choices)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RoleMembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "role"], name="one_membership_per_role"),
        ]
        ordering = ["role__name"]

    def __str__(self) -> str:
        return f"{self.user} holds {self.role} ({self.get_source_display()})"


class RoleSyncRun(models.Model):
    """One mirroring of Auth0's roles: when, how it ended, what it changed, what it cost."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "running"
        OK = "ok", "applied"
        DRY_RUN = "dry_run", "dry run: nothing applied"
        FAILED = "failed", "failed: nothing applied"
        BLOCKED = "blocked", "stopped by the breaker: nothing applied"

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    forced = models.BooleanField(default=False)
    roles = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"role sync {self.started_at:%Y-%m-%d %H:%M:%S}: {self.get_outcome_display()}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class AuditEvent(models.Model):
    """Who did what, through what, to what and when. Append-only: rows are only ever added."""

    class Via(models.TextChoices):
        WEB = "web", "web"
        API = "api", "API"
        TASK = "task", "task"
        SYNC = "sync", "sync"
        CLI = "cli", "command line"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # A person's `sub`, `client:<id>` for a machine, `system` for the portal's own jobs.
    actor = models.CharField(max_length=255)
    # A person's name and e-mail as they were at the time: a later rename leaves the record as
    # it was. Blank for machines and the portal's jobs, and in records from before they were kept.
    actor_name = models.CharField(max_length=255, blank=True)
    actor_email = models.EmailField(max_length=254, blank=True)
    via = models.CharField(max_length=10, choices=Via.choices)
    action = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)

    # Who a page names as the actor, never saved: access.audit.actors_named sets them from the
    # recorded name and e-mail, or, for records from before they were kept, the person's now.
    shown_name = ""
    shown_email = ""
    # The (name, e-mail, id) of the person the target ends with, set there too.
    target_person: tuple[str, str, str] | None = None

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"


class AccessRequestQuerySet(models.QuerySet["AccessRequest"]):
    def open(self) -> AccessRequestQuerySet:
        return self.filter(state__in=AccessRequest.OPEN_STATES)

    def locked(self) -> AccessRequestQuerySet:
        """The rows locked until the transaction ends (the requester read along, not locked):
        every change of state re-reads its request this way, so two changes never cross."""
        return self.select_for_update(of=("self",)).select_related("requester")


class AccessRequest(models.Model):
    """A person asks for a role an entity requires; once approved it becomes a grant.

    The state only moves forward: pending → approved → provisioning → active → expired or
    revoked; pending → denied, cancelled or lapsed; provisioning → failed (admins may retry).
    """

    class State(models.TextChoices):
        PENDING = "pending", "waiting for a decision"
        APPROVED = "approved", "approved, to be granted"
        PROVISIONING = "provisioning", "being granted in Auth0"
        ACTIVE = "active", "granted"
        EXPIRED = "expired", "ended on time"
        REVOKED = "revoked", "revoked"
        DENIED = "denied", "denied"
        CANCELLED = "cancelled", "cancelled"
        LAPSED = "lapsed", "lapsed without a decision"
        FAILED = "failed", "granting failed"

    class Kind(models.TextChoices):
        """How a request came to be granted: decided by people, approved at once by one of the
        role's auto-approval rules, or taken at once by break-glass (reviewed afterwards)."""

        DECIDED = "decided", "decided by people"
        AUTO_APPROVED = "auto_approved", "approved by rule"
        BREAK_GLASS = "break_glass", "break-glass"

    # Asking again while one of these stands shows the standing one.
    OPEN_STATES = (State.PENDING, State.APPROVED, State.PROVISIONING)
    # A grant exists (or is being made) from approval on.
    GRANT_STATES = (
        State.APPROVED, State.PROVISIONING, State.ACTIVE, State.EXPIRED, State.REVOKED,
        State.FAILED,
    )  # fmt: skip

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    entity_ref = models.CharField(max_length=500)
    role_name = models.CharField(max_length=255)
    reason = models.TextField()
    duration = models.DurationField()
    approvals_required = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    # Every change of state touches it: the reconciler finds grants stuck since then.
    updated_at = models.DateTimeField(auto_now=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    # Why provisioning failed, or who revoked it and why.
    note = models.TextField(blank=True)
    provision_attempts = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DECIDED)
    # The registry rule that granted it at once (auto-approval or break-glass), as it stood.
    rule = models.JSONField(null=True, blank=True)

    objects = AccessRequestQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "role_name"],
                condition=models.Q(state__in=["pending", "approved", "provisioning"]),
                name="one_open_request_per_person_and_role",
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"], name="request_state_expiry")]

    def __str__(self) -> str:
        return f"request {self.pk}: {self.role_name} for {self.requester} ({self.state})"

    @property
    def correlation_id(self) -> str:
        return f"grant-{self.pk}"


class Decision(models.Model):
    """One approver's approval or denial of a request."""

    class Outcome(models.TextChoices):
        APPROVED = "approved", "approved"
        DENIED = "denied", "denied"

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="decisions")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    comment = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "approver"], name="one_decision_each"),
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.outcome} request {self.request_id}"


# --- access reviews --------------------------------------------------------------------------


class AccessReview(models.Model):
    """Owners re-certify who holds their role: a snapshot of the holders (AccessReviewItem), each
    kept or removed by a reviewer, recorded as evidence. Scheduled from the role's registry
    entry (every holder), or opened for one use (one holder, a reason, the request behind it:
    a break-glass grant confirmed or revoked after the fact).

    Open until completed; overdue once its due date has passed while open. Only moves forward.
    """

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "scheduled review"
        USE = "use", "review of one use"

    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="reviews")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SCHEDULED)
    # Why it was opened, beyond the schedule ("break-glass use").
    reason = models.CharField(max_length=255, blank=True)
    # The request (and grant) a review of one use is about.
    request = models.ForeignKey(
        AccessRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="reviews"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    holders_total = models.PositiveIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    # None with completed_at set: the removal policy completed it.
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    # When the role's removal policy removed what nobody reviewed in time.
    policy_applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            # Beat opens a role's review for a due date once, however many beats run.
            models.UniqueConstraint(
                fields=["role", "due_at"], condition=models.Q(kind="scheduled"),
                name="one_scheduled_review_per_due_date",
            ),
            models.UniqueConstraint(
                fields=["role"], condition=models.Q(kind="scheduled", completed_at__isnull=True),
                name="one_open_scheduled_review_per_role",
            ),
        ]  # fmt: skip
        indexes = [models.Index(fields=["completed_at", "due_at"], name="review_open_due")]

    def __str__(self) -> str:
        return f"review {self.pk} of {self.role_id} due {self.due_at:%Y-%m-%d}"

    @property
    def state(self) -> str:
        """open, overdue or completed (SPEC's words)."""
        if self.completed_at is not None:
            return "completed"
        return "overdue" if self.due_at <= timezone.now() else "open"

    @property
    def correlation_id(self) -> str:
        return f"review-{self.pk}"


class AccessReviewItem(models.Model):
    """One holder in a review: who held the role, how and since when, as the snapshot found
    them, then the reviewer's decision and, for a removal, what Auth0 made of it."""

    class Decision(models.TextChoices):
        KEEP = "keep", "kept"
        REMOVE = "remove", "removed"

    class Removal(models.TextChoices):
        PENDING = "pending", "being removed in Auth0"
        DONE = "done", "removed in Auth0"
        # An owner approved the role again after the Remove, before it was carried out: the
        # later grant stands, and the removal ends nothing.
        SUPERSEDED = "superseded", "held again through a later approval"
        FAILED = "failed", "removal failed"

    review = models.ForeignKey(AccessReview, on_delete=models.PROTECT, related_name="items")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The holder as they were at the snapshot (evidence does not follow later renames); the
    # e-mail lower-cased, as the policy compares them.
    sub = models.CharField(max_length=255)
    email = models.CharField(max_length=254, blank=True)
    name = models.CharField(max_length=255, blank=True)
    # How they held it (RoleMembership.Source), since when and until when; "" once not held.
    source = models.CharField(max_length=20, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    # The portal grant that gave it, and who approved that, as the snapshot found them.
    request = models.ForeignKey(
        AccessRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_by = models.CharField(max_length=500, blank=True)
    last_sign_in = models.DateTimeField(null=True, blank=True)
    # Why the snapshot points this holder out (access.reviews.FLAGS); "keep all not flagged"
    # leaves them for a decision of their own.
    flags = models.JSONField(default=list, blank=True)
    flagged = models.BooleanField(default=False)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    # None with a decision: the removal policy decided it.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    removal = models.CharField(max_length=10, choices=Removal.choices, blank=True)
    removal_error = models.TextField(blank=True)
    removal_attempts = models.PositiveSmallIntegerField(default=0)
    removed_at = models.DateTimeField(null=True, blank=True)
    # Every change touches it: the reconciler finds removals stuck since then.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["email", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "user"], name="one_item_per_holder"),
        ]
        indexes = [
            models.Index(fields=["review", "email", "id"], name="review_item_order"),
            models.Index(fields=["review", "decision", "flagged"], name="review_item_undecided"),
            models.Index(
                fields=["removal", "updated_at"], name="review_item_removal",
                condition=models.Q(removal__in=["pending", "failed"]),
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.sub} in review {self.review_id}: {self.decision or 'undecided'}"


class AccessReviewReminder(models.Model):
    """A reminder sent for a review in one slot (two weeks before it is due, a week, …): the
    row is the claim, so beat retried, or run twice, reminds once a slot."""

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="reminders")
    slot = models.CharField(max_length=20)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "slot"], name="one_reminder_per_slot"),
        ]

    def __str__(self) -> str:
        return f"review {self.review_id} reminded ({self.slot})"
