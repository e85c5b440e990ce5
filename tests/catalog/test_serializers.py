"""The catalog API's encoded entities: the same answers as the dict path, for every viewer."""

from __future__ import annotations

import json

import pytest

from access.policy import Viewer
from catalog.models import Entity
from catalog.serializers import entities_json, entities_json_texts

pytestmark = pytest.mark.django_db

VIEWERS = {
    "outsider": Viewer(sub="auth0|ada"),
    "holder": Viewer(sub="auth0|bob", held_roles=frozenset({"payments.viewer"})),
    "owner": Viewer(sub="auth0|grace", group_refs=frozenset({"group:default/team-payments"})),
    "admin": Viewer(sub="auth0|root", held_roles=frozenset({"portal-admin"}), is_admin=True),
}


@pytest.mark.parametrize("fields", [[], ["metadata.name", "spec.owner", "relations"]])
@pytest.mark.parametrize("who", VIEWERS)
def test_encoded_entities_are_the_dict_paths_answers(
    demo_catalog: None, who: str, fields: list[str]
) -> None:
    viewer = VIEWERS[who]
    entities = Entity.objects.order_by("ref")

    texts = entities_json_texts(entities, viewer=viewer, fields=fields)
    bodies = entities_json(entities, viewer=viewer, fields=fields)

    assert len(texts) > 10
    assert [ref for ref, _ in texts] == [entity.ref for entity in entities]
    assert [json.loads(text) for _, text in texts] == bodies
    # The catalog's text is ASCII: even the bytes are what the API's renderer wrote before.
    assert [text for _, text in texts] == [json.dumps(body) for body in bodies]


def test_a_restricted_entity_is_trimmed_for_an_outsider_and_whole_for_a_holder(
    demo_catalog: None,
) -> None:
    payments_api = Entity.objects.filter(ref="component:default/payments-api")

    ((_, outsider),) = entities_json_texts(payments_api, viewer=VIEWERS["outsider"])
    ((_, holder),) = entities_json_texts(payments_api, viewer=VIEWERS["holder"])

    assert "links" not in json.loads(outsider)["metadata"]
    assert json.loads(outsider)["spec"] == {"owner": "team-payments"}
    assert {r["type"] for r in json.loads(outsider)["relations"]} == {"ownedBy"}
    assert json.loads(holder)["spec"]["dependsOn"] == [
        "resource:payments-db",
        "resource:kafka-cluster",
    ]


def test_text_beyond_ascii_reads_back_the_same(demo_catalog: None) -> None:
    entity = Entity.objects.get(ref="component:default/payments-api")
    entity.descriptor["metadata"]["title"] = "Zahlungen — Überweisung 支付"
    entity.save(update_fields=["descriptor"])
    one = Entity.objects.filter(pk=entity.pk)

    ((_, text),) = entities_json_texts(one, viewer=VIEWERS["admin"])

    assert json.loads(text) == entities_json(one, viewer=VIEWERS["admin"])[0]
    assert json.loads(text)["metadata"]["title"] == "Zahlungen — Überweisung 支付"
