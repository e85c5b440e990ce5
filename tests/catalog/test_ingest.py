"""Ingesting locations: what is stored, what is kept, what is removed, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from catalog.models import Entity, Location, Relation
from catalog.services import RefreshReport, location_refresh, location_register
from tests.conftest import shared_path

pytestmark = pytest.mark.django_db

PAYMENTS = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  description: {description}
spec:
  type: service
  lifecycle: production
  owner: team-payments
  providesApis: [payments]
"""


def refresh(target: Path | str) -> RefreshReport:
    return location_refresh(location=location_register(target=str(target)))


def test_backstages_examples_ingest_with_their_relations_and_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    examples = shared_path("conformance", "backstage-examples")
    with pytest.raises(SystemExit) as exited:
        call_command("import_catalog", str(examples), "--allow-kinds", "User,Group")

    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert "22 added" in out
    assert Entity.objects.count() == 22
    assert not Entity.objects.filter(name__icontains="invalid").exists()
    assert 'invalid-component.yaml:1: Policy check failed; caused by Error: "metadata.name"' in err
    assert "all-apis.yaml: NotFoundError" in err
    assert "team-a-group.yaml:5: ConflictError: user:default/guest is also defined at" in err
    assert Relation.objects.filter(
        source_ref="component:default/example-website",
        type="providesApi",
        target_ref="api:default/example-grpc-api",
    ).exists()
    assert Relation.objects.filter(
        source_ref="api:default/example-grpc-api",
        type="apiProvidedBy",
        target_ref="component:default/example-website",
    ).exists()
    alternative = Entity.objects.get(ref="component:alternative/different-namespace")
    assert alternative.descriptor["metadata"]["uid"] == str(alternative.uid)


def test_dry_run_reports_and_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    examples = shared_path("conformance", "backstage-examples")
    with pytest.raises(SystemExit):
        call_command("import_catalog", str(examples), "--dry-run", "--allow-kinds", "User,Group")

    assert "22 added" in capsys.readouterr().out
    assert Entity.objects.count() == 0
    assert Location.objects.count() == 0


def test_an_invalid_version_never_replaces_the_last_good_one(tmp_path: Path) -> None:
    descriptor = tmp_path / "catalog-info.yaml"
    descriptor.write_text(PAYMENTS.format(description="Takes payments"))
    refresh(descriptor)
    good = Entity.objects.get(ref="component:default/payments-api")

    descriptor.write_text(PAYMENTS.format(description="Broken").replace("owner:", "ownr:"))
    report = refresh(descriptor)

    kept = Entity.objects.get(ref="component:default/payments-api")
    assert kept.descriptor == good.descriptor
    assert "/spec must have required property 'owner'" in kept.problems[0]
    assert not report.ok

    descriptor.write_text(PAYMENTS.format(description="Takes payments, again"))
    refresh(descriptor)
    fixed = Entity.objects.get(ref="component:default/payments-api")
    assert fixed.problems == []
    assert fixed.descriptor["metadata"]["description"] == "Takes payments, again"
    assert fixed.uid == good.uid


def test_an_entity_its_location_no_longer_emits_is_removed(tmp_path: Path) -> None:
    descriptor = tmp_path / "catalog-info.yaml"
    second = PAYMENTS.format(description="x").replace("payments-api", "ledger-api")
    descriptor.write_text(PAYMENTS.format(description="x") + "---\n" + second)
    refresh(descriptor)
    assert Entity.objects.count() == 2

    descriptor.write_text(PAYMENTS.format(description="x"))
    report = refresh(descriptor)

    assert report.removed == ["component:default/ledger-api"]
    assert list(Entity.objects.values_list("ref", flat=True)) == ["component:default/payments-api"]
    assert not Relation.objects.filter(source_ref="component:default/ledger-api").exists()


def test_an_unreadable_file_loses_nothing(tmp_path: Path) -> None:
    descriptor = tmp_path / "catalog-info.yaml"
    descriptor.write_text(PAYMENTS.format(description="x"))
    refresh(descriptor)

    descriptor.write_text("kind: [unclosed\n")
    report = refresh(descriptor)

    assert Entity.objects.filter(ref="component:default/payments-api").exists()
    assert "YAML error at line" in str(report.problems[0])
    assert Location.objects.get().last_outcome == Location.Outcome.FAILED


