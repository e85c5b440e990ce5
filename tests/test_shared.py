"""A clone without ../shared beside it runs green (skipping what needs it), but CI never does."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.conftest
from tests.conftest import shared_path


def test_a_missing_corpus_skips_saying_what_is_missing_outside_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tests.conftest, "SHARED", tmp_path / "shared")
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.skip.Exception) as skipped:
        shared_path("conformance", "backstage-examples")

    assert str(tmp_path / "shared" / "conformance" / "backstage-examples") in str(skipped.value)
    assert "skipped outside CI" in str(skipped.value)


def test_a_missing_corpus_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tests.conftest, "SHARED", tmp_path / "shared")
    monkeypatch.setenv("CI", "true")

    with pytest.raises(pytest.fail.Exception) as failed:
        shared_path("conformance")

    assert "../shared" in str(failed.value) and "CI is set" in str(failed.value)


def test_a_present_corpus_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shared" / "conformance").mkdir(parents=True)
    monkeypatch.setattr(tests.conftest, "SHARED", tmp_path / "shared")
    monkeypatch.setenv("CI", "true")

    assert shared_path("conformance") == tmp_path / "shared" / "conformance"
