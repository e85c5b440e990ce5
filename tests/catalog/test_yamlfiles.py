"""Descriptor files are read safely: limits, hostile YAML, and errors that say where."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from catalog.yamlfiles import (
    MAX_DOCUMENTS,
    MAX_FILE_BYTES,
    DescriptorFileError,
    load_documents,
)

BILLION_LAUGHS = """
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_documents_are_numbered_in_file_order_and_empty_ones_skipped() -> None:
    text = "kind: A\n---\n---\nkind: B\n---\n# only a comment\n---\nkind: C\n"

    documents = load_documents(text, source="catalog-info.yaml")

    assert [(d.number, d.data["kind"]) for d in documents] == [(1, "A"), (3, "B"), (5, "C")]


def test_a_billion_laughs_file_is_refused_quickly_not_expanded() -> None:
    started = time.monotonic()

    with pytest.raises(DescriptorFileError) as refused:
        load_documents(BILLION_LAUGHS, source="laughs.yaml")

    assert time.monotonic() - started < 2
    assert str(refused.value).startswith("laughs.yaml:1: the document expands to more than")


def test_a_few_honest_aliases_are_fine() -> None:
    text = "defaults: &owner team-a\nspec:\n  owner: *owner\n"

    (document,) = load_documents(text, source="f.yaml")

    assert document.data["spec"]["owner"] == "team-a"


def test_python_tags_are_not_executed() -> None:
    with pytest.raises(DescriptorFileError) as refused:
        load_documents("kind: !!python/object/apply:os.system ['true']\n", source="evil.yaml")

    assert "evil.yaml:1: YAML error" in str(refused.value)


def test_a_syntax_error_names_the_document_and_line() -> None:
    text = "kind: A\n---\nkind: B\n  bad: [indent\n"

    with pytest.raises(DescriptorFileError) as refused:
        load_documents(text, source="broken.yaml")

    assert str(refused.value).startswith("broken.yaml:2: YAML error at line 4")


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(DescriptorFileError) as refused:
        load_documents("metadata:\n  name: a\n  name: b\n", source="dup.yaml")

    assert str(refused.value) == "dup.yaml:1: the key 'name' appears twice (line 3)"


def test_an_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(DescriptorFileError) as refused:
        load_documents("a: " + "x" * MAX_FILE_BYTES, source="big.yaml")

    assert "at most" in str(refused.value)


def test_too_many_documents_are_refused() -> None:
    text = "kind: A\n---\n" * (MAX_DOCUMENTS + 1)

    with pytest.raises(DescriptorFileError) as refused:
        load_documents(text, source="many.yaml")

    assert f"at most {MAX_DOCUMENTS} documents" in str(refused.value)


CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"

YAML_SHAPES = [
    # Scalars of every type YAML 1.1 resolves, quoted and not.
    "a: 1\nb: '1'\nc: true\nd: 'yes'\ne: ~\nf: 1.5\ng: 2024-01-02\nh: 0x1f\ni: .inf\nj:\n",
    # Nested mappings and lists, lists of mappings, flow style, block scalars.
    "spec:\n  items: [a, {b: [1, 2]}, [c]]\n  text: |\n    two\n    lines\n  folded: >\n    x\n",
    # Merge keys and anchors: PyYAML's constructor builds these.
    "base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n",
    # Tagged collections and complex keys.
    "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\n",
    "? [k]\n: v\n",
    "n: !!str 12\nm: !!int '7'\nb: !!binary aGk=\n",
]


@pytest.mark.parametrize("text", YAML_SHAPES)
def test_documents_are_what_pyyaml_safe_load_builds(text: str) -> None:
    try:
        expected: object = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:  # complex keys: PyYAML refuses them too
        with pytest.raises(DescriptorFileError):
            load_documents(text, source="f.yaml")
        assert "unhashable" in str(error)
        return

    assert [document.data for document in load_documents(text, source="f.yaml")] == expected


def test_backstage_example_files_load_as_pyyaml_loads_them() -> None:
    paths = sorted(CONFORMANCE.rglob("*.yaml"))
    assert len(paths) > 10

    for path in paths:
        expected = [data for data in yaml.safe_load_all(path.read_bytes()) if data is not None]
        loaded = load_documents(path.read_bytes(), source=path.name)
        assert [document.data for document in loaded] == expected, path.name


def test_a_key_given_twice_deep_in_a_list_is_refused() -> None:
    text = "spec:\n  links:\n    - url: a\n      url: b\n"

    with pytest.raises(DescriptorFileError) as refused:
        load_documents(text, source="dup.yaml")

    assert str(refused.value) == "dup.yaml:1: the key 'url' appears twice (line 4)"
