"""Forms of the access pages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django import forms

from access.registry import RegistryEntry, RegistryError, registry_entry_parse
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

    def __init__(self, *args: Any, entry: RegistryEntry, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {
            "owners": "\n".join(entry.owners), "requestable": entry.requestable,
            "max_duration": duration_iso(entry.max_duration) if entry.max_duration else "",
            "min_approvals": entry.min_approvals,
        })  # fmt: skip
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        owners = [o.strip() for o in re.split(r"[,\s]+", cleaned.get("owners", "")) if o.strip()]
        data = {
            "owners": owners, "requestable": cleaned.get("requestable", False),
            "maxDuration": cleaned.get("max_duration") or None,
            "minApprovals": cleaned.get("min_approvals"),
        }  # fmt: skip
        try:
            cleaned["entry"] = registry_entry_parse(data)
        except RegistryError as error:
            field, _, message = str(error).partition(": ")
            name = {"maxDuration": "max_duration", "minApprovals": "min_approvals"}.get(
                field, field
            )
            self.add_error(name if name in self.fields else None, message or str(error))
        return cleaned


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