def test_the_same_entity_from_two_locations_stays_with_the_first(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "catalog-info.yaml").write_text(PAYMENTS.format(description="first"))
    (tmp_path / "b" / "catalog-info.yaml").write_text(
        PAYMENTS.format(description="second").replace("payments-api", "Payments-API")
    )
    refresh(tmp_path / "a")

    report = refresh(tmp_path / "b")

    entity = Entity.objects.get()
    assert entity.descriptor["metadata"]["description"] == "first"
    assert f"is already provided by the location {tmp_path / 'a'}" in str(report.problems[0])


def test_locations_and_placeholders_read_files_beside_the_descriptor(tmp_path: Path) -> None:
    (tmp_path / "apis").mkdir()
    (tmp_path / "apis" / "openapi.yaml").write_text("openapi: 3.0.0\ninfo: {title: Payments}\n")
    (tmp_path / "apis" / "payments.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: payments}\n"
        "spec:\n  type: openapi\n  lifecycle: production\n  owner: team-payments\n"
        "  definition:\n    $text: ./openapi.yaml\n"
    )
    (tmp_path / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: root}\n"
        "spec:\n  targets: [./apis/payments.yaml]\n"
    )

    refresh(tmp_path / "catalog-info.yaml")

    api = Entity.objects.get(ref="api:default/payments")
    assert api.descriptor["spec"]["definition"].startswith("openapi: 3.0.0")
    assert Entity.objects.filter(ref="location:default/root").exists()


