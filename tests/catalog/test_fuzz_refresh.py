"""Fuzzing a refresh: descriptors holding arbitrary values, read and applied to PostgreSQL.

Whatever one document holds, the refresh finishes: the entity is stored, or it is a problem
that names its field, and the valid entity beside it in the same file is always stored.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from catalog.annotations import APPROVALS_REQUIRED, APPROVERS, MAX_ACCESS_DURATION, REQUIRED_ROLES
from catalog.models import Entity, Location
from catalog.services import location_refresh, location_register
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db

# Values known to have broken something somewhere, mixed in with what hypothesis makes up.
NASTY_TEXT = [
    "", " ", "a\x00b", "x" * 10_000, "\u202egnp.exe", "😀" * 80, "team-a" + "\u0301" * 300,
    "group:default/", ":", "/", "a:b:c/d/e", "²", "9" * 5000, "P99999999999D", "PT1e9S",
    "<script>alert(1)</script>", "{{ request }}", "{% debug %}", "javascript:alert(1)",
    "Component:Default/X", "user:" + "a" * 400, "\ufeffname", "\x85", "-1", "0",
]  # fmt: skip
# Mostly text without a NUL, which hypothesis would otherwise put nearly everywhere.
CLEAN_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
TEXT = st.one_of(CLEAN_TEXT, CLEAN_TEXT, CLEAN_TEXT, st.text(max_size=30),
                 st.sampled_from(NASTY_TEXT))  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
NAMES = st.one_of(st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9._-]{0,20}[a-zA-Z0-9])?", fullmatch=True),
                  TEXT)  # fmt: skip
WELL_FORMED_REFS = st.from_regex(r"((component|group|user|Group):)?(default/)?[a-z0-9-]{1,20}",
                                 fullmatch=True)  # fmt: skip
REFS = st.one_of(
    WELL_FORMED_REFS,
    WELL_FORMED_REFS,
    st.text(alphabet="abcAB:/-_.😀 \x00", max_size=20),
    TEXT,
    VALUES.filter(bool),
)
TAGS = st.one_of(st.from_regex(r"[a-z0-9:+#]{1,10}", fullmatch=True), TEXT)
LABEL_KEYS = st.one_of(st.from_regex(r"([a-z]{1,8}\.io/)?[a-z]{1,8}", fullmatch=True), TEXT)
ANNOTATION_KEYS = st.one_of(
    st.sampled_from([REQUIRED_ROLES, APPROVERS, MAX_ACCESS_DURATION, APPROVALS_REQUIRED,
                     "backstage.io/techdocs-ref"]),
    TEXT,
)  # fmt: skip
ANNOTATION_VALUES = st.one_of(TEXT, st.lists(TEXT, max_size=60).map(",".join), VALUES)
SIBLING = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "fuzz-sibling", "title": "The valid neighbour"},
    "spec": {"type": "service", "lifecycle": "production", "owner": "team-a",
             "dependsOn": ["component:fuzz-target"]},
}  # fmt: skip
RELATION_FIELDS = ["owner", "system", "domain", "subcomponentOf", "subdomainOf", "parent",
                   "providesApis", "consumesApis", "dependsOn", "dependencyOf", "children",
                   "members", "memberOf"]  # fmt: skip


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field that is absent or holds what its strategy makes."""
    return st.one_of(st.just(Ellipsis), value)


@st.composite
def descriptors(draw: st.DrawFn) -> dict[str, Any]:
    """A skeleton of a non-Location kind whose fields hold text of any kind, and one field
    (or none) anything at all, so that most are stored and some are refused."""
    kind = draw(st.sampled_from(["Component", "API", "Resource", "System", "Domain", "Group",
                                 "User"]))  # fmt: skip
    fields = {
        "metadata.name": st.one_of(NAMES, NAMES, NAMES, NAMES, TEXT),
        "metadata.namespace": maybe(
            st.sampled_from(["default", "default", "other", "Default", "x" * 70])
        ),
        "metadata.title": maybe(TEXT),
        "metadata.description": maybe(TEXT),
        "metadata.annotations": maybe(
            st.dictionaries(ANNOTATION_KEYS, ANNOTATION_VALUES, max_size=5)
        ),
        "metadata.labels": maybe(st.dictionaries(LABEL_KEYS, NAMES, max_size=3)),
        "metadata.tags": maybe(st.lists(TAGS, max_size=5)),
        "metadata.links": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"url": st.one_of(st.just("https://example.com/x"), TEXT)},
                    optional={"title": TEXT},
                ),
                max_size=3,
            )
        ),
        "spec.type": TEXT.filter(bool),
        "spec.lifecycle": TEXT.filter(bool),
        "spec.owner": REFS,
        "spec.definition": TEXT.filter(bool),
        "spec.profile": maybe(st.dictionaries(TEXT, VALUES, max_size=3)),
        "spec.children": st.lists(REFS, max_size=3),
        "spec.memberOf": st.lists(REFS, max_size=3),
        **{f"spec.{name}": maybe(st.one_of(REFS, st.lists(REFS, max_size=4)))
           for name in RELATION_FIELDS if name not in ("owner", "children", "memberOf")},
    }  # fmt: skip
    wild = draw(st.sampled_from([None, *fields]))
    descriptor: dict[str, Any] = {"apiVersion": "backstage.io/v1alpha1", "kind": kind,
                                  "metadata": {}, "spec": {}}  # fmt: skip
    for path, strategy in fields.items():
        value = draw(VALUES if path == wild else strategy)
        if value is not Ellipsis:
            section, key = path.split(".")
            descriptor[section][key] = value
    return descriptor


