"""Fuzzing Atrium's annotation readers and the entity reference parser with arbitrary text.

Whatever a descriptor's annotation holds, reading it answers: roles, approvers, a duration or
a problem that names the annotation; never an exception, on a refresh, a page or a decision.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.annotations import (
    APPROVALS_REQUIRED,
    APPROVERS,
    MAX_ACCESS_DURATION,
    MAX_ROLE_NAME,
    REQUIRED_ROLES,
    access_annotations,
)
from catalog.refs import EntityRefError, parse_entity_ref, parse_entity_ref_value
from portal.durations import LONGEST, DurationError, duration_parse

ATRIUM_KEYS = (REQUIRED_ROLES, APPROVERS, MAX_ACCESS_DURATION, APPROVALS_REQUIRED)

# Text as descriptors hold it, and text built from what these parsers look for.
ANY_TEXT = st.text()
PARSER_TEXT = st.text(alphabet=string.digits + "PTDHMSWY.,:/-+ ²١٣\u00a0\t" + "gGuU", max_size=40)
ANNOTATION_VALUES = st.one_of(
    ANY_TEXT,
    PARSER_TEXT,
    st.integers().map(str),
    st.sampled_from(["²", "١٢", "9" * 5000, "40000", " 3 ", "P" + "9" * 400 + "D", "PT1e9S"]),
    st.lists(st.one_of(ANY_TEXT, PARSER_TEXT), max_size=20).map(",".join),
)


@settings(max_examples=600, deadline=None)
@given(
    annotations=st.dictionaries(st.sampled_from(ATRIUM_KEYS), ANNOTATION_VALUES),
    namespace=st.one_of(st.just("default"), ANY_TEXT.filter(bool)),
)
def test_any_annotation_text_is_read_or_named_as_a_problem(
    annotations: dict[str, str], namespace: str
) -> None:
    found = access_annotations({"metadata": {"namespace": namespace, "annotations": annotations}})

    assert all(role and len(role) <= MAX_ROLE_NAME for role in found.required_roles)
    assert all(problem.split(":", 1)[0] in ATRIUM_KEYS for problem in found.problems)
    if found.max_access_duration is not None:
        assert found.max_access_duration <= LONGEST
    # Stored with each request as a small integer; more approvals than people is no policy.
    assert 1 <= found.approvals_required <= 10
    if found.decisions_blocked:
        assert found.problems


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("²", "atrium.dev/approvals-required: '²' is not a whole number from 1 to 10"),
        ("40000", "atrium.dev/approvals-required: '40000' is not a whole number from 1 to 10"),
        (
            "9" * 5000,
            f"atrium.dev/approvals-required: '{'9' * 60}'… (5,000 characters) is not a whole",
        ),
    ],
)
def test_an_approval_count_that_is_no_small_whole_number_blocks_decisions(
    raw: str, problem: str
) -> None:
    found = access_annotations({"metadata": {"annotations": {APPROVALS_REQUIRED: raw}}})

    assert found.decisions_blocked
    assert found.approvals_required == 1
    assert found.problems[0].startswith(problem)


@settings(max_examples=600, deadline=None)
@given(raw=st.one_of(ANY_TEXT, PARSER_TEXT))
def test_any_duration_text_is_a_duration_or_says_why_not(raw: str) -> None:
    try:
        duration = duration_parse(raw)
    except DurationError as error:
        # Named by its start: a long value is cut at 40 characters.
        assert repr(raw[:40])[:-1] in str(error)
    else:
        assert duration <= LONGEST


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["kind", "namespace", "name", "x"]), children, max_size=4)
    ),
    max_leaves=8,
)


@settings(max_examples=600, deadline=None)
@given(
    ref=st.one_of(ANY_TEXT, st.text(alphabet="ab:/ ", max_size=12), JSONISH),
    default_kind=st.one_of(st.none(), st.sampled_from(["Group", "", "Component"])),
)
def test_any_reference_is_parsed_or_refused_with_entity_ref_error(
    ref: object, default_kind: str | None
) -> None:
    for parse in (parse_entity_ref, parse_entity_ref_value):
        try:
            parsed = parse(ref, default_kind=default_kind)
        except EntityRefError as error:
            assert str(error).startswith("Entity reference")
        else:
            assert parsed.kind and parsed.namespace and parsed.name
            assert parsed.key == parsed.key.lower()
