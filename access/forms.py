"""Forms of the access pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms

from access.services import duration_iso, humanize_duration

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
            (duration_iso(d), humanize_duration(d)) for d in durations
        ]
        self.fields["duration"].initial = duration_iso(default)
        self.durations = {duration_iso(d): d for d in durations}

    def clean_duration(self) -> timedelta:
        return self.durations[self.cleaned_data["duration"]]
