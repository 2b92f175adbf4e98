"""nmt.data.archive: only named members are extracted, safely, and damage is reported."""

from __future__ import annotations

import io
import logging
import random
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from nmt.data.archive import (
    ArchiveError,
    MissingMemberError,
    UnsafeMemberError,
    archive_kind,
    extract_members,
    safe_member_path,
)


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def make_tgz(path: Path, entries: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A .tgz with regular files ``entries`` and symlinks ``links`` (name -> target)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


def noise(n: int, seed: int = 0) -> bytes:
    """Incompressible bytes, so that cutting an archive in half cuts into the data."""
    return random.Random(seed).randbytes(n)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_extracts_only_the_named_members(tmp_path: Path, kind: str) -> None:
    entries = {"d/a.txt": b"alpha\n", "d/b.txt": b"beta\n", "other.txt": b"x"}
    archive = tmp_path / f"x.{kind}"
    (make_zip if kind == "zip" else make_tgz)(archive, entries)
    out = tmp_path / "out"
    got = extract_members(archive, ["d/b.txt", "d/a.txt", "d/a.txt"], out)
    assert got == ["d/a.txt", "d/b.txt"]
    assert files_under(out) == ["d/a.txt", "d/b.txt"]
    assert (out / "d/a.txt").read_bytes() == b"alpha\n"
    assert (out / "d/a.txt").stat().st_mode & 0o044 == 0o044  # readable, not mkstemp's 0600


def test_macosx_entries_are_ignored(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "fra-eng.zip",
        {
            "__MACOSX/._fra-eng": b"\x00\x05\x16\x07junk",
            "fra-eng/fra.txt": b"Go.\tVa !\n",
            "__MACOSX/fra-eng/._fra.txt": b"\x00\x05\x16\x07junk",
        },
    )
    out = tmp_path / "out"
    extract_members(archive, ["fra-eng/fra.txt"], out)
    assert files_under(out) == ["fra-eng/fra.txt"]
    assert (out / "fra-eng/fra.txt").read_bytes() == b"Go.\tVa !\n"
    with pytest.raises(MissingMemberError):
        extract_members(archive, ["__MACOSX/fra-eng/._fra.txt"], tmp_path / "out2")


def test_missing_member_names_it_and_the_archive(tmp_path: Path) -> None:
    archive = make_tgz(tmp_path / "dev.tgz", {"dev/newstest2013.en": b"a\n"})
    with pytest.raises(MissingMemberError, match=r"dev\.tgz.*dev/newstest2013\.fr"):
        extract_members(archive, ["dev/newstest2013.en", "dev/newstest2013.fr"], tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "d/../../evil.txt", "/tmp/evil.txt", "C:evil"])
