"""Safe extraction of named members from zip and tar archives.

Only the members asked for are written, each as a plain file under the target folder.
A member whose path would land outside that folder (absolute, ``..``, a link pointing
out of the archive) is refused; ``__MACOSX/`` resource-fork entries are never matched.
Entries with unsafe names are skipped with a warning that names them, and a member asked
for but not found says how many entries were refused and why.
A corrupt or truncated archive raises :class:`ArchiveError` naming the file, and the
files this call wrote are removed again, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Literal, TypeVar

__all__ = [
    "ArchiveError",
    "MissingMemberError",
    "UnsafeMemberError",
    "archive_kind",
    "commit_file",
    "extract_members",
    "is_ignored",
    "safe_member_path",
]

log = logging.getLogger(__name__)

ArchiveKind = Literal["zip", "tar", "plain"]
_TAR_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_PLAIN_SUFFIXES = (".tsv", ".txt")
_MAX_LINK_DEPTH = 8
_SHOWN = 5  # refused entries named in a message; the rest are counted
# What the readers raise on damaged data. Other OSErrors (e.g. disk full while writing)
# are not the archive's fault and propagate unchanged.
_CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    lzma.LZMAError,
)


class ArchiveError(RuntimeError):
    """An archive cannot be read, or a member cannot be extracted safely."""


class UnsafeMemberError(ArchiveError):
    """A member would be written outside the target folder."""


class MissingMemberError(ArchiveError):
    """A member asked for is not in the archive."""


def archive_kind(name: str) -> ArchiveKind:
    """``"zip"``, ``"tar"`` (plain or compressed) or ``"plain"`` text, from the suffix."""
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(_TAR_SUFFIXES):
        return "tar"
    if lower.endswith(_PLAIN_SUFFIXES):
        return "plain"  # a corpus shipped as one text file: it is its own only member
    raise ArchiveError(f"{name}: unknown archive format (expected .zip, .tgz or .tar.gz)")


def is_ignored(name: str) -> bool:
    """True for macOS resource-fork entries (``__MACOSX/...``), which hold no data."""
    return name.split("/", 1)[0] == "__MACOSX"


def safe_member_path(name: str) -> str:
    """``name`` as a normalised relative POSIX path; raise if it could escape its folder."""
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeMemberError(f"member {name!r}: absolute paths are not extracted")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise UnsafeMemberError(f"member {name!r}: '..' would leave the target folder")
    clean = posixpath.normpath("/".join(p for p in parts if p not in ("", ".")))
    if clean in ("", "."):
        raise UnsafeMemberError(f"member {name!r}: not a file path")
    return clean


def _link_target(member: str, link: str, *, hard: bool) -> str:
    """The archive path a link member points to; raise if it points outside the archive.

    A symlink is relative to the member's folder; a tar hard link to the archive root.
    """
    if link.startswith("/"):
        raise UnsafeMemberError(f"member {member!r}: link to absolute path {link!r} refused")
    base = "" if hard else posixpath.dirname(member)
    joined = posixpath.normpath(posixpath.join(base, link))
    if joined == ".." or joined.startswith("../"):
        raise UnsafeMemberError(f"member {member!r}: link {link!r} points outside the archive")
    return joined


def _file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def commit_file(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Rename a finished temporary file onto ``target``, with ordinary permissions.

    (``mkstemp`` creates files readable by their owner only.)
    """
    os.chmod(tmp, _file_mode())
    os.replace(tmp, target)


