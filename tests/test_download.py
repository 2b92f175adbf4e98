"""nmt.data.download: mirror first, retries, checksums, fast offline errors; no network."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from urllib3.exceptions import NewConnectionError, ProtocolError

from nmt.config import DataParams, DownloadParams
from nmt.data.corpora import Corpus, get_corpus
from nmt.data.download import (
    MIRROR_ENV,
    ChecksumError,
    DownloadError,
    UnreachableError,
    corpus_members,
    download_corpora,
    fetch,
    mirror_from_env,
    mirror_path,
    selected_corpora,
)

URL = "https://data.example.org/sets/pairs.zip"
PAYLOAD = b"some archive bytes\n" * 1000
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _BrokenStream:
    """A urllib3-like body that drops the connection after ``cut`` bytes."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut = data, cut

    def stream(self, chunk_size: int, decode_content: bool = True) -> Iterator[bytes]:
        for i in range(0, self.cut, chunk_size):
            yield self.data[i : min(i + chunk_size, self.cut)]
        raise ProtocolError("Connection broken: IncompleteRead")

    def close(self) -> None:
        pass


def response(data: bytes = PAYLOAD, status: int = 200, cut: int | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "")
    r.headers["Content-Length"] = str(len(data))
    r.raw = io.BytesIO(data) if cut is None else _BrokenStream(data, cut)
    r.url = URL
    return r


