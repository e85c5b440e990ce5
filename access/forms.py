"""Forms of the access pages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django import forms

from access.registry import (
    RegistryEntry,
    RegistryError,
    registry_entry_parse,
    review_every_iso,
)
from portal.durations import duration_iso, duration_words

OFFERED = [timedelta(hours=8), timedelta(days=1), timedelta(days=7), timedelta(days=14),
           timedelta(days=30), timedelta(days=90)]  # fmt: skip


class AccessRequestForm(forms.Form):
    role = forms.ChoiceField(label="Role")
    reason = forms.CharField(
        label="Why do you need it?",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        error_messages={"required": "Say why you need this role: the reason is required."},
    )
    duration = forms.ChoiceField(label="For how long")

    def __init__(
        self,
        *args: Any,
        roles: list[str],
        longest: timedelta,
        default: timedelta,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(role, role) for role in roles]  # type: ignore[attr-defined]
        offered = {d for d in OFFERED if d <= longest} | {longest, default}
        durations = sorted(offered)
        self.fields["duration"].choices = [  # type: ignore[attr-defined]
            (duration_iso(d), duration_words(d)) for d in durations
        ]
        self.fields["duration"].initial = duration_iso(default)
        self.durations = {duration_iso(d): d for d in durations}

    def clean_duration(self) -> timedelta:
        return self.durations[self.cleaned_data["duration"]]


# The registry's fields (access.registry.FIELDS) by the role page's names for them.
FORM_FIELDS = {
    "maxDuration": "max_duration", "minApprovals": "min_approvals", "reviewEvery": "review_every",
    "reviewDay": "review_day", "removeUnreviewedAfter": "remove_unreviewed_after",
    "conflictsWith": "conflicts_with", "autoApprove": "auto_approve",
    "breakGlass": "break_glass_group",
}  # fmt: skip


class RoleRegistryForm(forms.Form):
    """A role's registry entry on its page, checked by the same rules as the API and
    `import_roles` (access.registry)."""

    owners = forms.CharField(
        label="Owners", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Catalog groups whose members decide requests, one per line or comma-separated "
        "(group:default/team-payments, or team-payments).",
    )  # fmt: skip
    requestable = forms.BooleanField(label="People may request it", required=False)
    max_duration = forms.CharField(
        label="Longest grant", required=False, max_length=40,
        help_text="ISO 8601 (P30D, PT8H); empty: the portal's longest.",
    )  # fmt: skip
    min_approvals = forms.IntegerField(label="Fewest approvals", min_value=1, initial=1)
    # Access reviews (SPEC's reviewEvery, with the day they are anchored to and the removal
    # policy): the owners re-certify who holds the role.
    review_every = forms.ChoiceField(
        label="Owners review who holds it", required=False,
        choices=[("", "never"), ("P1M", "every month"), ("P3M", "every 3 months"),
                 ("P6M", "every 6 months"), ("P1Y", "every year")],
    )  # fmt: skip
    review_day = forms.DateField(
        label="Reviews fall due on", required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="The day reviews are anchored to, and every interval from it; empty: one "
        "interval from the day the schedule is set.",
    )  # fmt: skip
    remove_unreviewed_after = forms.IntegerField(
        label="Remove what is not reviewed, days after the due date", required=False,
        min_value=1, max_value=365,
        help_text="Empty: nothing is removed without a reviewer's decision.",
    )  # fmt: skip

    sensitive = forms.BooleanField(
        label="Sensitive: approving or denying needs a fresh multi-factor sign-in",
        required=False,
    )
    conflicts_with = forms.CharField(
        label="Conflicts with", required=False, max_length=4000,
        help_text="Roles nobody may hold together with this one, comma-separated "
        "(payments.auditor). The other role is given the conflict too.",
    )  # fmt: skip
    auto_approve = forms.CharField(
        label="Auto-approval rules", required=False, max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One rule a line: a group, the longest grant, and optionally a pattern the "
        "reason must match (team-checkout PT8H ^INC-[0-9]+). Its members are granted it at "
        "once, without a decision.",
    )  # fmt: skip
    break_glass_group = forms.CharField(
        label="Break-glass group", required=False, max_length=500,
        help_text="Members of this group may grant themselves the role at once in an "
        "emergency, saying why; empty: no break-glass.",
    )  # fmt: skip
    break_glass_max_duration = forms.CharField(
        label="Break-glass longest", required=False, max_length=40,
        help_text="ISO 8601, at most P1D (PT1H).",
    )  # fmt: skip

    def __init__(self, *args: Any, entry: RegistryEntry, name: str = "", **kwargs: Any) -> None:
        removal = entry.remove_unreviewed_after
        rules = "\n".join(
            " ".join(filter(None, (rule.group, duration_iso(rule.max_duration),
                                   rule.reason_pattern)))
            for rule in entry.auto_approve
        )  # fmt: skip
        glass = entry.break_glass
        kwargs.setdefault("initial", {
            "owners": "\n".join(entry.owners), "requestable": entry.requestable,
            "max_duration": duration_iso(entry.max_duration) if entry.max_duration else "",
            "min_approvals": entry.min_approvals,
            "review_every": review_every_iso(entry.review_every) or "",
            "review_day": entry.review_day,
            "remove_unreviewed_after": removal.days if removal else None,
            "sensitive": entry.sensitive,
            "conflicts_with": ", ".join(entry.conflicts_with), "auto_approve": rules,
            "break_glass_group": glass.group if glass else "",
            "break_glass_max_duration": duration_iso(glass.max_duration) if glass else "",
        })  # fmt: skip
        super().__init__(*args, **kwargs)
        self.role_name = name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        owners = [o.strip() for o in re.split(r"[,\s]+", cleaned.get("owners", "")) if o.strip()]
        conflicts = [c.strip() for c in re.split(r"[,\s]+", cleaned.get("conflicts_with", ""))
                     if c.strip()]  # fmt: skip
        rules = []
        for line in cleaned.get("auto_approve", "").splitlines():
            group, _, rest = line.strip().partition(" ")
            longest, _, pattern = rest.strip().partition(" ")
            if group:
                rules.append({"group": group, "maxDuration": longest or None,
                              "reasonPattern": pattern.strip() or None})  # fmt: skip
        glass_group = cleaned.get("break_glass_group", "").strip()
        glass_longest = cleaned.get("break_glass_max_duration", "").strip()
        data = {
            "owners": owners, "requestable": cleaned.get("requestable", False),
            "maxDuration": cleaned.get("max_duration") or None,
            "minApprovals": cleaned.get("min_approvals"),
            "reviewEvery": cleaned.get("review_every") or None,
            "reviewDay": day.isoformat() if (day := cleaned.get("review_day")) else None,
            "removeUnreviewedAfter": f"P{days}D" if (days := cleaned.get("remove_unreviewed_after"))
            else None,
            "sensitive": cleaned.get("sensitive", False), "conflictsWith": conflicts,
            "autoApprove": rules,
            "breakGlass": {"group": glass_group, "maxDuration": glass_longest or None}
            if glass_group or glass_longest else None,
        }  # fmt: skip
        try:
            cleaned["entry"] = registry_entry_parse(data, name=self.role_name)
        except RegistryError as error:
            self.registry_error(error)
        return cleaned

    def registry_error(self, error: RegistryError) -> None:
        """The registry's message, on the field it names."""
        field, _, message = str(error).partition(": ")
        name = FORM_FIELDS.get(field, field)
        if field == "breakGlass" and message.startswith("maxDuration"):
            name = "break_glass_max_duration"
        self.add_error(name if name in self.fields else None, message or str(error))