def yaml_file(documents: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False, width=2**20)


_examples = itertools.count()
# Each example starts by deleting every location, so the tmp_path and signed-in fixtures that
# outlive examples hold nothing over; an example reads and writes PostgreSQL, so it is slow.
SLOW_WITH_FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def stored_or_named(descriptor: dict[str, Any], problems: list[Any], client: Client) -> None:
    """The fuzzed entity is in the catalog, with a page that renders, or it is a problem of
    document 1 that says where it is at fault."""
    mine = [problem for problem in problems if problem.document == 1]
    name = descriptor["metadata"]["name"]
    stored = Entity.objects.exclude(name="fuzz-sibling").first()
    if stored is not None:
        assert isinstance(name, str) and stored.name == name
        page = client.get(f"/catalog/{stored.namespace}/{stored.kind}/{stored.name}/")
        assert page.status_code == 200
        event("stored", "with problems" if stored.problems else "clean")
        return
    assert mine, "neither stored nor a problem"
    # A field path, or for what the YAML reader refused (a key twice) the line it is on.
    assert all(problem.field or "line " in problem.message for problem in mine), [
        str(problem) for problem in mine
    ]
    event("refused", mine[0].field.split(".")[0])


@settings(max_examples=80, deadline=None, suppress_health_check=SLOW_WITH_FIXTURES)
@given(descriptor=descriptors())
def test_no_value_in_a_document_stops_its_location_refreshing(
    tmp_path: Path, descriptor: dict[str, Any]
) -> None:
    Location.objects.all().delete()
    client = signed_in(f"fuzz{next(_examples)}@example.com")
    folder = tmp_path / str(next(_examples))
    folder.mkdir()
    (folder / "catalog-info.yaml").write_text(yaml_file([descriptor, SIBLING]), encoding="utf-8")

    location = location_register(target=str(folder), allow_kinds=["User", "Group"])
    report = location_refresh(location=location)

    sibling = Entity.objects.get(name="fuzz-sibling")
    assert sibling.title == "The valid neighbour"
    stored_or_named(descriptor, report.problems, client)
    assert client.get("/catalog/").status_code == 200


JSON_TEXT = st.one_of(
    st.text(max_size=40),
    VALUES.map(json.dumps),
    st.sampled_from(['"\\ud800"', '{"a": "\\udfff"}', '"\\u0000"', "[" * 5000 + "]" * 5000,
                     "[" * 200 + "]" * 200, "1" * 5000, "1e999", '{"a": 1, "a": 2}']),
)  # fmt: skip
PLACEHOLDER_HOMES = [
    ("spec", "schema"),
    ("spec", "owner"),
    ("metadata", "description"),
    ("metadata", "title"),
    ("metadata", "tags"),
]


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_WITH_FIXTURES)
@given(text=JSON_TEXT, kind=st.sampled_from(["$json", "$text", "$yaml"]),
       home=st.sampled_from(PLACEHOLDER_HOMES))  # fmt: skip
def test_no_placeholder_content_stops_its_location_refreshing(
    tmp_path: Path, text: str, kind: str, home: tuple[str, str]
) -> None:
    Location.objects.all().delete()
    client = signed_in(f"fuzz{next(_examples)}@example.com")
    folder = tmp_path / str(next(_examples))
    folder.mkdir()
    (folder / "value.txt").write_text(text, encoding="utf-8", errors="surrogatepass")
    descriptor: dict[str, Any] = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "fuzz-target"},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
    }
    section, key = home
    descriptor[section][key] = {kind: "./value.txt"}
    (folder / "catalog-info.yaml").write_text(yaml_file([descriptor, SIBLING]), encoding="utf-8")

    report = location_refresh(location=location_register(target=str(folder)))

    assert Entity.objects.get(name="fuzz-sibling").title == "The valid neighbour"
    stored_or_named(descriptor, report.problems, client)
