"""Descriptor files are read as Backstage reads them (YAML 1.2), safely: limits, hostile YAML,
and errors that say where."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog.yamlfiles import (
    MAX_DEPTH,
    MAX_DOCUMENTS,
    MAX_FILE_BYTES,
    DescriptorFileError,
    Document,
    load_documents,
)
from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[2]

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


def data_of(text: str) -> Any:
    (document,) = load_documents(text, source="f.yaml")
    return document.data


def test_documents_are_numbered_in_file_order_and_empty_ones_skipped() -> None:
    text = "kind: A\n---\n---\nkind: B\n---\n# only a comment\n---\nkind: C\n---\n~\n"

    documents = load_documents(text, source="catalog-info.yaml")

    assert [(d.number, d.data["kind"]) for d in documents] == [(1, "A"), (3, "B"), (5, "C")]


# --- YAML 1.2's core schema, as the `yaml` package Backstage parses with ----------------------


def test_what_yaml_1_1_would_make_booleans_dates_and_numbers_stays_text() -> None:
    text = (
        "metadata:\n"
        "  title: yes\n"
        "  annotations: {example.com/enabled: on, example.com/window: 10:30}\n"
        "  labels: {since: 2024-01-01}\n"
        "  tags: [no, off, y, n]\n"
        "  description: 2024-01-01 12:00:00\n"
        "spec: {octal-looking: 0755, underscored: 1_000, binary-looking: 0b11, sexagesimal: 1:30}\n"
    )

    assert data_of(text) == {
        "metadata": {
            "title": "yes",
            "annotations": {"example.com/enabled": "on", "example.com/window": "10:30"},
            "labels": {"since": "2024-01-01"},
            "tags": ["no", "off", "y", "n"],
            "description": "2024-01-01 12:00:00",
        },
        "spec": {
            "octal-looking": 755,
            "underscored": "1_000",
            "binary-looking": "0b11",
            "sexagesimal": "1:30",
        },
    }


def test_a_merge_key_is_an_ordinary_key() -> None:
    text = "base: &b {x: 1}\nthing:\n  <<: *b\n  y: 2\n"

    assert data_of(text) == {"base": {"x": 1}, "thing": {"<<": {"x": 1}, "y": 2}}


CORE_SCALARS = {
    # null
    "~": None, "null": None, "Null": None, "NULL": None, "": None, "nULL": "nULL",
    # bool
    "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
    "tRUE": "tRUE", "yes": "yes", "on": "on",
    # int: decimal (leading zeros are decimal), 0o octal, 0x hex
    "0": 0, "-12": -12, "+12": 12, "010": 10, "0o17": 15, "0x1F": 31, "0X1F": "0X1F",
    "0o8": "0o8", "-0x1": "-0x1",
    # float, JSON's null standing for what JSON cannot hold
    "1.5": 1.5, "-.5": -0.5, "1.": 1.0, "1e3": 1000.0, "1.5E-2": 0.015, "1e999": None,
    ".inf": None, "-.Inf": None, "+.INF": None, ".nan": None, ".NaN": None, "+.nan": "+.nan",
    # text
    "1.2.3": "1.2.3", "1e": "1e", "0x": "0x", ".": ".", "-1-": "-1-", "1,000": "1,000",
}  # fmt: skip


@pytest.mark.parametrize(("plain", "value"), CORE_SCALARS.items(), ids=repr)
def test_plain_scalars_resolve_by_the_core_schema(plain: str, value: object) -> None:
    assert data_of(f"plain: {plain}\nquoted: '{plain}'\n") == {"plain": value, "quoted": plain}


def test_explicit_tags_resolve_as_backstages_parser_resolves_them() -> None:
    text = (
        "a: !!str 12\nb: !!int '7'\nc: !!int abc\nd: !!float 1\ne: !!bool yes\n"
        "f: !!null ''\ng: !custom text\ni: !!map {x: 1}\nj: !custom [1]\n"
    )

    assert data_of(text) == {
        "a": "12", "b": 7, "c": "abc", "d": "1", "e": "yes",
        "f": None, "g": "text", "i": {"x": 1}, "j": [1],
    }  # fmt: skip


def test_keys_become_the_text_json_gives_them() -> None:
    assert data_of("1: a\n~: b\ntrue: c\n2.50: d\n0x10: e\n") == {
        "1": "a", "": "b", "true": "c", "2.5": "d", "16": "e"
    }  # fmt: skip


def test_every_document_is_json() -> None:
    text = "a: [1, 1.5, true, ~, .nan, -.inf, text, {b: 2024-01-01}]\n"

    assert json.loads(json.dumps(data_of(text), allow_nan=False)) == data_of(text)


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("spec:\n  since: !!timestamp 2024-01-01\n", "!!timestamp"),
        ("spec:\n  blob: !!binary aGk=\n", "!!binary"),
        ("spec:\n  set: !!set {a, b}\n", "!!set"),
        ("spec:\n  ordered: !!omap [{a: 1}]\n", "!!omap"),
        ("spec:\n  pairs: !!pairs [{a: 1}]\n", "!!pairs"),
        (
            "spec:\n  run: !!python/object/apply:os.system ['true']\n",
            "!!python/object/apply:os.system",
        ),
    ],
)
def test_tags_that_build_what_json_cannot_hold_refuse_their_document(text: str, tag: str) -> None:
    with pytest.raises(DescriptorFileError) as refused:
        load_documents(text, source="tagged.yaml")

    assert str(refused.value) == (
        f"tagged.yaml:1: the tag {tag} (line 2) is not supported; a descriptor holds only "
        "strings, numbers, booleans, null, lists and mappings"
    )


def test_a_list_as_a_key_is_refused() -> None:
    with pytest.raises(DescriptorFileError) as refused:
        load_documents("? [k]\n: v\n", source="f.yaml")

    assert str(refused.value) == (
        "f.yaml:1: the key at line 1 is a list or mapping; descriptor keys are plain values"
    )


# --- Limits and hostile files ------------------------------------------------------------------


def test_a_billion_laughs_file_is_refused_quickly_not_expanded() -> None:
    started = time.monotonic()

    with pytest.raises(DescriptorFileError) as refused:
        load_documents(BILLION_LAUGHS, source="laughs.yaml")

    assert time.monotonic() - started < 2
    assert str(refused.value).startswith("laughs.yaml:1: the document expands to more than")


def test_a_few_honest_aliases_are_fine() -> None:
    text = "defaults: &owner team-a\nspec:\n  owner: *owner\n  also: *owner\n"

    assert data_of(text)["spec"] == {"owner": "team-a", "also": "team-a"}


# Documents `levels` lists and mappings deep, the root mapping and `spec` included.
def nested_flow(levels: int) -> str:
    return "spec:\n  deep: " + "[" * (levels - 2) + "]" * (levels - 2) + "\n"


def nested_block(levels: int) -> str:
    return "spec:\n  deep:\n" + "".join(" " * (2 + level) + "-\n" for level in range(levels - 2))


def nested_compact(levels: int) -> str:
    return "spec:\n  deep:\n  " + "- " * (levels - 2) + "x\n"


NESTINGS = {"flow": nested_flow, "block": nested_block, "compact block": nested_compact}


def depth_of(value: object) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


@pytest.mark.parametrize("nested", NESTINGS.values(), ids=NESTINGS.keys())
def test_a_document_may_nest_64_levels(nested: Any) -> None:
    assert depth_of(data_of(nested(MAX_DEPTH))) == MAX_DEPTH


@pytest.mark.parametrize("nested", NESTINGS.values(), ids=NESTINGS.keys())
@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 500, 1_500])
def test_a_document_nested_deeper_is_refused(nested: Any, levels: int) -> None:
    started = time.monotonic()

    with pytest.raises(DescriptorFileError) as refused:
        load_documents(nested(levels), source="deep.yaml")

    assert time.monotonic() - started < 2
    assert str(refused.value).startswith("deep.yaml:1: lists and mappings nest more than 64 deep")


def test_aliases_cannot_nest_deeper_than_text_can() -> None:
    chain = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 80))

    with pytest.raises(DescriptorFileError, match="nest more than 64 deep"):
        load_documents(chain, source="chain.yaml")
    with pytest.raises(DescriptorFileError, match="nest more than 64 deep"):
        load_documents("loop: &loop [*loop]\n", source="loop.yaml")


def test_a_100_kb_file_of_brackets_is_refused_not_a_crash() -> None:
    # Fed to libyaml's composer as is, this overflows the C stack and kills the process: it is
    # read in a child so that a regression fails this test rather than the test run.
    program = (
        "from catalog.yamlfiles import load_documents, DescriptorFileError\n"
        "for text in ['a: ' + '[' * 50000 + ']' * 50000, 'a:\\n' + '- ' * 50000 + 'x']:\n"
        "    try:\n"
        "        load_documents(text, source='deep.yaml')\n"
        "    except DescriptorFileError as error:\n"
        "        print(error)\n"
    )

    finished = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == [
        "deep.yaml:1: lists and mappings nest more than 64 deep (line 1); the file was refused, "
        "not read",
        "deep.yaml:1: lists and mappings nest more than 64 deep (line 2); the file was refused, "
        "not read",
    ]


def test_brackets_in_strings_and_long_indentation_are_read_normally() -> None:
    text = (
        "description: '" + "[" * 600 + "'\n"
        "text: |\n" + " " * 300 + "indented\n"
        "---\n" + "tags: [a]\n" * 1 + "---\n" + "links: [{url: x}]\n"
    )

    documents = load_documents(text, source="f.yaml")

    assert documents[0].data == {"description": "[" * 600, "text": "indented\n"}
    assert [d.data for d in documents[1:]] == [{"tags": ["a"]}, {"links": [{"url": "x"}]}]


def test_a_utf16_file_is_read() -> None:
    documents = load_documents("kind: A\n---\nkind: [B]\n".encode("utf-16"), source="f.yaml")

    assert [d.data for d in documents] == [{"kind": "A"}, {"kind": ["B"]}]


def test_a_syntax_error_names_the_document_and_line() -> None:
    text = "kind: A\n---\nkind: B\n  bad: [indent\n"

    with pytest.raises(DescriptorFileError) as refused:
        load_documents(text, source="broken.yaml", per_document_errors=True)

    assert str(refused.value).startswith("broken.yaml:2: YAML error at line 4")


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(DescriptorFileError) as refused:
        load_documents("metadata:\n  name: a\n  'name': b\n", source="dup.yaml")

    assert str(refused.value) == "dup.yaml:1: the key 'name' appears twice (line 3)"


def test_a_key_given_twice_deep_in_a_list_is_refused() -> None:
    text = "spec:\n  links:\n    - url: a\n      url: b\n"

    with pytest.raises(DescriptorFileError) as refused:
        load_documents(text, source="dup.yaml")

    assert str(refused.value) == "dup.yaml:1: the key 'url' appears twice (line 4)"


def test_an_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(DescriptorFileError) as refused:
        load_documents("a: " + "x" * MAX_FILE_BYTES, source="big.yaml")

    assert "at most" in str(refused.value)


def test_too_many_documents_are_refused() -> None:
    text = "kind: A\n---\n" * (MAX_DOCUMENTS + 1)

    with pytest.raises(DescriptorFileError) as refused:
        load_documents(text, source="many.yaml")

    assert f"at most {MAX_DOCUMENTS} documents" in str(refused.value)


# --- One document's problem is its own ---------------------------------------------------------


def test_asked_to_the_other_documents_are_read_beside_a_refused_one() -> None:
    text = (
        "kind: A\n"
        "---\nkind: B\nmetadata: {name: b, name: c}\n"
        "---\nkind: C\nspec: {since: !!timestamp 2024-01-01}\n"
        "---\nkind: D\nspec: " + "[" * 70 + "]" * 70 + "\n"
        "---\nkind: E\n"
    )

    documents = load_documents(text, source="mixed.yaml", per_document_errors=True)

    assert documents == [
        Document(number=1, data={"kind": "A"}),
        Document(number=2, data=None, error="the key 'name' appears twice (line 4)"),
        Document(
            number=3,
            data=None,
            error="the tag !!timestamp (line 7) is not supported; a descriptor holds only "
            "strings, numbers, booleans, null, lists and mappings",
        ),
        Document(
            number=4,
            data=None,
            error="lists and mappings nest more than 64 deep (line 10); the document was "
            "refused, not read",
        ),
        Document(number=5, data={"kind": "E"}),
    ]
    with pytest.raises(DescriptorFileError, match="^mixed.yaml:2: the key 'name' appears twice"):
        load_documents(text, source="mixed.yaml")


# --- Backstage's examples ------------------------------------------------------------------------


def test_backstage_example_files_load_as_before() -> None:
    # They hold no scalar that YAML 1.1 (PyYAML) and 1.2 read differently: they load as they did.
    paths = sorted(shared_path("conformance").rglob("*.yaml"))
    assert len(paths) > 10

    for path in paths:
        expected = [data for data in yaml.safe_load_all(path.read_bytes()) if data is not None]
        loaded = load_documents(path.read_bytes(), source=path.name)
        assert [document.data for document in loaded] == expected, path.name