class FakeSession:
    """Plays back ``outcomes`` (responses, or exceptions to raise), one per get()."""

    def __init__(self, *outcomes: requests.Response | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.headers: dict[str, str] = {}

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append((url, kwargs))
        if not self.outcomes:
            raise AssertionError(f"unexpected request to {url}")
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def name_not_resolved() -> requests.ConnectionError:
    return requests.ConnectionError(
        NewConnectionError(None, "Failed to resolve 'data.example.org'")  # type: ignore[arg-type]
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- mirror ---------------------------------------------------------------------------


def test_mirror_path_is_host_then_path(tmp_path: Path) -> None:
    assert mirror_path(URL, tmp_path) == tmp_path / "data.example.org" / "sets" / "pairs.zip"
    with pytest.raises(DownloadError, match="not an address"):
        mirror_path("https://data.example.org/../etc/passwd", tmp_path)


def test_mirror_from_env(tmp_path: Path) -> None:
    assert mirror_from_env({}) is None
    assert mirror_from_env({MIRROR_ENV: " "}) is None
    assert mirror_from_env({MIRROR_ENV: str(tmp_path)}) == tmp_path
    with pytest.raises(DownloadError, match=f"{MIRROR_ENV}=.*nowhere: no such folder"):
        mirror_from_env({MIRROR_ENV: str(tmp_path / "nowhere")})


def test_fetch_prefers_the_mirror(tmp_path: Path) -> None:
    local = mirror_path(URL, tmp_path / "mirror")
    local.parent.mkdir(parents=True)
    local.write_bytes(PAYLOAD)
    session = FakeSession()  # any request fails the test
    got = fetch(URL, tmp_path / "dl" / "pairs.zip", mirror=tmp_path / "mirror", session=session)
    assert session.calls == []
    assert got.source == str(local) and got.url == URL
    assert got.sha256 == DIGEST and got.bytes == len(PAYLOAD)
    assert got.path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path / "dl") == ["pairs.zip"]


def test_fetch_falls_back_to_the_network_when_the_mirror_lacks_the_file(tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    session = FakeSession(response())
    got = fetch(URL, tmp_path / "pairs.zip", mirror=tmp_path / "mirror", session=session)
    assert got.source == URL and got.sha256 == DIGEST
    assert len(session.calls) == 1


def test_fetch_refuses_a_mirror_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="no such folder"):
        fetch(URL, tmp_path / "x.zip", mirror=tmp_path / "nowhere", session=FakeSession())


# --- checksums -------------------------------------------------------------------------


def test_pinned_checksum_that_matches(tmp_path: Path) -> None:
    got = fetch(URL, tmp_path / "p.zip", sha256=DIGEST.upper(), session=FakeSession(response()))
    assert got.sha256 == DIGEST


def test_pinned_checksum_mismatch_names_file_and_both_digests(tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        fetch(URL, tmp_path / "p.zip", sha256=wrong, session=FakeSession(response()))
    assert URL in str(err.value) and wrong in str(err.value) and DIGEST in str(err.value)
    assert leftovers(tmp_path) == []  # no file, no temp file


def test_pinned_checksum_mismatch_from_the_mirror_names_the_mirror_file(tmp_path: Path) -> None:
    local = mirror_path(URL, tmp_path / "m")
    local.parent.mkdir(parents=True)
    local.write_bytes(PAYLOAD)
    with pytest.raises(ChecksumError, match=f"{local}: sha256 mismatch: expected 1+, got {DIGEST}"):
        fetch(URL, tmp_path / "d" / "p.zip", sha256="1" * 64, mirror=tmp_path / "m")
    assert leftovers(tmp_path / "d") == []


# --- retries ---------------------------------------------------------------------------


def test_transient_errors_are_retried_then_succeed(tmp_path: Path) -> None:
    session = FakeSession(
        requests.ConnectionError("Connection reset by peer"),
        response(status=503),
        response(cut=5000),  # the body breaks off mid-stream
        response(),
    )
    got = fetch(URL, tmp_path / "p.zip", retries=3, backoff=0, session=session)
    assert got.sha256 == DIGEST and got.path.read_bytes() == PAYLOAD
    assert len(session.calls) == 4
    url, kwargs = session.calls[0]
    assert url == URL and kwargs["stream"] is True
    connect, read = kwargs["timeout"]
    assert connect <= 5 and read == 30.0
    assert leftovers(tmp_path) == ["p.zip"]


def test_retries_are_bounded(tmp_path: Path) -> None:
    session = FakeSession(*[requests.ReadTimeout("read timed out") for _ in range(3)])
    with pytest.raises(DownloadError, match="failed after 3 attempt.*read timed out"):
        fetch(URL, tmp_path / "p.zip", retries=2, backoff=0, session=session)
    assert len(session.calls) == 3
    assert leftovers(tmp_path) == []


def test_client_errors_are_not_retried(tmp_path: Path) -> None:
    session = FakeSession(response(b"nope", status=404))
    with pytest.raises(DownloadError, match="HTTP 404 Not Found"):
        fetch(URL, tmp_path / "p.zip", retries=3, backoff=0, session=session)
    assert len(session.calls) == 1


# --- offline ---------------------------------------------------------------------------


def test_offline_fails_at_once_naming_the_address_and_the_variable(tmp_path: Path) -> None:
    session = FakeSession(name_not_resolved())
    start = time.monotonic()
    with pytest.raises(UnreachableError) as err:
        fetch(URL, tmp_path / "p.zip", retries=10, backoff=60, session=session)
    assert time.monotonic() - start < 1  # no backoff: 60 s would have been slept
    assert len(session.calls) == 1
    assert URL in str(err.value) and MIRROR_ENV in str(err.value)
    assert "Failed to resolve" in str(err.value)


def test_offline_with_a_mirror_that_lacks_the_file_says_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(
        UnreachableError, match="not in the mirror.*data.example.org/sets/pairs.zip"
    ):
        fetch(
            URL, tmp_path / "p.zip", mirror=tmp_path / "m", session=FakeSession(name_not_resolved())
        )


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port  # nothing listens here any more: connecting is refused


def test_connection_refused_with_a_real_session_is_fast(tmp_path: Path, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/pairs.zip"  # loopback only, never the network
    start = time.monotonic()
    with pytest.raises(UnreachableError, match=f"cannot reach {url}.*{MIRROR_ENV}"):
        fetch(url, tmp_path / "p.zip", retries=5, backoff=30, progress=False)
    assert time.monotonic() - start < 5


# --- corpora ---------------------------------------------------------------------------


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def toy_corpus(name: str = "toy", sha256: str | None = None) -> Corpus:
    return Corpus(
        name=name,
        langs=frozenset({"en", "fr"}),
        url=f"https://data.example.org/{name}.zip",
        format="tsv",
        role="train",
        members={"en": "set/pairs.txt", "fr": "set/pairs.txt"},
        columns=("en", "fr"),
        sha256=sha256,
    )


def test_download_corpora_extracts_members_and_writes_the_manifest(tmp_path: Path) -> None:
    archive = zip_bytes({"set/pairs.txt": b"Hi.\tSalut.\n", "toy/_about.txt": b"credits"})
    session = FakeSession(response(archive))
    out = tmp_path / "raw"
    manifest = download_corpora([toy_corpus()], out, DownloadParams(), session=session)
    assert manifest == {
        "toy": {
            "url": "https://data.example.org/toy.zip",
            "source": "network",
            "sha256": hashlib.sha256(archive).hexdigest(),
            "bytes": len(archive),
            "members": ["set/pairs.txt"],
        }
    }
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert (out / "toy/set/pairs.txt").read_bytes() == b"Hi.\tSalut.\n"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "toy"]  # no archive


def test_download_corpora_warns_of_unsafe_members_naming_the_source(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = zip_bytes({"set/pairs.txt": b"a\tb\n", "../../evil.txt": b"pwned"})
    out = tmp_path / "raw"
    with caplog.at_level(logging.WARNING, logger="nmt.data.archive"):
        manifest = download_corpora(
            [toy_corpus()], out, DownloadParams(), session=FakeSession(response(archive))
        )
    assert manifest["toy"]["members"] == ["set/pairs.txt"]
    assert "https://data.example.org/toy.zip: skipped 1 member(s) with unsafe" in caplog.text
    assert "'../../evil.txt'" in caplog.text
    assert not list(tmp_path.rglob("evil*"))


def test_download_corpora_checks_pinned_and_registry_checksums(tmp_path: Path) -> None:
    archive = zip_bytes({"set/pairs.txt": b"a\tb\n"})
    pinned = DownloadParams(checksums={"tatoeba": "a" * 64})
    with pytest.raises(ChecksumError, match="expected a{64}"):
        download_corpora(
            [toy_corpus("tatoeba")], tmp_path / "r1", pinned, session=FakeSession(response(archive))
        )
    with pytest.raises(ChecksumError, match="expected b{64}"):
        download_corpora(
            [toy_corpus(sha256="b" * 64)],
            tmp_path / "r2",
            DownloadParams(),
            session=FakeSession(response(archive)),
        )
    assert leftovers(tmp_path / "r1") == [] and leftovers(tmp_path / "r2") == []


def test_download_corpora_rejects_checksums_for_unknown_corpora(tmp_path: Path) -> None:
    params = DownloadParams(checksums={"tatoba": "a" * 64})
    with pytest.raises(DownloadError, match="download.checksums: unknown corpus.*tatoba"):
        download_corpora([toy_corpus()], tmp_path / "raw", params, session=FakeSession())


def test_corpus_members_covers_both_directions() -> None:
    assert corpus_members(get_corpus("newstest2014", "fr", "en")) == [
        "test-full/newstest2014-fren-ref.en.sgm",
        "test-full/newstest2014-fren-ref.fr.sgm",
        "test-full/newstest2014-fren-src.en.sgm",
        "test-full/newstest2014-fren-src.fr.sgm",
    ]
    assert corpus_members(get_corpus("tatoeba", "en", "fr")) == ["fra-eng/fra.txt"]


def test_selected_corpora_are_training_then_test_sets() -> None:
    data = DataParams(
        src_lang="en", tgt_lang="fr", corpora=["europarl", "tatoeba"], test_sets=["newstest2013"]
    )
    assert [c.name for c in selected_corpora(data)] == ["europarl", "tatoeba", "newstest2013"]
    assert selected_corpora(data)[1].url.endswith("fra-eng.zip")


def test_packaged_corpus_needs_no_network(tmp_path):
    from nmt.data.corpora import get_corpus

    corpus = get_corpus("antonyms", "en", "en-x-antonym")
    got = fetch(corpus.url, tmp_path / corpus.archive_name, session=object(), progress=False)
    assert got.source == "package" and got.bytes > 1000
    lines = (tmp_path / "antonyms.tsv").read_text().splitlines()
    assert "man\twoman" in lines and all(line.count("\t") == 1 for line in lines)
    with pytest.raises(DownloadError, match="not shipped"):
        fetch("package:resources/none.tsv", tmp_path / "none.tsv", progress=False)
