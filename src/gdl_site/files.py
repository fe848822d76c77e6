"""Writing the build's generated files: whole or not at all, only when changed, and tidied after.

The build steps write into git-ignored folders (``docs/downloads/``, ``docs/notebooks/`` and
``.cache/notebook-pages/``). :class:`GeneratedFolder` writes each file through a temporary sibling and a rename,
leaves a file alone when its bytes are unchanged (so ``mkdocs serve`` does not rebuild in a loop),
and removes the files that it wrote on the previous run but not on this one (a renamed notebook
leaves no orphan). Files it did not write, it never touches.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

from gdl_ref.bounded_io import zip_members

__all__ = ["GeneratedFolder", "write_if_changed"]

MANIFEST = ".generated"


def _zip_members(data: bytes, path: Path | str = "archive") -> list[tuple[str, bytes]] | None:
    """The (name, bytes) of each member of a zip archive, or None when ``data`` is not one.

    The archive on disk may be anyone's: it is unpacked within :mod:`gdl_ref.bounded_io`'s limits, and one
    over them counts as not a zip (the build then writes its own over it).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return zip_members(archive, path)
    except (zipfile.BadZipFile, ValueError):  # FileTooLarge and a member leaving its folder are ValueErrors
        return None


def same_content(old: bytes, new: bytes) -> bool:
    """Equal bytes, or two zip archives (an Anki deck) with equal members whatever their dates."""
    if old == new:
        return True
    if old[:2] == new[:2] == b"PK":
        members = _zip_members(old)
        return members is not None and members == _zip_members(new)
    return False


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless it already holds the same content; True if written."""
    if path.is_file() and same_content(path.read_bytes(), data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


class GeneratedFolder:
    """A folder the build owns: files written through it are listed in its manifest.

    Use as a context manager; on a clean exit, files of the previous manifest not written this time
    are deleted and the manifest is rewritten.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        manifest = self.folder / MANIFEST
        self.previous = set(manifest.read_text(encoding="utf-8").split("\n")) - {""} if manifest.is_file() else set()
        self.written: set[str] = set()

    def path(self, relative: str) -> Path:
        """Claim ``relative`` for this run and return its full path."""
        self.written.add(relative)
        return self.folder / relative

    def write(self, relative: str, data: bytes | str) -> Path:
        """Write ``data`` at ``relative`` (only if changed) and return the full path."""
        target = self.path(relative)
        write_if_changed(target, data.encode("utf-8") if isinstance(data, str) else data)
        return target

    def __enter__(self) -> GeneratedFolder:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            return
        for stale in sorted(self.previous - self.written):
            (self.folder / stale).unlink(missing_ok=True)
        for folder in sorted({(self.folder / p).parent for p in self.previous - self.written}, reverse=True):
            if folder != self.folder and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        write_if_changed(self.folder / MANIFEST, "\n".join(sorted(self.written)).encode("utf-8") + b"\n")
