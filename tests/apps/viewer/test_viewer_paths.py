"""Path safety: whatever the page asks for is resolved inside the viewer's folder or refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.viewer.paths import UnsafePathError, relative_name, resolve_inside
from fedsim.errors import UserInputError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "runs" / "a").mkdir(parents=True)
    (tmp_path / "root" / "runs" / "a" / "metrics.json").write_text("{}")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.json").write_text("{}")
    return tmp_path / "root"


@pytest.mark.parametrize("relative", ["runs/a", "runs/a/metrics.json", "runs/./a", "runs/a/"])
def test_relative_paths_inside_resolve_under_the_root(root: Path, relative: str) -> None:
    resolved = resolve_inside(root, relative)

    assert resolved.is_relative_to(root.resolve())
    assert resolved.exists()


@pytest.mark.parametrize("relative", [".", ""])
def test_dot_and_empty_name_the_root(root: Path, relative: str) -> None:
    assert resolve_inside(root, relative) == root.resolve()


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("/etc/passwd", "absolute"),
        ("//etc", "absolute"),
        ("..", "'..'"),
        ("../outside/secret.json", "'..'"),
        ("runs/../../outside", "'..'"),
        ("runs/a/..", "'..'"),
        ("runs\\..\\..\\outside", "'..'"),
        ("runs/a\x00/metrics.json", "NUL"),
    ],
)
def test_absolute_climbing_and_nul_paths_are_refused(
    root: Path, relative: str, reason: str
) -> None:
    with pytest.raises(UnsafePathError, match=reason):
        resolve_inside(root, relative)


def test_a_symlink_out_of_the_root_is_refused(root: Path) -> None:
    (root / "runs" / "escape").symlink_to(root.parent / "outside")
    (root / "runs" / "a" / "leak.json").symlink_to(root.parent / "outside" / "secret.json")

    for relative in ("runs/escape", "runs/escape/secret.json", "runs/a/leak.json"):
        with pytest.raises(UnsafePathError, match="outside the folder"):
            resolve_inside(root, relative)


def test_a_symlink_that_stays_inside_is_followed(root: Path) -> None:
    (root / "alias").symlink_to(root / "runs" / "a")

    assert resolve_inside(root, "alias/metrics.json") == (root / "runs/a/metrics.json").resolve()


def test_a_symlinked_root_is_its_target(tmp_path: Path, root: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(root)

    assert resolve_inside(link, "runs/a") == (root / "runs" / "a").resolve()
    with pytest.raises(UnsafePathError):
        resolve_inside(link, "../outside")


def test_unsafe_paths_are_user_errors(root: Path) -> None:
    assert issubclass(UnsafePathError, UserInputError)


def test_relative_name_is_posix_and_dot_for_the_root(root: Path) -> None:
    assert relative_name(root, root / "runs" / "a") == "runs/a"
    assert relative_name(root, root) == "."
