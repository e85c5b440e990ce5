"""Descriptors are accepted and rejected by Backstage's rules, with Backstage's reasons."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from catalog.descriptors import ADR_LINK, DescriptorError, ValidEntity, is_url, validate_entity
from catalog.refs import EntityRef, EntityRefError, parse_entity_ref, parse_entity_ref_value
from catalog.yamlfiles import load_documents
from tests.conftest import SHARED, shared_path

# Backstage's examples, in ../shared beside the checkout (see tests/conftest.py: shared_path).
EXAMPLES = SHARED / "conformance" / "backstage-examples"
# Listed at collection, when a missing corpus cannot yet skip or fail: then one placeholder
# stands for the files, and its test says what is missing.
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.yaml")) or [EXAMPLES / "(missing)"]

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
    examples = shared_path("conformance", "backstage-examples")
    assert len(sorted(examples.rglob("*.yaml"))) >= 15, examples


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_backstages_example_files_are_judged_as_backstage_judges_them(path: Path) -> None:
    shared_path(str(path.relative_to(SHARED)))
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
    path = shared_path("conformance", "backstage-examples", "artist-lookup-component.yaml")
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
    team_a = shared_path("conformance", "backstage-examples", "team-a-group.yaml")
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
        "metadata.annotations.atrium.dev/x",
        POLICY + "Malformed envelope, /metadata/annotations/atrium.dev~1x must be string",
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


def test_free_form_references_parse_as_backstages_parse_entity_ref() -> None:
    assert parse_entity_ref_value({"kind": "Resource", "name": "db"}, default_namespace="ns") == (
        EntityRef("Resource", "ns", "db")
    )
    assert parse_entity_ref_value("db", default_kind="Group").key == "group:default/db"
    with pytest.raises(EntityRefError, match=r"^Entity reference 5 had missing or empty kind \("):
        parse_entity_ref_value(5)
    with pytest.raises(EntityRefError, match='^Entity reference {"kind":"a"} had missing or emp'):
        parse_entity_ref_value({"kind": "a"})
    with pytest.raises(EntityRefError, match="must not be empty"):
        parse_entity_ref_value("")


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


# --- Every rule, judged beside Backstage's own catalog-model ------------------------------------


def entity(kind: str, spec: Any = None, **metadata: Any) -> dict[str, Any]:
    described: dict[str, Any] = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", **metadata},
    }
    if spec is not None:
        described["spec"] = spec
    return described


def without(described: dict[str, Any], *path: str) -> dict[str, Any]:
    changed = copy.deepcopy(described)
    *parents, last = path
    target = changed
    for part in parents:
        target = target[part]
    del target[last]
    return changed


def link(**fields: Any) -> dict[str, Any]:
    return component(metadata__links=[{"url": "https://example.com", **fields}])


SERVICE = {"type": "service", "lifecycle": "production", "owner": "team-a"}
API_SPEC = {**SERVICE, "type": "openapi", "definition": "openapi: 3.0.0"}
RESOURCE = {"type": "database", "owner": "team-a"}
TEAM = {"type": "team", "children": []}
USER = {"memberOf": ["team-a"]}
PROFILE = {"displayName": "Ada", "email": "ada@example.com", "picture": "https://a.b/p.png"}

# name: (entity, whether Backstage accepts it)
CORPUS: dict[str, tuple[Any, bool]] = {
    # The envelope
    "a component": (component(), True),
    "not an object": (["a"], False),
    "no apiVersion": (without(component(), "apiVersion"), False),
    "apiVersion not a string": (component(apiVersion=1), False),
    "no kind": (without(component(), "kind"), False),
    "an empty kind": (component(kind=""), False),
    "no metadata": (without(component(), "metadata"), False),
    "metadata a list": (component(metadata=["x"]), False),
    "no name": (without(component(), "metadata", "name"), False),
    "a name that is a number": (component(metadata__name=5), False),
    "an unknown root field": (component(status={}), False),
    "a root field the schema does not know": (component(extra=1), False),
    "spec a list": (component(spec=["x"]), False),
    "no spec": (component(spec=None), False),
    "an unknown kind": (component(kind="Service"), False),
    "an unknown apiVersion": (component(apiVersion="backstage.io/v2"), False),
    # Metadata
    "a uid": (component(metadata__uid="abc"), True),
    "an empty uid": (component(metadata__uid=""), False),
    "an empty etag": (component(metadata__etag=""), False),
    "a namespace": (component(metadata__namespace="team-a"), True),
    "an upper-case namespace": (component(metadata__namespace="Team"), False),
    "an empty namespace": (component(metadata__namespace=""), False),
    "a title": (component(metadata__title="Payments"), True),
    "an empty title": (component(metadata__title=""), False),
    "a title that is a number": (component(metadata__title=5), False),
    "an empty description": (component(metadata__description=""), True),
    "a description that is a number": (component(metadata__description=5), False),
    "labels": (component(metadata__labels={"backstage.io/tier": "gold", "a": ""}), True),
    "a label that is a number": (component(metadata__labels={"a": 5}), False),
    "a label key with two slashes": (component(metadata__labels={"a/b/c": "x"}), False),
    "a label value with a space": (component(metadata__labels={"a": "b c"}), False),
    "labels a list": (component(metadata__labels=["a"]), False),
    "annotations": (component(metadata__annotations={"example.com/x": "a b, c!"}), True),
    "an annotation that is a number": (component(metadata__annotations={"a/b": 5}), False),
    "an annotation key with a space": (component(metadata__annotations={"a b": "x"}), False),
    "tags": (component(metadata__tags=["c++", "k8s:prod", "go-1"]), True),
    "an upper-case tag": (component(metadata__tags=["Java"]), False),
    "an empty tag": (component(metadata__tags=[""]), False),
    "tags a string": (component(metadata__tags="a"), False),
    # Links
    "a link with title, icon and type": (link(title="Docs", icon="docs", type="admin"), True),
    "an icon that is a reference": (link(icon="kind:api"), True),
    "an empty icon": (link(icon=""), False),
    "a blank icon": (link(icon="  "), False),
    "a link with an empty title": (link(title=""), False),
    "a blank title": (link(title="  "), False),
    "a type that is a number": (link(type=5), False),
    "links an object": (component(metadata__links={"url": "https://a.b"}), False),
    "a link that is null": (component(metadata__links=[None]), False),
    "a link without a url": (component(metadata__links=[{"title": "Docs"}]), False),
    # Link URLs, as `new URL()` judges them
    "a url with spaces around": (link(url=" https://a.b "), True),
    "a url with no slashes": (link(url="https:example.com"), True),
    "a url that is a scheme": (link(url="a:"), True),
    "a mailto url": (link(url="mailto:team@example.com"), True),
    "a url with an IPv6 host": (link(url="http://[::1]:8080/x"), True),
    "a url with an international host": (link(url="https://bücher.example/"), True),
    "a relative url": (link(url="/docs"), False),
    "a url with a space in the host": (link(url="http://exa mple.com"), False),
    "a url with a port too high": (link(url="http://a:99999"), False),
    "a url with an unclosed IPv6 host": (link(url="http://[::1"), False),
    "a url without a host": (link(url="http://"), False),
    "a url with a bad IPv4 host": (link(url="http://1.2.3.256/"), False),
    # Component
    "a component with every field": (
        component(
            spec__system="payments",
            spec__subcomponentOf="platform",
            spec__providesApis=["payments"],
            spec__consumesApis=["api:ledger/ledger"],
            spec__dependsOn=["resource:db"],
            spec__dependencyOf=["component:web"],
        ),
        True,
    ),
    "a component without a type": (component(spec__type=None), False),
    "a component without a lifecycle": (component(spec__lifecycle=None), False),
    "a component without an owner": (component(spec__owner=None), False),
    "an empty owner": (component(spec__owner=""), False),
    "a system that is a number": (component(spec__system=5), False),
    "subcomponentOf a list": (component(spec__subcomponentOf=["a"]), False),
    "providesApis a string": (component(spec__providesApis="payments"), False),
    "an empty consumed API": (component(spec__consumesApis=[""]), False),
    "dependsOn without a kind": (component(spec__dependsOn=["db"]), False),
    "dependencyOf a string": (component(spec__dependencyOf="resource:db"), True),
    "dependencyOf an empty string": (component(spec__dependencyOf=""), True),
    "dependencyOf a compound reference": (
        component(spec__dependencyOf={"kind": "resource", "name": "db"}),
        True,
    ),
    "dependencyOf a number": (component(spec__dependencyOf=5), False),
    "dependencyOf without a kind": (component(spec__dependencyOf=["db"]), False),
    "a malformed owner": (component(spec__owner="group:"), False),
    # API
    "an API": (entity("API", API_SPEC), True),
    "an API without a definition": (entity("API", {**SERVICE}), False),
    "an API whose definition is an object": (
        entity("API", {**API_SPEC, "definition": {"openapi": "3.0.0"}}),
        False,
    ),
    "an API with an empty definition": (entity("API", {**API_SPEC, "definition": ""}), False),
    "an API without a lifecycle": (without(entity("API", API_SPEC), "spec", "lifecycle"), False),
    # Resource
    "a resource": (
        entity("Resource", {**RESOURCE, "system": "s", "dependsOn": ["resource:b"]}),
        True,
    ),
    "a resource without a type": (entity("Resource", {"owner": "team-a"}), False),
    "a resource without an owner": (entity("Resource", {"type": "database"}), False),
    "a resource whose dependsOn is a string": (
        entity("Resource", {**RESOURCE, "dependsOn": "resource:b"}),
        False,
    ),
    "a resource whose dependencyOf is a string": (
        entity("Resource", {**RESOURCE, "dependencyOf": "component:web"}),
        True,
    ),
    "a resource whose system is a number": (entity("Resource", {**RESOURCE, "system": 5}), False),
    # System
    "a system": (entity("System", {"owner": "team-a", "domain": "money", "type": "product"}), True),
    "a system without an owner": (entity("System", {"domain": "money"}), False),
    "a system whose domain is a number": (entity("System", {"owner": "a", "domain": 5}), False),
    "a system with an empty type": (entity("System", {"owner": "a", "type": ""}), False),
    # Domain
    "a domain": (entity("Domain", {"owner": "team-a", "subdomainOf": "money", "type": "x"}), True),
    "a domain without an owner": (entity("Domain", {}), False),
    "a domain whose parent is a number": (
        entity("Domain", {"owner": "a", "subdomainOf": 5}),
        False,
    ),
    "a domain whose type is a number": (entity("Domain", {"owner": "a", "type": 5}), False),
    # Group
    "a group": (
        entity("Group", {**TEAM, "parent": "org", "members": ["ada"], "profile": PROFILE}),
        True,
    ),
    "a group without a type": (entity("Group", {"children": []}), False),
    "a group without children": (entity("Group", {"type": "team"}), False),
    "a group whose children are null": (entity("Group", {"type": "team", "children": None}), False),
    "a group with a member that is a number": (entity("Group", {**TEAM, "members": [5]}), False),
    "a group with an empty parent": (entity("Group", {**TEAM, "parent": ""}), False),
    "a group profile with more fields": (entity("Group", {**TEAM, "profile": {"x": 1}}), True),
    "a group profile that is text": (entity("Group", {**TEAM, "profile": "x"}), False),
    "a group display name that is a number": (
        entity("Group", {**TEAM, "profile": {"displayName": 3}}),
        False,
    ),
    "a group with an empty e-mail": (entity("Group", {**TEAM, "profile": {"email": ""}}), False),
    # User
    "a user": (entity("User", {**USER, "profile": PROFILE}), True),
    "a user without memberOf": (entity("User", {}), False),
    "a user whose memberOf is a string": (entity("User", {"memberOf": "team-a"}), False),
    "a user profile that is text": (entity("User", {**USER, "profile": "jdoe"}), False),
    "a user e-mail that is a number": (entity("User", {**USER, "profile": {"email": 5}}), False),
    "a user with an empty picture": (entity("User", {**USER, "profile": {"picture": ""}}), False),
    # Location
    "a location with a target": (entity("Location", {"type": "url", "target": "./a.yaml"}), True),
    "a location with an empty spec": (entity("Location", {}), True),
    "a location with targets, optional": (
        entity("Location", {"targets": ["./a.yaml"], "presence": "optional"}),
        True,
    ),
    "a location, required": (entity("Location", {"target": "./a", "presence": "required"}), True),
    "a location whose type is a number": (entity("Location", {"type": 5}), False),
    "a location whose target is a number": (entity("Location", {"target": 5}), False),
    "a location whose targets are a string": (entity("Location", {"targets": "./a"}), False),
    "a location, maybe": (entity("Location", {"target": "./a", "presence": "maybe"}), False),
    "a location whose presence is a number": (entity("Location", {"presence": 5}), False),
}


def atrium_verdict(described: Any) -> str | None:
    try:
        validate_entity(described)
    except DescriptorError as error:
        return error.message
    return None


@pytest.mark.parametrize(("described", "accepted"), CORPUS.values(), ids=CORPUS.keys())
def test_each_rule_accepts_and_rejects_as_backstage_does(described: Any, accepted: bool) -> None:
    assert (atrium_verdict(described) is None) is accepted, atrium_verdict(described)


BACKSTAGE_VALIDATE = Path(__file__).parent / "descriptors" / "backstage_validate.cjs"
CATALOG_MODEL = Path(__file__).parents[1] / "backstage_client" / "node_modules" / "@backstage"


@pytest.fixture(scope="module")
def backstage_verdicts() -> dict[str, str | None]:
    """Backstage's verdict on each corpus entity, from its own catalog-model (one node run)."""
    node = shutil.which("node")
    if node is None or not (CATALOG_MODEL / "catalog-model").exists():
        pytest.fail("run `npm ci` in tests/backstage_client (make test does) and install Node.js")
    finished = subprocess.run(
        [node, str(BACKSTAGE_VALIDATE)],
        input=json.dumps({name: described for name, (described, _) in CORPUS.items()}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    verdicts: dict[str, str | None] = json.loads(finished.stdout)
    return verdicts


@pytest.mark.parametrize("name", CORPUS.keys())
def test_backstages_catalog_model_agrees_with_the_corpus(
    name: str, backstage_verdicts: dict[str, str | None]
) -> None:
    described, accepted = CORPUS[name]
    backstage, atrium = backstage_verdicts[name], atrium_verdict(described)

    assert (backstage is None) is accepted, backstage
    # Atrium says what Backstage says, after the stage that said it.
    assert backstage is None or (atrium or "").endswith(backstage), (backstage, atrium)


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


# --- Limits of Atrium's own ----------------------------------------------------------------------


def test_a_reference_longer_than_its_column_is_refused_naming_the_field() -> None:
    # Backstage has no such limit; Atrium stores references in varchar(300) columns.
    at_limit = "group:default/" + "a" * (300 - len("group:default/"))
    assert validate_entity(component(spec__owner=at_limit)).relations

    with pytest.raises(DescriptorError) as rejected:
        validate_entity(component(spec__owner=at_limit + "a"))

    assert rejected.value.message == "spec.owner: entity reference is 301 characters; at most 300"
    assert rejected.value.field == "spec.owner"
    with pytest.raises(DescriptorError, match="^spec.dependsOn: entity reference is 310 char"):
        validate_entity(component(spec__dependsOn=["resource:default/" + "d" * 293]))
