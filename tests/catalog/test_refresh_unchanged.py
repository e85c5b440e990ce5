"""A refresh skips the files it read last time that have not changed, and only those: whatever
it keeps is what reading them again would have given."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import ingest
from catalog.models import Entity, Location
from catalog.services import location_import, location_refresh, location_register
from catalog.yamlfiles import Document

pytestmark = pytest.mark.django_db

COMPONENT = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  description: {description}
spec:
  type: service
  lifecycle: production
  owner: team-payments
"""

PERSON = """\
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: ada
spec:
  profile: {email: ada@example.com}
  memberOf: []
"""


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files each refresh parses, in order (a skipped file is read, not parsed)."""
    files: list[str] = []
    real = ingest.load_documents

    def counting(raw: bytes, *, source: str, **options: object) -> list[Document]:
        files.append(Path(source).name)
        return real(raw, source=source, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "load_documents", counting)
    return files


def refresh(folder: Path) -> tuple[list[str], list[str], list[str], int]:
    report = location_refresh(location=location_register(target=str(folder)))
    return report.added, report.updated, report.removed, report.unchanged


def test_a_refresh_parses_only_the_files_that_changed(tmp_path: Path, parsed: list[str]) -> None:
    (tmp_path / "a.yaml").write_text(COMPONENT.format(name="alpha", description="one"))
    (tmp_path / "b.yaml").write_text(COMPONENT.format(name="beta", description="one"))
    assert refresh(tmp_path) == (["component:default/alpha", "component:default/beta"], [], [], 0)
    parsed.clear()

    assert refresh(tmp_path) == ([], [], [], 2)
    assert parsed == []

    (tmp_path / "b.yaml").write_text(COMPONENT.format(name="beta", description="two"))
    assert refresh(tmp_path) == ([], ["component:default/beta"], [], 1)
    assert parsed == ["b.yaml"]
    assert Entity.objects.get(name="beta").description == "two"

    (tmp_path / "a.yaml").unlink()
    assert refresh(tmp_path) == ([], [], ["component:default/alpha"], 1)


def test_an_entity_removed_by_hand_comes_back_from_its_unchanged_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(COMPONENT.format(name="alpha", description="one"))
    refresh(tmp_path)
    Entity.objects.get(name="alpha").delete()  # as the API's DELETE by uid does

    assert refresh(tmp_path) == (["component:default/alpha"], [], [], 0)


def test_a_kind_allowed_later_is_read_from_the_unchanged_file(tmp_path: Path) -> None:
    (tmp_path / "people.yaml").write_text(PERSON)
    report = location_import(target=str(tmp_path))
    assert report.added == [] and "User entities may not come from" in str(report.problems[0])
    assert refresh(tmp_path)[0] == []

    report = location_import(target=str(tmp_path), allow_kinds=["User"])

    assert report.added == ["user:default/ada"]


def test_an_entity_another_location_gave_up_is_taken_from_the_unchanged_file(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "a.yaml").write_text(COMPONENT.format(name="alpha", description="first"))
    (second / "a.yaml").write_text(COMPONENT.format(name="alpha", description="second"))
    refresh(first)
    assert "already provided by the location" in str(
        location_refresh(location=location_register(target=str(second))).problems[0]
    )

    (first / "a.yaml").unlink()
    refresh(first)

    assert refresh(second)[0] == ["component:default/alpha"]
    assert Entity.objects.get(name="alpha").description == "second"


def test_a_changed_file_claiming_what_an_unchanged_one_holds_is_judged_as_by_a_full_read(
    tmp_path: Path,
) -> None:
    (tmp_path / "b.yaml").write_text(COMPONENT.format(name="beta", description="from b"))
    refresh(tmp_path)

    # a.yaml is read first, so a full read gives it beta, and b.yaml the conflict.
    (tmp_path / "a.yaml").write_text(COMPONENT.format(name="beta", description="from a"))
    report = location_refresh(location=location_register(target=str(tmp_path)))

    assert Entity.objects.get(name="beta").description == "from a"
    assert [problem.message for problem in report.problems] == [
        f"ConflictError: component:default/beta is also defined at {tmp_path / 'a.yaml'}:1"
    ]


def test_a_placeholders_file_is_read_again_whenever_the_location_is(tmp_path: Path) -> None:
    (tmp_path / "about.txt").write_text("first words")
    (tmp_path / "a.yaml").write_text(
        COMPONENT.format(name="alpha", description="{$text: ./about.txt}")
    )
    refresh(tmp_path)
    assert Entity.objects.get(name="alpha").description == "first words"

    (tmp_path / "about.txt").write_text("second words")

    assert refresh(tmp_path)[1] == ["component:default/alpha"]
    assert Entity.objects.get(name="alpha").description == "second words"


def test_a_file_with_a_problem_is_parsed_at_every_refresh(
    tmp_path: Path, parsed: list[str]
) -> None:
    (tmp_path / "a.yaml").write_text(COMPONENT.format(name="alpha", description="[unclosed"))
    (tmp_path / "b.yaml").write_text(COMPONENT.format(name="beta", description="fine"))
    refresh(tmp_path)
    parsed.clear()

    refresh(tmp_path)

    assert parsed == ["a.yaml"]
    assert Location.objects.get().last_outcome == Location.Outcome.PROBLEMS
