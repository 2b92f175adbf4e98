"""The download stage end to end on a fake mirror built in tmp_path; no network."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner, Result
from urllib3.exceptions import NewConnectionError

from nmt.data.corpora import get_corpus
from nmt.data.download import MIRROR_ENV, corpus_members, mirror_path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ["tatoeba", "europarl"]
TEST_SETS = ["newstest2014"]


def load_stage() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stage_download", ROOT / "stages/download.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def content(member: str) -> bytes:
    return f"tiny text of {member}\n".encode()


def write_archive(path: Path, members: list[str]) -> None:
    """An archive holding ``members``, an unrelated file and (zip) macOS junk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {m: content(m) for m in members} | {"README.txt": b"not asked for\n"}
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in entries.items():
                zf.writestr(name, data)
                zf.writestr(f"__MACOSX/._{name}", b"\x00\x05\x16\x07")
    else:
        with tarfile.open(path, "w:gz") as tf:
            for name, data in entries.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with params.yaml and a mirror of every corpus it names."""
    mirror = tmp_path / "mirror"
    for name in CORPORA + TEST_SETS:
        corpus = get_corpus(name, "fr", "en")
        write_archive(mirror_path(corpus.url, mirror), corpus_members(corpus))
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    return tmp_path


def write_params(root: Path, **download: Any) -> None:
    params = {
        "data": {"src_lang": "fr", "tgt_lang": "en", "corpora": CORPORA, "test_sets": TEST_SETS},
        "download": {"checksums": {}, "retries": 1, "timeout_s": 5, **download},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def invoke() -> Result:
    return CliRunner().invoke(load_stage().main, ["--out", "data/raw", "--no-progress"])


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a click error, not a crash
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]


def previous_output(root: Path) -> Path:
    raw = root / "data/raw"
    raw.mkdir(parents=True)
    (raw / "manifest.json").write_text('{"old": {}}')
    return raw


def test_stage_downloads_every_corpus_from_the_mirror(project: Path) -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    raw = project / "data/raw"
    manifest = json.loads((raw / "manifest.json").read_text())
    assert set(manifest) == set(CORPORA + TEST_SETS)
    for name in CORPORA + TEST_SETS:
        corpus = get_corpus(name, "fr", "en")
        local = mirror_path(corpus.url, project / "mirror")
        entry = manifest[name]
        assert entry["url"] == corpus.url and entry["source"] == "mirror"
        assert entry["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
        assert entry["bytes"] == local.stat().st_size
        assert entry["members"] == corpus_members(corpus)
        for member in corpus_members(corpus):
            assert (raw / name / member).read_bytes() == content(member)
    # Only the named members: no README, no __MACOSX, no archives, no temp folders.
    files = sorted(str(p.relative_to(raw)) for p in raw.rglob("*") if p.is_file())
    assert len(files) == 1 + sum(len(e["members"]) for e in manifest.values())
    assert not any("README" in f or "__MACOSX" in f for f in files)
    assert sorted(p.name for p in (project / "data").iterdir()) == ["raw"]
    assert "downloaded 3 corpora" in result.output


def test_pinned_checksum_mismatch_stops_the_stage(project: Path) -> None:
    raw = previous_output(project)
    write_params(project, checksums={"europarl": "c" * 64})
    result = invoke()
    local = mirror_path(get_corpus("europarl", "fr", "en").url, project / "mirror")
    actual = hashlib.sha256(local.read_bytes()).hexdigest()
    assert_one_line_error(result, str(local), "c" * 64, actual)
    assert (raw / "manifest.json").read_text() == '{"old": {}}'
    assert sorted(p.name for p in (project / "data").iterdir()) == ["raw"]


def test_truncated_archive_leaves_the_previous_output_untouched(project: Path) -> None:
    raw = previous_output(project)
    local = mirror_path(get_corpus("newstest2014", "fr", "en").url, project / "mirror")
    data = local.read_bytes()
    local.write_bytes(data[: len(data) // 2])
    result = invoke()
    assert_one_line_error(result, str(local), "corrupt or truncated")
    assert sorted(p.name for p in raw.iterdir()) == ["manifest.json"]
    assert (raw / "manifest.json").read_text() == '{"old": {}}'
    assert sorted(p.name for p in (project / "data").iterdir()) == ["raw"]


def test_missing_mirror_folder_is_an_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MIRROR_ENV, str(project / "no-such-mirror"))
    assert_one_line_error(invoke(), MIRROR_ENV, "no-such-mirror", "no such folder")


class _OfflineSession(requests.Session):
    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        raise requests.ConnectionError(NewConnectionError(None, f"Failed to resolve {url}"))  # type: ignore[arg-type]


def test_offline_without_a_mirror_fails_naming_address_and_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MIRROR_ENV)
    monkeypatch.setattr("nmt.data.download.requests.Session", _OfflineSession)
    url = get_corpus(CORPORA[0], "fr", "en").url
    assert_one_line_error(invoke(), f"cannot reach {url}", MIRROR_ENV)
    assert not (project / "data/raw").exists()


def test_bad_params_are_reported_with_the_key(project: Path) -> None:
    write_params(project, retries=-1)
    result = invoke()
    assert result.exit_code == 1 and "download.retries" in result.output
    assert "Traceback" not in result.output


def test_dvc_yaml_lists_what_the_stage_reads() -> None:
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["download"]
    assert stage["params"] == ["data", "download"]
    deps = set(stage["deps"])
    assert {"stages/download.py", "src/nmt/data/download.py", "src/nmt/data/archive.py"} <= deps
    assert "src/nmt/data/corpora.py" in deps
    assert stage["outs"] == ["data/raw"] and "--out data/raw" in stage["cmd"]
