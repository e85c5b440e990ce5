"""Forms of the catalog pages."""

from __future__ import annotations

from django import forms

from catalog.fetch import url_refusal
from catalog.models import Location


class LocationForm(forms.Form):
    target = forms.URLField(
        label="Descriptor URL",
        max_length=2048,
        assume_scheme="https",
        help_text=(
            "The raw URL of a catalog-info.yaml. Files on the server are registered with "
            "manage.py import_catalog."
        ),
        widget=forms.URLInput(
            attrs={"placeholder": "https://git.example.com/raw/catalog-info.yaml"}
        ),
    )

    holds_people = forms.BooleanField(
        label="This location holds people and groups (may define User and Group entities)",
        required=False,
        help_text=(
            "A User's e-mail and groups decide who someone is in the portal: allow them only "
            "where your organisation's data lives."
        ),
    )

    declares_routes = forms.BooleanField(
        label="Its entities may declare gateway routes (atrium.dev/gateway-routes)",
        required=False,
        help_text=(
            "A declared route is what gateways ask the portal about: allow it only where the "
            "teams whose services those routes reach keep their descriptors."
        ),
    )

    def clean_target(self) -> str:
        target: str = self.cleaned_data["target"]
        if not target.startswith(("http://", "https://")):
            raise forms.ValidationError("Only http(s) URLs can be registered here.")
        if (refusal := url_refusal(target)) is not None:
            raise forms.ValidationError(f"{target}: {refusal}")
        return target

    @property
    def allow_kinds(self) -> list[str]:
        """The kinds the location may define besides the default ones, as ticked."""
        return list(Location.ALLOWABLE_KINDS) if self.cleaned_data.get("holds_people") else []
