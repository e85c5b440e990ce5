"""Hostile folder locations: symbolic links out of the folder, to folders outside, in loops,
placeholders and Location targets that climb out; each refused by name, the rest still read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalog.models import Entity, Location
from catalog.services import location_refresh, location_register

pytestmark = pytest.mark.django_db


def component(name: str, description: str = "a component") -> str:
    return (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata:\n  name: {name}\n  description: {description}\n"
        "spec: {type: service, lifecycle: production, owner: team-a}\n"
    )


def refresh(target: Path) -> tuple[list[str], set[str]]:
    location = location_refresh(location=location_register(target=str(target))).location
    location.refresh_from_db()
    names = set(Entity.objects.filter(location=location).values_list("name", flat=True))
    return list(location.last_problems), names


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files beside the location's folder, which it must not read."""
    folder = tmp_path / "outside"
    (folder / "dir").mkdir(parents=True)
    (folder / "secret.yaml").write_text(component("secret"))
    (folder / "secret.txt").write_text("a secret of the server")
    (folder / "dir" / "inner.yaml").write_text(component("inner-secret"))
    return folder


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    folder = tmp_path / "root"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.yaml").write_text(component("good"))
    (folder / "sub" / "real.yaml").write_text(component("linked-inside"))
    (folder / "notes.txt").write_text("notes beside the descriptor")
    return folder.resolve()


def test_links_out_of_the_folder_are_refused_by_name_and_the_rest_is_read(
    root: Path, outside: Path
) -> None:
    (root / "linked-file.yaml").symlink_to(outside / "secret.yaml")
    (root / "linked-dir").symlink_to(outside / "dir", target_is_directory=True)
    (root / "relative-link.yml").symlink_to(Path("..") / "outside" / "secret.yaml")
    (root / "loop.yaml").symlink_to(root / "loop.yaml")
    (root / "loop-a.yaml").symlink_to(root / "loop-b.yaml")
    (root / "loop-b.yaml").symlink_to(root / "loop-a.yaml")
    (root / "dangling.yaml").symlink_to(root / "nothing-here.yaml")
    (root / "sub" / "back").symlink_to(root, target_is_directory=True)  # a folder loop, inside
    (root / "inside-link.yaml").symlink_to(root / "sub" / "real.yaml")

    problems, names = refresh(root)

    refused = "refused: a symbolic link to a file outside the location"
    assert sorted(problems) == sorted(
        [
            f"{root / 'linked-file.yaml'}: {refused}",
            f"{root / 'relative-link.yml'}: {refused}",
            f"{root / 'linked-dir'}: refused: a symbolic link to a folder outside the location",
            f"{root / 'loop.yaml'}: refused: a loop of symbolic links",
            f"{root / 'loop-a.yaml'}: refused: a loop of symbolic links",
            f"{root / 'loop-b.yaml'}: refused: a loop of symbolic links",
        ]
    )
    # The linked file inside is read once, by its own path, however many ways lead to it.
    assert names == {"good", "linked-inside"}
    assert Entity.objects.get(name="linked-inside").source == str(root / "sub" / "real.yaml")


def test_placeholders_and_location_targets_that_leave_the_folder_are_refused(
    root: Path, outside: Path
) -> None:
    (root / "secret-link.txt").symlink_to(outside / "secret.txt")
    (root / "linked-dir").symlink_to(outside / "dir", target_is_directory=True)
    (root / "looping.txt").symlink_to(root / "looping.txt")
    os.mkfifo(root / "pipe.txt")  # a read of it would wait for a writer forever
    (root / "placeholders.yaml").write_text(
        "---\n".join(
            [
                component("through-link", "{$text: ./secret-link.txt}"),
                component("climbing", "{$text: ../outside/secret.txt}"),
                component("absolute", f"{{$text: '{outside / 'secret.txt'}'}}"),
                component("looping", "{$text: ./looping.txt}"),
                component("beside", "{$text: ./notes.txt}"),
                component("piped", "{$text: ./pipe.txt}"),
                "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: nested}\n"
                "spec:\n  targets: [../outside/secret.yaml, ./linked-dir, ./linked-dir/inner.yaml,"
                " /etc/hostname, ./good.yaml]\n",
            ]
        )
    )

    problems, names = refresh(root)

    source = root / "placeholders.yaml"
    assert f"{root / 'linked-dir'}: refused: a symbolic link to a folder outside the location" in (
        problems
    )
    assert [problem for problem in problems if problem.startswith(str(source))] == [
        f"{source}:1: Placeholder $text refers to './secret-link.txt', outside the registered "
        "location",
        f"{source}:2: Placeholder $text refers to '../outside/secret.txt', outside the "
        "registered location",
        f"{source}:3: Placeholder $text refers to '{outside / 'secret.txt'}', outside the "
        "registered location",
        f"{source}:4: Placeholder $text could not read './looping.txt': refused: a loop of "
        "symbolic links",
        f"{source}:6: Placeholder $text could not read './pipe.txt': refused: not a regular file",
        *(
            f"{source}:7: the target {target!r} is outside the registered location {root}"
            for target in [
                "../outside/secret.yaml",
                "./linked-dir",
                "./linked-dir/inner.yaml",
                "/etc/hostname",
            ]
        ),
    ]
    assert names == {"good", "linked-inside", "beside", "nested"}
    assert Entity.objects.get(name="beside").descriptor["metadata"]["description"] == (
        "notes beside the descriptor"
    )


def test_a_file_location_reads_only_inside_its_own_folder(root: Path, outside: Path) -> None:
    (root / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: entry}\n"
        "spec: {targets: [./good.yaml, ../outside/secret.yaml]}\n"
    )

    problems, names = refresh(root / "catalog-info.yaml")

    assert problems == [
        f"{root / 'catalog-info.yaml'}:1: the target '../outside/secret.yaml' is outside the "
        f"registered location {root / 'catalog-info.yaml'}"
    ]
    assert names == {"entry", "good"}


def test_a_file_that_becomes_a_link_outside_keeps_what_it_held(root: Path, outside: Path) -> None:
    (root / "was-fine.yaml").write_text(component("was-fine"))
    refresh(root)
    assert Entity.objects.filter(name="was-fine").exists()

    os.remove(root / "was-fine.yaml")
    (root / "was-fine.yaml").symlink_to(outside / "secret.yaml")
    problems, names = refresh(root)

    assert problems == [
        f"{root / 'was-fine.yaml'}: refused: a symbolic link to a file outside the location"
    ]
    # Unreadable is not gone: its entity stays until the file can be read again.
    assert names == {"good", "linked-inside", "was-fine"}
    assert not Entity.objects.filter(name="secret").exists()
    assert Location.objects.count() == 1
