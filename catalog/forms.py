"""Forms of the catalog pages."""

from __future__ import annotations

from django import forms


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

    def clean_target(self) -> str:
        target: str = self.cleaned_data["target"]
        if not target.startswith(("http://", "https://")):
            raise forms.ValidationError("Only http(s) URLs can be registered here.")
        return target
