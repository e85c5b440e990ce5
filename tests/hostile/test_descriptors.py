"""The hostile descriptor corpus: each file holds one hostile entity and a valid neighbour.

A file's first line says what must come of the hostile entity: `# refused: <message>` (the
message, naming the field, is among the location's problems and on the locations page) or
`# stored[: <message>]` (it is in the catalog, its page renders, showing the message). Either
way the neighbour is stored, and every page that shows what was stored answers 200.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.html import escape

from catalog.models import Entity, Location
from catalog.refresh import MAX_SEARCH_TEXT
from catalog.services import location_refresh, location_register
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db
CORPUS = Path(__file__).parent / "descriptors"
CASES = sorted(CORPUS.glob("*.yaml"))


def expectation(case: Path) -> tuple[str, str]:
    header = case.read_text(encoding="utf-8").splitlines()[0]
    outcome, _, message = header.removeprefix("# ").partition(": ")
    assert outcome in {"refused", "stored"}, f"{case.name}: the first line says what to expect"
    return outcome, message


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_a_hostile_value_is_its_entitys_problem_and_its_neighbour_is_stored(
    case: Path, tmp_path: Path
) -> None:
    outcome, message = expectation(case)
    # The case and the files its placeholders read, alone in a folder location.
    for path in CORPUS.glob(f"{case.stem}.*"):
        shutil.copy(path, tmp_path / path.name)
    admin = signed_in("admin@example.com", settings.PORTAL_ADMIN_ROLE)

    report = location_refresh(location=location_register(target=str(tmp_path)))

    sibling = Entity.objects.get(name="sibling")
    assert sibling.title == "The valid neighbour" and sibling.problems == []
    stored = Entity.objects.exclude(pk=sibling.pk)
    problems = [str(problem) for problem in report.problems]
    if outcome == "refused":
        assert any(message in problem for problem in problems), problems
        assert escape(message) in admin.get("/catalog/locations/").content.decode()
        assert Location.objects.get().last_outcome == Location.Outcome.PROBLEMS
    else:
        assert stored.exists(), problems
    for entity in [sibling, *stored]:
        page = admin.get(f"/catalog/{entity.namespace}/{entity.kind}/{entity.name}/")
        assert page.status_code == 200
        if outcome == "stored" and entity != sibling and message:
            assert escape(message) in page.content.decode()
    assert admin.get("/catalog/").status_code == 200
    assert admin.get("/catalog/?q=hostile").status_code == 200


def test_what_stored_values_hold_is_shown_as_text_never_as_markup(tmp_path: Path) -> None:
    shutil.copy(CORPUS / "script-in-values.yaml", tmp_path)
    location_refresh(location=location_register(target=str(tmp_path)))

    page = signed_in("reader@example.com").get("/catalog/default/component/hostile/")

    html = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    # Django's template language is not run on what a descriptor holds.
    assert "{{ request }} {% debug %}" in html.replace("&#x27;", "'")


def test_a_relation_target_no_page_can_answer_is_shown_as_text(tmp_path: Path) -> None:
    shutil.copy(CORPUS / "relation-target-with-no-page.yaml", tmp_path)
    location_refresh(location=location_register(target=str(tmp_path)))

    page = signed_in("reader@example.com").get("/catalog/default/component/hostile/?tab=relations")

    assert page.status_code == 200
    assert '<code>component:default/a/b</code> <span class="muted">(not in the catalog)' in (
        page.content.decode()
    )
    assert 'href=""' not in page.content.decode()


def test_a_megabyte_of_description_is_stored_and_searched_by_its_start(tmp_path: Path) -> None:
    """PostgreSQL refuses a full-text document over 1 MB: the search looks at the start."""
    words = " ".join(f"w{number:06x}" for number in range(150_000))
    (tmp_path / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: wordy\n"
        f"  description: {words}\n"
        "spec: {type: service, lifecycle: production, owner: team-a}\n"
    )

    report = location_refresh(location=location_register(target=str(tmp_path)))

    assert report.added == ["component:default/wordy"]
    wordy = Entity.objects.get(name="wordy")
    assert len(wordy.description) == len(words) and len(wordy.search_text) == MAX_SEARCH_TEXT
    assert list(Entity.objects.matching("w000002").values_list("name", flat=True)) == ["wordy"]