def test_placeholders_may_not_reach_outside_the_location(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    (tmp_path / "repo").mkdir()
    descriptor = tmp_path / "repo" / "catalog-info.yaml"
    descriptor.write_text(
        PAYMENTS.format(description="x").replace(
            "  description: x", "  description:\n    $text: ../secret.txt"
        )
    )

    report = refresh(tmp_path / "repo")

    assert not Entity.objects.exists()
    assert "outside the registered location" in str(report.problems[0])


def test_a_descriptor_at_a_url_is_ingested(tmp_path: Path, served: str) -> None:
    (tmp_path / "catalog-info.yaml").write_text(PAYMENTS.format(description="over http"))

    report = refresh(f"{served}/catalog-info.yaml")

    assert report.added == ["component:default/payments-api"]
    missing = refresh(f"{served}/nope.yaml")
    assert "NotFoundError" in str(missing.problems[0])


def test_an_annotation_problem_shows_on_the_entity_and_a_second_read_changes_nothing(
    tmp_path: Path,
) -> None:
    descriptor = tmp_path / "catalog-info.yaml"
    descriptor.write_text(
        PAYMENTS.format(description="x").replace(
            "  description: x",
            "  description: x\n  annotations:\n    atrium.dev/max-access-duration: a month",
        )
    )
    refresh(descriptor)

    again = refresh(descriptor)

    entity = Entity.objects.get(ref="component:default/payments-api")
    assert entity.problems == [
        "atrium.dev/max-access-duration: 'a month' is not an ISO 8601 duration such as P30D or "
        "PT12H; the portal's default applies"
    ]
    assert (again.added, again.updated, again.unchanged) == ([], [], 1)


def test_an_entity_that_cannot_be_processed_does_not_stop_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong with one document (here a fault inside validation) is that
    document's problem: its neighbours still ingest and the location's outcome says so."""
    from catalog import ingest

    validate = ingest.validate_entity

    def failing_for_ledger(data: object) -> object:
        if isinstance(data, dict) and data["metadata"]["name"] == "ledger-api":
            raise RuntimeError("the validator fell over")
        return validate(data)

    monkeypatch.setattr(ingest, "validate_entity", failing_for_ledger)
    second = PAYMENTS.format(description="x").replace("payments-api", "ledger-api")
    (tmp_path / "catalog-info.yaml").write_text(PAYMENTS.format(description="x") + "---\n" + second)

    report = refresh(tmp_path / "catalog-info.yaml")

    assert report.added == ["component:default/payments-api"]
    assert [str(problem) for problem in report.problems] == [
        f"{tmp_path / 'catalog-info.yaml'}:2: the entity could not be processed: "
        "RuntimeError: the validator fell over"
    ]
    assert Location.objects.get().last_outcome == Location.Outcome.PROBLEMS


def test_a_location_shows_the_targets_it_could_not_read_and_skips_optional_ones(
    tmp_path: Path,
) -> None:
    (tmp_path / "payments.yaml").write_text(PAYMENTS.format(description="x"))
    (tmp_path / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: root}\n"
        "spec: {targets: [./payments.yaml, ./gone.yaml, 'https://example.invalid/c.yaml']}\n"
        "---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: extras}\n"
        "spec: {presence: optional, targets: [./maybe.yaml]}\n"
    )

    report = refresh(tmp_path)

    root = Entity.objects.get(ref="location:default/root")
    assert report.added == [
        "location:default/root", "component:default/payments-api", "location:default/extras",
    ]  # fmt: skip
    # As everyone reading the entity sees them: no path on the server.
    assert root.problems == [
        "gone.yaml: NotFoundError: no file at this location",
        "catalog-info.yaml:1: the target 'https://example.invalid/c.yaml' is outside the "
        "registered location (a file location on the Atrium server)",
    ]
    assert Entity.objects.get(ref="location:default/extras").problems == []
    assert len(report.problems) == 2


def test_a_refused_document_leaves_its_neighbours_and_its_old_entity_in_place(
    tmp_path: Path,
) -> None:
    """As Backstage reads a file: a YAML error in document 2 is document 2's problem."""
    descriptor = tmp_path / "catalog-info.yaml"
    ledger = PAYMENTS.format(description="x").replace("payments-api", "ledger-api")
    cart = PAYMENTS.format(description="x").replace("payments-api", "cart-api")
    descriptor.write_text("---\n".join([PAYMENTS.format(description="x"), ledger, cart]))
    refresh(descriptor)

    broken = ledger.replace("  description: x\n", "  description: x\n  description: y\n")
    descriptor.write_text("---\n".join([PAYMENTS.format(description="new"), broken, cart]))
    report = refresh(descriptor)

    assert [str(problem) for problem in report.problems] == [
        f"{descriptor}:2: the key 'description' appears twice (line 17)"
    ]
    assert report.updated == ["component:default/payments-api"]
    assert sorted(Entity.objects.values_list("name", flat=True)) == [
        "cart-api", "ledger-api", "payments-api",
    ]  # fmt: skip
    assert report.removed == []


def test_a_json_placeholder_with_nan_is_the_entitys_problem(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text('{"maximum": NaN}')
    (tmp_path / "catalog-info.yaml").write_text(
        PAYMENTS.format(description="x") + "  schema:\n    $json: ./schema.json\n"
    )

    report = refresh(tmp_path / "catalog-info.yaml")

    assert not Entity.objects.exists()
    assert "Placeholder $json failed to parse './schema.json': NaN is not a JSON value" in str(
        report.problems[0]
    )


def test_a_nul_character_is_the_entitys_problem(tmp_path: Path) -> None:
    """PostgreSQL stores no NUL character in text or JSON: refused before it gets there."""
    (tmp_path / "catalog-info.yaml").write_text(
        PAYMENTS.format(description='"a\\0b"')
        + "---\n"
        + PAYMENTS.format(description="fine").replace("payments-api", "ledger-api")
    )

    report = refresh(tmp_path / "catalog-info.yaml")

    assert report.added == ["component:default/ledger-api"]
    assert [str(problem) for problem in report.problems] == [
        f"{tmp_path / 'catalog-info.yaml'}:1: metadata.description holds a NUL character (\\0), "
        "which is not stored"
    ]


def test_an_entity_remembers_the_location_entity_it_was_read_through(tmp_path: Path) -> None:
    """Backstage's ancestry, recorded as read: root Location -> team Location -> component.
    Entities stored before the column existed get it at the next refresh."""
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "payments.yaml").write_text(PAYMENTS.format(description="x"))
    (tmp_path / "team" / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: team}\n"
        "spec: {targets: [./payments.yaml]}\n"
    )
    (tmp_path / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: root}\n"
        "spec: {targets: [./team/catalog-info.yaml]}\n"
    )
    refresh(tmp_path / "catalog-info.yaml")
    Entity.objects.update(parent_ref="")
    # The code that brought the column reads every file again (catalog.refresh.reading_salt).
    Location.objects.update(file_digests={})

    refresh(tmp_path / "catalog-info.yaml")

    assert dict(Entity.objects.values_list("name", "parent_ref")) == {
        "root": "",
        "team": "location:default/root",
        "payments-api": "location:default/team",
    }
