"""Safe path resolution: every path the viewer opens is resolved inside the folder it was given."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from fedsim.errors import UserInputError


class UnsafePathError(UserInputError):
    """A path from the page that is absolute, climbs with ``..`` or leads outside the root."""


def resolve_inside(root: Path, relative: str | PurePosixPath) -> Path:
    """The real path of ``relative`` under ``root``, symlinks followed.

    Refuses an absolute path, any ``..`` part, a NUL byte, and anything whose real path lies
    outside ``root``'s real path (a symlink pointing out included). ``"."`` or ``""`` is the
    root itself.
    """
    text = str(relative)
    if "\x00" in text:
        raise UnsafePathError(f"path {text!r} contains a NUL byte")
    parts = PurePosixPath(text.replace("\\", "/"))
    if parts.is_absolute() or text.startswith(("/", "\\")):
        raise UnsafePathError(f"path {text!r} is absolute; give a path relative to the folder")
    if ".." in parts.parts:
        raise UnsafePathError(f"path {text!r} climbs out with '..'")
    base = root.resolve()
    resolved = (base / parts).resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafePathError(f"path {text!r} leads outside the folder (through a symlink)")
    return resolved


def relative_name(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, ``"."`` for the root; both are resolved."""
    relative = path.resolve().relative_to(root.resolve())
    return relative.as_posix() if relative.parts else "."
