"""Descriptors are accepted and rejected by Backstage's rules, with Backstage's reasons."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from catalog.descriptors import ADR_LINK, DescriptorError, ValidEntity, is_url, validate_entity
from catalog.refs import EntityRef, EntityRefError, parse_entity_ref
from catalog.yamlfiles import load_documents

# shared/ stands beside the checkout, here and in CI.
CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "backstage-examples"
CONFORMANCE_FILES = sorted(CONFORMANCE.rglob("*.yaml"))

COMPONENT: dict[str, Any] = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "payments-api", "description": "Takes payments"},
    "spec": {"type": "service", "lifecycle": "production", "owner": "team-payments"},
}


def component(**changes: Any) -> dict[str, Any]:
    """The valid component above with dotted paths changed (None removes the field)."""
    entity = copy.deepcopy(COMPONENT)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = entity
        for part in parents:
            target = target.setdefault(part, {})
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return entity


def relations_of(valid: ValidEntity) -> set[tuple[str, str, str]]:
    return {(r.source.key, r.type, r.target.key) for r in valid.relations}


def test_the_conformance_files_are_all_here() -> None:
    assert len(CONFORMANCE_FILES) >= 15, CONFORMANCE


@pytest.mark.parametrize("path", CONFORMANCE_FILES, ids=lambda p: p.name)
def test_backstages_example_files_are_judged_as_backstage_judges_them(path: Path) -> None:
    documents = load_documents(path.read_bytes(), source=path.name)
    assert documents

    for document in documents:
        if path.name == "invalid-component.yaml":
            with pytest.raises(DescriptorError) as rejected:
                validate_entity(document.data)
            assert rejected.value.message == (
                'Policy check failed; caused by Error: "metadata.name" is not valid; expected '
                "a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 "
                'characters in total but found "invalid component".' + ADR_LINK
            )
            assert rejected.value.field == "metadata.name"
        else:
            validate_entity(document.data)


def test_relations_are_generated_both_ways_with_backstages_defaults() -> None:
    path = CONFORMANCE / "artist-lookup-component.yaml"
    (document,) = load_documents(path.read_bytes(), source=path.name)

    valid = validate_entity(document.data)

    assert valid.ref.key == "component:default/artist-lookup"
    assert relations_of(valid) == {
        ("component:default/artist-lookup", "ownedBy", "group:default/team-a"),
        ("group:default/team-a", "ownerOf", "component:default/artist-lookup"),
        ("component:default/artist-lookup", "partOf", "system:default/artist-engagement-portal"),
        ("system:default/artist-engagement-portal", "hasPart", "component:default/artist-lookup"),
    }


def test_a_reference_takes_the_referring_entitys_namespace_unless_it_names_one() -> None:
    team_a = CONFORMANCE / "team-a-group.yaml"
    guests = [
        validate_entity(d.data)
        for d in load_documents(team_a.read_bytes(), source="team-a-group.yaml")
        if d.data["metadata"]["name"] == "guest"
    ]
    in_alternative = validate_entity(
        component(metadata__namespace="alternative", spec__system="billing")
    )

    assert [g.ref.key for g in guests] == ["user:default/guest", "user:development/guest"]
    assert ("user:development/guest", "memberOf", "group:default/team-a") in relations_of(guests[1])
    assert (
        "component:alternative/payments-api",
        "partOf",
        "system:alternative/billing",
    ) in relations_of(in_alternative)


def test_every_kind_relates_as_backstage_relates_it() -> None:
    entities = [
        component(
            spec__subcomponentOf="payments",
            spec__providesApis=["payments"],
            spec__consumesApis=["api:ledger/ledger"],
            spec__dependsOn=["resource:payments-db"],
        ),
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": "team-payments"},
            "spec": {
                "type": "team",
                "parent": "finance",
                "children": ["payouts"],
                "members": ["grace"],
            },  # fmt: skip
        },
        {
            "apiVersion": "backstage.io/v1beta1",
            "kind": "System",
            "metadata": {"name": "payments"},
            "spec": {"owner": "team-payments", "domain": "money"},
        },
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Resource",
            "metadata": {"name": "payments-db"},
            "spec": {
                "type": "database",
                "owner": "team-payments",
                "dependencyOf": ["component:payments-api"],
            },  # fmt: skip
        },
    ]

    found = set().union(*(relations_of(validate_entity(e)) for e in entities))

    assert {
        ("component:default/payments-api", "partOf", "component:default/payments"),
        ("component:default/payments-api", "providesApi", "api:default/payments"),
        ("api:default/payments", "apiProvidedBy", "component:default/payments-api"),
        ("component:default/payments-api", "consumesApi", "api:ledger/ledger"),
        ("api:ledger/ledger", "apiConsumedBy", "component:default/payments-api"),
        ("component:default/payments-api", "dependsOn", "resource:default/payments-db"),
        ("resource:default/payments-db", "dependencyOf", "component:default/payments-api"),
        ("group:default/team-payments", "childOf", "group:default/finance"),
        ("group:default/finance", "parentOf", "group:default/team-payments"),
        ("group:default/team-payments", "parentOf", "group:default/payouts"),
        ("group:default/team-payments", "hasMember", "user:default/grace"),
        ("user:default/grace", "memberOf", "group:default/team-payments"),
        ("system:default/payments", "partOf", "domain:default/money"),
        ("group:default/team-payments", "ownerOf", "system:default/payments"),
    } <= found


VALID = {
    "beta api version": component(apiVersion="backstage.io/v1beta1"),
    "dots and underscores in a name": component(metadata__name="payments_api.v2"),
    "a 63-character name": component(metadata__name="a" * 63),
    "a prefixed label key": component(metadata__labels={"backstage.io/tier": "gold"}),
    "an empty label value": component(metadata__labels={"tier": ""}),
    "any annotation value": component(metadata__annotations={"atrium.dev/x": "a b, c!"}),
    "tags with + # and :": component(metadata__tags=["c++", "c#", "k8s:prod", "go-1"]),
    "a link with title and icon": component(
        metadata__links=[{"url": "https://example.com", "title": "Docs", "icon": "docs"}]
    ),
    "a mailto link": component(metadata__links=[{"url": "mailto:team@example.com"}]),
    "an empty children list": {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Group",
        "metadata": {"name": "g"},
        "spec": {"type": "team", "children": []},
    },
    "a location with targets": {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {"name": "l"},
        "spec": {"targets": ["./a.yaml"]},
    },
}


@pytest.mark.parametrize("entity", VALID.values(), ids=VALID.keys())
def test_what_backstage_accepts_is_accepted(entity: dict[str, Any]) -> None:
    assert validate_entity(entity).ref.namespace == entity["metadata"].get("namespace", "default")


POLICY = "Policy check failed; caused by Error: "
KIND = "Processor BuiltinKindsEntityProcessor threw an error while validating the entity; "
INVALID: dict[str, tuple[Any, str, str]] = {
    "not a mapping": (["a"], "", "Expected object at root, got object"),
    "no apiVersion": (
        component(apiVersion=None),
        "apiVersion",
        "Entity envelope failed validation before processing; caused by TypeError: <root> must "
        "have required property 'apiVersion' - missingProperty: apiVersion",
    ),
    "no name": (
        component(metadata__name=None),
        "metadata.name",
        "Entity envelope failed validation before processing; caused by TypeError: /metadata "
        "must have required property 'name' - missingProperty: name",
    ),
    "a 64-character name": (component(metadata__name="a" * 64), "metadata.name", POLICY),
    "a name ending in a dash": (component(metadata__name="pay-"), "metadata.name", POLICY),
    "an upper-case namespace": (
        component(metadata__namespace="Payments"),
        "metadata.namespace",
        POLICY + '"metadata.namespace" is not valid; expected a string that is sequences of '
        '[a-z0-9] separated by [-], at most 63 characters in total but found "Payments".',
    ),
    "a label key with two slashes": (
        component(metadata__labels={"a/b/c": "x"}),
        "labels.a/b/c",
        POLICY + '"labels.a/b/c" is not valid; expected a valid prefix and/or suffix',
    ),
    "a label value with a space": (
        component(metadata__labels={"tier": "gold plated"}),
        "labels.tier",
        POLICY + '"labels.tier" is not valid',
    ),
    "an annotation that is not a string": (
        component(metadata__annotations={"atrium.dev/x": 3}),
        "metadata.annotations.atrium.dev.x",
        POLICY + "Malformed envelope, /metadata/annotations/atrium.dev/x must be string",
    ),
    "an upper-case tag": (
        component(metadata__tags=["Java"]),
        "tags.0",
        POLICY + '"tags.0" is not valid; expected a string that is sequences of [a-z0-9+#] '
        'separated by [-], at most 63 characters in total but found "Java".',
    ),
    "a relative link": (
        component(metadata__links=[{"url": "/docs"}]),
        "links.0.url",
        POLICY + '"links.0.url" is not valid; expected a string that is a valid url but found '
        '"/docs".',
    ),
    "a link without a url": (
        component(metadata__links=[{"title": "Docs"}]),
        "metadata.links.0.url",
        POLICY + "Malformed envelope, /metadata/links/0 must have required property 'url'",
    ),
    "an unknown root field": (component(status={}), "status", POLICY + "Unknown field status"),
    "an unknown kind": (
        component(kind="Service"),
        "kind",
        "No processor recognized the entity as valid, possibly caused by a foreign kind or "
        "apiVersion",
    ),
    "an unknown apiVersion": (
        component(apiVersion="backstage.io/v2"),
        "apiVersion",
        "No processor recognized the entity as valid",
    ),
    "a component without an owner": (
        component(spec__owner=None),
        "spec.owner",
        KIND + "caused by TypeError: /spec must have required property 'owner' - "
        "missingProperty: owner",
    ),
    "an empty lifecycle": (
        component(spec__lifecycle=""),
        "spec.lifecycle",
        KIND + "caused by TypeError: /spec/lifecycle must NOT have fewer than 1 characters",
    ),
    "no spec at all": (component(spec=None), "spec", KIND),
    "an API without a definition": (
        component(kind="API", spec__definition=None),
        "spec.definition",
        KIND + "caused by TypeError: /spec must have required property 'definition'",
    ),
    "a group without children": (
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": "g"},
            "spec": {"type": "team"},
        },
        "spec.children",
        KIND + "caused by TypeError: /spec must have required property 'children'",
    ),
    "memberOf that is not a list": (
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": "u"},
            "spec": {"memberOf": "team-a"},
        },
        "spec.memberOf",
        KIND + "caused by TypeError: /spec/memberOf must be array - type: array",
    ),
    "dependsOn without a kind": (
        component(spec__dependsOn=["payments-db"]),
        "spec.dependsOn",
        "Processor BuiltinKindsEntityProcessor threw an error while postprocessing; caused by "
        'Error: Entity reference "payments-db" had missing or empty kind',
    ),
    "a malformed owner reference": (
        component(spec__owner="group:"),
        "spec.owner",
        'Entity reference "group:" was not on the form [<kind>:][<namespace>/]<name>',
    ),
}


@pytest.mark.parametrize(("entity", "field", "reason"), INVALID.values(), ids=INVALID.keys())
def test_what_backstage_rejects_is_rejected_with_its_reason(
    entity: Any, field: str, reason: str
) -> None:
    with pytest.raises(DescriptorError) as rejected:
        validate_entity(entity)

    assert reason in rejected.value.message
    assert rejected.value.field == field


def test_entity_refs_parse_with_defaults_and_compare_case_insensitively() -> None:
    assert parse_entity_ref("team-a", default_kind="Group") == EntityRef(
        "Group", "default", "team-a"
    )
    assert parse_entity_ref("default/team-a", default_kind="Group").key == "group:default/team-a"
    assert parse_entity_ref("Component:Ns/My-App").key == "component:ns/my-app"
    assert parse_entity_ref("component:default/a:b").name == "a:b"
    with pytest.raises(EntityRefError, match="must not be empty"):
        parse_entity_ref("")
    with pytest.raises(EntityRefError, match="was not on the form"):
        parse_entity_ref("component:/x")


# Link URLs as `new URL(url)` judges them in Node (Backstage's isValidUrl).
URLS = {
    "https://example.com/a b?c d#e f": True,
    " https://a.b ": True,
    "ht\ntps://a.b": True,
    "https:example.com": True,
    "http:///a.b": True,
    "http:\\\\a.b": True,
    "HTTP://A.B": True,
    "a:": True,
    "mailto:team@example.com": True,
    "urn:isbn:0451450523": True,
    "git+ssh://git@github.com/x": True,
    "a://": True,
    "file:": True,
    "file:///C:/x": True,
    "http://user:pass@a.b:8080": True,
    "http://@a": True,
    "http://a:": True,
    "http://a:65535": True,
    "http://a_b*c": True,
    "http://-a-.com": True,
    "http://0x7f.1": True,
    "http://4294967295": True,
    "http://[::1]": True,
    "http://[::ffff:1.2.3.4]": True,
    "http://[1:2:3:4:5:6:7:8]": True,
    "http://bücher.example": True,
    "http://xn--zca.example": True,
    "http://ＡＢ.com": True,
    "": False,
    "   ": False,
    "/docs": False,
    "docs.example.com": False,
    "1http://a.b": False,
    "http://": False,
    "http:": False,
    "http://exa mple.com": False,
    "http://a:99999": False,
    "http://a:8a": False,
    "http://user@": False,
    "http://[::1": False,
    "http://[::1]x": False,
    "http://[1:2:3:4:5:6:7:8:9]": False,
    "http://[::1.2.3]": False,
    "http://a^b": False,
    "http://a%20b": False,
    "http://a%zz": False,
    "http://a\u00a0b": False,
    "http://a／b": False,
    "http://a.1": False,
    "http://1.2.3.256": False,
    "http://09.1.1.1": False,
    "http://1.2.3.4.5": False,
    "http://4294967296": False,
    "http://xn--a": False,
    "a://exa mple": False,
    "a://:80": False,
    "file://exa mple/x": False,
    "file://a:80/": False,
}


@pytest.mark.parametrize(("url", "parses"), URLS.items(), ids=repr)
def test_link_urls_are_judged_as_the_whatwg_url_parser_judges_them(url: str, parses: bool) -> None:
    assert is_url(url) is parses


# --- From YAML to entity --------------------------------------------------------------------------

DESCRIPTORS = Path(__file__).parent / "descriptors"


def test_yaml_1_1_lookalikes_are_text_and_merge_keys_merge_nothing() -> None:
    path = DESCRIPTORS / "yaml-1.1-lookalikes.yaml"
    lookalikes, merged = load_documents(path.read_bytes(), source=path.name)

    valid = validate_entity(lookalikes.data)
    with pytest.raises(DescriptorError) as rejected:
        validate_entity(merged.data)

    assert valid.entity["metadata"]["title"] == "yes"
    assert valid.entity["metadata"]["tags"] == ["no", "off", "y"]
    assert valid.entity["metadata"]["annotations"]["example.com/window"] == "10:30"
    assert valid.entity["spec"]["since"] == "2024-01-01T10:00:00Z"
    assert rejected.value.field == "spec.type"


def test_a_file_with_one_bad_document_still_gives_the_others() -> None:
    path = DESCRIPTORS / "one-bad-document.yaml"

    documents = load_documents(path.read_bytes(), source=path.name, per_document_errors=True)

    assert [(d.number, d.error) for d in documents] == [
        (1, None),
        (2, "the key 'name' appears twice (line 11)"),
        (3, None),
    ]
    assert [validate_entity(d.data).ref.name for d in documents if d.error is None] == [
        "before",
        "after",
    ]
