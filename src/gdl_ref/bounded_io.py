"""Reading files the package did not write, with a limit on what each may cost, every refusal naming the file.

A file from outside (a checkpoint someone sent, a lock file from a pull request, a recorded run, a
zip archive) may declare or hold far more than it should. Each reader here checks the size first
(``stat``), then reads at most ``limit + 1`` bytes, so a file that lies about its size, grows while
read, or is a device with no end costs ``limit`` bytes at most. Zip archives are checked by their
central directory before any member is unpacked: member count, total unpacked size, and names that
would leave a target folder.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["FileTooLarge", "JSON_MAX_BYTES", "ZIP_MAX_MEMBERS", "ZIP_MAX_BYTES", "read_limited", "read_json",
           "check_zip", "zip_members"]

JSON_MAX_BYTES = 64 * 2**20  # read_json's default limit: the most bytes it reads from one file
ZIP_MAX_MEMBERS = 10_000  # check_zip's default limit: the most members in one archive
ZIP_MAX_BYTES = 256 * 2**20  # unpacked, all members together


class FileTooLarge(ValueError):
    """A file, or what it declares, is over the limit its reader sets."""


def read_limited(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of ``path`` if they are at most ``limit``; FileTooLarge naming the file and the limit otherwise."""
    path = Path(path)
    size = path.stat().st_size
    if size > limit:
        raise FileTooLarge(f"{path}: {size:,} bytes, over the {limit:,}-byte limit for a {what}; refused unread")
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:  # the size on disk was not the size read (a device, a growing file)
        raise FileTooLarge(f"{path}: more than the {limit:,}-byte limit for a {what}; refused")
    return data


def read_json(path: str | Path, limit: int = JSON_MAX_BYTES, what: str = "JSON file") -> Any:
    """Parse ``path`` as UTF-8 JSON of at most ``limit`` bytes; ValueError with ``file:line:column`` otherwise."""
    path = Path(path)
    data = read_limited(path, limit, what)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}:{err.colno}: unreadable JSON ({err.msg})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to read") from None


def check_zip(archive: zipfile.ZipFile, path: str | Path, *, max_members: int = ZIP_MAX_MEMBERS,
              max_bytes: int = ZIP_MAX_BYTES) -> None:
    """Refuse an archive with too many members, too many unpacked bytes, or a member name leaving its folder.

    Read from the central directory only; a member that unpacks to more than it declares is stopped by
    :func:`zip_members`, which reads each one up to its declared size plus one byte.
    """
    members = archive.infolist()
    if len(members) > max_members:
        raise FileTooLarge(f"{path}: {len(members):,} members, over the limit of {max_members:,}")
    total = sum(info.file_size for info in members)
    if total > max_bytes:
        raise FileTooLarge(f"{path}: members unpack to {total:,} bytes, over the limit of {max_bytes:,}")
    for info in members:
        name = PurePosixPath(info.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or (name.parts and ":" in name.parts[0]):
            raise ValueError(f"{path}: member {info.filename!r} would be written outside the archive's folder")


def zip_members(archive: zipfile.ZipFile, path: str | Path, **limits: int) -> list[tuple[str, bytes]]:
    """(name, bytes) of every member of a checked archive (:func:`check_zip`), none past its declared size."""
    check_zip(archive, path, **limits)
    found = []
    for info in archive.infolist():
        with archive.open(info) as member:
            data = member.read(info.file_size + 1)
        if len(data) > info.file_size:
            raise FileTooLarge(f"{path}: member {info.filename!r} unpacks past its declared {info.file_size:,} bytes")
        found.append((info.filename, data))
    return found