class BreakGlassForm(forms.Form):
    """Break glass: the role at once, for a short time, saying why."""

    reason = forms.CharField(
        label="What is the emergency?", widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        error_messages={"required": "Say why you break glass: the reason is required."},
    )  # fmt: skip
    duration = forms.ChoiceField(label="For how long")

    def __init__(self, *args: Any, longest: timedelta, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offered = sorted({d for d in BREAK_GLASS_OFFERED if d <= longest} | {longest})
        self.fields["duration"].choices = [  # type: ignore[attr-defined]
            (duration_iso(d), duration_words(d)) for d in offered
        ]
        self.fields["duration"].initial = duration_iso(offered[0])
        self.durations = {duration_iso(d): d for d in offered}

    def clean_duration(self) -> timedelta:
        return self.durations[self.cleaned_data["duration"]]


BREAK_GLASS_OFFERED = [timedelta(minutes=30), timedelta(hours=1), timedelta(hours=4)]


class GatewayExplainForm(forms.Form):
    """`/authz/explain`: a token and the request a gateway would ask about. The token is never
    rendered back into the page, nor kept."""

    token = forms.CharField(
        label="Access token",
        max_length=16_384,
        strip=True,
        widget=forms.Textarea(
            attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}
        ),
        error_messages={"required": "Paste the access token the gateway was sent."},
    )
    method = forms.ChoiceField(
        label="Method",
        choices=[
            (m, m) for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
        ],  # fmt: skip
    )
    host = forms.CharField(label="Host", max_length=253, initial="payments.internal.example")
    path = forms.CharField(label="Path", max_length=2_000, initial="/v1/")

    def clean_path(self) -> str:
        path: str = self.cleaned_data["path"]
        if not path.startswith("/"):
            raise forms.ValidationError("A path starts with /, as in /v1/orders.")
        return path
