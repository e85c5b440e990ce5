"""The demo catalog says what it means: no description cut short by the YAML it is written in."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from catalog.yamlfiles import load_documents
from portal.management.commands.seed_demo import DEMO_CATALOG
from tests.helpers import signed_in, text

# How a description with a comma used to be written: in a flow mapping (`{...}`) a comma ends
# the value, so the rest of the sentence became a key of its own, with no value.
FLOW_MAPPING = (
    "apiVersion: backstage.io/v1alpha1\nkind: API\n"
    "metadata: {name: payments, description: Authorise, capture and refund}\n"
    "spec: {type: openapi, lifecycle: production, owner: team-payments, definition: x}\n"
)


def test_a_comma_in_a_flow_mapping_ends_the_value_for_the_catalog_as_for_yaml() -> None:
    """The catalog's reader is right, the descriptor was wrong: YAML's own reading (flow
    indicators end a plain scalar in a flow collection) is the same."""
    (document,) = load_documents(FLOW_MAPPING, source="api.yaml")

    assert document.data["metadata"] == {
        "name": "payments",
        "description": "Authorise",
        "capture and refund": None,
    }
    assert document.data == yaml.safe_load(FLOW_MAPPING)


def _nulls(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _nulls(item, f"{path}.{key}")]
    return [path] if value is None else []


def test_no_demo_descriptor_has_a_key_without_a_value() -> None:
    """What a comma in a flow mapping leaves behind; the demo has no other reason for one."""
    for path in sorted(DEMO_CATALOG.parent.rglob("*.yaml")):
        for document in load_documents(path.read_bytes(), source=str(path)):
            if isinstance(document.data, dict) and "apiVersion" in document.data:
                assert _nulls(document.data) == [], path.name


@pytest.mark.django_db
def test_the_demo_descriptions_read_whole_in_the_catalog(demo_catalog: None) -> None:
    page = text(signed_in("ada@example.com").get("/catalog/?kind=all&per_page=50").content)

    for description in (
        "Authorise, capture and refund",
        "Card payments, payouts and the ledger",
        "Identity, observability and the paved road",
        "Sign-in, tokens and the Auth0 tenant",
        "Metrics, logs and traces",
        "Events in, the warehouse out",
        "The shop front, the basket and the order flow",
    ):
        assert description in page