def _write_member(src: IO[bytes], target: Path) -> None:
    """Copy ``src`` to ``target`` through a temporary file renamed on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        commit_file(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# An opener resolves one archive path to a readable stream, following in-archive links.
Opener = Callable[[str], IO[bytes]]
# What an archive offers: its safe file paths, an opener, and why each unsafe entry was
# refused (``UnsafeMemberError`` messages, in archive order).
Contents = tuple[set[str], Opener, list[str]]
Info = TypeVar("Info", zipfile.ZipInfo, tarfile.TarInfo)


def _zip_opener(zf: zipfile.ZipFile) -> Contents:
    index: dict[str, zipfile.ZipInfo] = {}
    refused: list[str] = []
    for info in zf.infolist():
        if not info.is_dir():
            _add(index, refused, info.filename, info)

    def open_member(name: str) -> IO[bytes]:
        for _ in range(_MAX_LINK_DEPTH):
            info = index.get(name)
            if info is None:
                raise MissingMemberError(name)
            if not stat.S_ISLNK(info.external_attr >> 16):
                return zf.open(info)
            name = _link_target(name, zf.read(info).decode("utf-8"), hard=False)
        raise UnsafeMemberError(f"member {name!r}: too many levels of links")

    return set(index), open_member, refused


def _tar_opener(tf: tarfile.TarFile) -> Contents:
    index: dict[str, tarfile.TarInfo] = {}
    refused: list[str] = []
    for info in tf.getmembers():  # reads the whole archive: truncation surfaces here
        if not info.isdir():  # e.g. "./", which is no file path but harmless
            _add(index, refused, info.name, info)

    def open_member(name: str) -> IO[bytes]:
        for _ in range(_MAX_LINK_DEPTH):
            info = index.get(name)
            if info is None:
                raise MissingMemberError(name)
            if info.isfile():
                stream = tf.extractfile(info)
                assert stream is not None  # a regular file always has a stream
                return stream
            if not (info.issym() or info.islnk()):
                raise UnsafeMemberError(f"member {name!r}: not a regular file")
            name = _link_target(name, info.linkname, hard=info.islnk())
        raise UnsafeMemberError(f"member {name!r}: too many levels of links")

    return set(index), open_member, refused


def _add(index: dict[str, Info], refused: list[str], name: str, info: Info) -> None:
    """Index a file entry under its normalised name, or record why its name is unsafe.

    An unsafe name is never asked for by a safe one, so it is never extracted.
    """
    try:
        clean = safe_member_path(name)
    except UnsafeMemberError as err:
        refused.append(str(err))
        return
    if not is_ignored(clean):
        index[clean] = info


def _some(items: list[str]) -> str:
    """The first few ``items`` joined, and how many more there are."""
    shown = "; ".join(items[:_SHOWN])
    return shown if len(items) <= _SHOWN else f"{shown}; and {len(items) - _SHOWN} more"


def _extract_all(contents: Contents, wanted: list[str], dest: Path, label: str) -> list[Path]:
    present, opener, refused = contents
    if refused:
        log.warning(
            "%s: skipped %d member(s) with unsafe names, never extracted: %s",
            label,
            len(refused),
            _some(refused),
        )
    missing = [m for m in wanted if m not in present]
    if missing:
        holds = f"the archive holds {len(present)} file(s)"
        if present:
            holds += f", e.g. {', '.join(sorted(present)[:_SHOWN])}"
        if refused:
            holds += f"; {len(refused)} member(s) refused as unsafe: {_some(refused)}"
        raise MissingMemberError(f"{label}: member(s) not found: {', '.join(missing)} ({holds})")
    root = dest.resolve()
    written: list[Path] = []
    try:
        for member in wanted:
            target = dest / member
            if not target.resolve().is_relative_to(root):
                raise UnsafeMemberError(f"{label}: member {member!r} would leave {dest}")
            try:
                with opener(member) as src:
                    _write_member(src, target)
            except MissingMemberError as err:  # a link to a member that is not there
                raise MissingMemberError(f"{label}: {member!r} links to missing {err}") from None
            except UnsafeMemberError as err:
                raise UnsafeMemberError(f"{label}: {err}") from None
            written.append(target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def extract_members(
    archive: str | os.PathLike[str],
    members: Iterable[str],
    dest: str | os.PathLike[str],
    *,
    kind: ArchiveKind | None = None,
    label: str | None = None,
) -> list[str]:
    """Extract the named ``members`` of ``archive`` to ``dest/<member path>``.

    ``kind`` defaults to the one the file name says (:func:`archive_kind`); ``label``
    names the archive in errors (default: its path). Returns the extracted member paths,
    sorted. Raises :class:`UnsafeMemberError`, :class:`MissingMemberError` or
    :class:`ArchiveError` (corrupt, truncated or unreadable archive); on any error the
    files this call wrote are removed.
    """
    path = Path(archive)
    label = label or str(path)
    wanted = sorted({safe_member_path(m) for m in members})
    kind = kind or archive_kind(path.name)
    try:
        if kind == "plain":
            if wanted != [path.name]:
                raise MissingMemberError(f"{label}: a plain file holds only {path.name!r}")
            Path(dest).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(dest) / path.name)
        elif kind == "zip":
            with zipfile.ZipFile(path) as zf:
                _extract_all(_zip_opener(zf), wanted, Path(dest), label)
        else:
            with tarfile.open(path, "r:*") as tf:
                _extract_all(_tar_opener(tf), wanted, Path(dest), label)
    except ArchiveError:
        raise
    except FileNotFoundError:
        raise ArchiveError(f"{label}: archive not found") from None
    except _CORRUPT as err:
        raise ArchiveError(f"{label}: corrupt or truncated {kind} archive ({err})") from None
    return wanted