def test_zip_slip_is_refused(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "slip.zip", {name: b"pwned", "d/ok.txt": b"ok"})
    out = tmp_path / "a" / "out"
    with pytest.raises(UnsafeMemberError, match="evil"):
        extract_members(archive, [name, "d/ok.txt"], out)
    assert not list(tmp_path.rglob("evil*"))
    assert not out.exists()
    # The unsafe entry is never written when only safe members are asked for.
    extract_members(archive, ["d/ok.txt"], out)
    assert files_under(tmp_path / "a") == ["out/d/ok.txt"]


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_unsafe_entries_beside_real_ones_are_skipped_with_a_warning(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    archive = tmp_path / f"mixed.{kind}"
    entries = {"../evil.txt": b"pwned", "d/ok.txt": b"ok", "/tmp/evil.txt": b"pwned"}
    (make_zip if kind == "zip" else make_tgz)(archive, entries)
    out = tmp_path / "a" / "out"
    with caplog.at_level(logging.WARNING, logger="nmt.data.archive"):
        assert extract_members(archive, ["d/ok.txt"], out) == ["d/ok.txt"]
    assert files_under(tmp_path / "a") == ["out/d/ok.txt"]
    assert not list(tmp_path.rglob("evil*"))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith(f"{archive}: skipped 2 member(s) with unsafe names")
    assert "'../evil.txt': '..' would leave the target folder" in message
    assert "'/tmp/evil.txt': absolute paths are not extracted" in message


def test_safe_archives_extract_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = tmp_path / "x.tgz"
    with tarfile.open(archive, "w:gz") as tf:  # as `tar czf x.tgz .` writes it
        root = tarfile.TarInfo(".")
        root.type = tarfile.DIRTYPE
        tf.addfile(root)
        info = tarfile.TarInfo("./d/a.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"a"))
    with caplog.at_level(logging.WARNING, logger="nmt.data.archive"):
        extract_members(archive, ["d/a.txt"], tmp_path / "out")
        extract_members(
            make_zip(tmp_path / "m.zip", {"__MACOSX/._a": b"", "a": b"a"}), ["a"], tmp_path / "o"
        )
    assert caplog.records == []


def test_only_unsafe_names_says_how_many_were_refused_and_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = make_tgz(tmp_path / "slip.tgz", {"../corpus.txt": b"a", "/corpus.txt": b"b"})
    with pytest.raises(MissingMemberError) as caught:
        extract_members(archive, ["corpus.txt"], tmp_path / "out")
    message = str(caught.value)
    assert "(the archive holds 0 file(s); 2 member(s) refused as unsafe: " in message
    assert "member '../corpus.txt': '..' would leave the target folder" in message
    assert "member '/corpus.txt': absolute paths are not extracted" in message
    assert "e.g." not in message  # no safe file to give as an example
    assert "skipped 2 member(s)" in caplog.text
    assert not (tmp_path / "out").exists()


def test_many_refused_members_are_counted_not_all_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    entries = {f"../evil{i}.txt": b"x" for i in range(12)}
    archive = make_zip(tmp_path / "many.zip", {**entries, "ok.txt": b"ok"})
    warnings = caplog.at_level(logging.WARNING, logger="nmt.data.archive")
    with warnings, pytest.raises(MissingMemberError) as caught:
        extract_members(archive, ["missing.txt"], tmp_path / "out")
    for text in (caplog.records[0].getMessage(), str(caught.value)):
        assert "12 member(s)" in text and "'../evil4.txt'" in text
        assert "'../evil5.txt'" not in text and text.endswith(("and 7 more", "and 7 more)"))
    assert "the archive holds 1 file(s), e.g. ok.txt; 12 member(s) refused" in str(caught.value)


@pytest.mark.parametrize("target", ["../../outside.txt", "/etc/passwd"])
def test_symlink_pointing_out_is_refused(tmp_path: Path, target: str) -> None:
    archive = make_tgz(tmp_path / "x.tgz", {"d/real.txt": b"real"}, links={"d/link.txt": target})
    out = tmp_path / "out"
    with pytest.raises(UnsafeMemberError, match="link"):
        extract_members(archive, ["d/link.txt"], out)
    assert not out.exists() or files_under(out) == []


def test_zip_symlink_pointing_out_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("d/link.txt")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../../etc/passwd")
    with pytest.raises(UnsafeMemberError, match="points outside the archive"):
        extract_members(archive, ["d/link.txt"], tmp_path / "out")
    assert not (tmp_path / "out/d/link.txt").exists()


def test_symlink_inside_the_archive_becomes_a_plain_copy(tmp_path: Path) -> None:
    archive = make_tgz(
        tmp_path / "x.tgz", {"d/real.txt": b"real"}, links={"e/link.txt": "../d/real.txt"}
    )
    out = tmp_path / "out"
    extract_members(archive, ["e/link.txt"], out)
    assert not (out / "e/link.txt").is_symlink()
    assert (out / "e/link.txt").read_bytes() == b"real"


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_truncated_archive_is_an_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    archive = tmp_path / f"cut.{kind}"
    (make_zip if kind == "zip" else make_tgz)(
        archive, {"a.bin": noise(50_000), "b.bin": noise(50_000, 1)}
    )
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    with pytest.raises(ArchiveError, match=r"cut\.(zip|tgz).*(corrupt or truncated)"):
        extract_members(archive, ["a.bin", "b.bin"], out)
    assert not out.exists() or files_under(out) == []


def test_corrupt_member_removes_what_was_already_written(tmp_path: Path) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.txt", b"first member, intact")
        zf.writestr("b.txt", b"second member, damaged below")
    data = bytearray(archive.read_bytes())
    at = data.index(b"damaged")
    data[at : at + 7] = b"DAMAGED"  # the stored CRC no longer matches
    archive.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(ArchiveError, match=r"bad\.zip: corrupt"):
        extract_members(archive, ["a.txt", "b.txt"], out)
    assert files_under(out) == []  # a.txt was extracted first, then removed again


def test_label_replaces_the_path_in_errors(tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    archive.write_bytes(b"not a zip at all")
    with pytest.raises(ArchiveError, match="^mirror/x.zip: corrupt"):
        extract_members(archive, ["a"], tmp_path / "o", label="mirror/x.zip")


def test_archive_kind_and_member_paths() -> None:
    assert archive_kind("fr-en.tgz") == "tar"
    assert archive_kind("a.TAR.GZ") == "tar"
    assert archive_kind("fra-eng.zip") == "zip"
    with pytest.raises(ArchiveError, match="unknown archive format"):
        archive_kind("data.rar")
    assert safe_member_path("./d//a.txt") == "d/a.txt"
    with pytest.raises(UnsafeMemberError):
        safe_member_path("d\\..\\..\\x")


def test_plain_text_file_is_its_own_only_member(tmp_path):
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("a\tb\n")
    assert archive_kind("pairs.tsv") == "plain"
    assert extract_members(corpus, ["pairs.tsv"], tmp_path / "out") == ["pairs.tsv"]
    assert (tmp_path / "out/pairs.tsv").read_text() == "a\tb\n"
    with pytest.raises(MissingMemberError, match="only 'pairs.tsv'"):
        extract_members(corpus, ["other.tsv"], tmp_path / "out2")
