"""Fetching the corpora: one download function for all network access, a local mirror.

:func:`fetch` is the only place the pipeline touches the network. It looks in a mirror
folder first (``<mirror>/<host>/<path>``, as ``wget -x`` lays files out), then streams
from the address with retries and a short backoff; either way the bytes go to a
temporary file that is hashed while written and renamed only once complete and, when a
checksum is pinned, only if it matches. A host that cannot be reached (offline, name
not resolved, connection refused) fails at once with a message naming the address and
the mirror variable, rather than retrying for minutes. Tests pass a fake ``session``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import requests
from tqdm import tqdm
from urllib3.exceptions import NewConnectionError

from nmt.config.data import DataParams, DownloadParams
from nmt.data.archive import commit_file, extract_members
from nmt.data.corpora import NAMES, Corpus, get_corpus
from nmt.utils import write_json

__all__ = [
    "MIRROR_ENV",
    "ChecksumError",
    "DownloadError",
    "FetchResult",
    "UnreachableError",
    "corpus_members",
    "download_corpora",
    "fetch",
    "mirror_from_env",
    "mirror_path",
    "selected_corpora",
]

log = logging.getLogger(__name__)

MIRROR_ENV = "NMT_DATA_MIRROR"
PACKAGE_SCHEME = "package:"  # small corpora shipped inside the nmt package
CONNECT_TIMEOUT_S = 5.0  # a reachable host answers well within this
CHUNK_BYTES = 1 << 20
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "nmt-pipeline (+https://github.com; data download)"


class DownloadError(RuntimeError):
    """A file could not be fetched."""


class ChecksumError(DownloadError):
    """The fetched bytes do not have the pinned sha256."""


class UnreachableError(DownloadError):
    """The host cannot be reached (offline, unknown name, refused) and no mirror has the file."""


class _TransientError(Exception):
    """A failure worth another attempt (server error, timeout, dropped connection)."""


@dataclass(frozen=True)
class FetchResult:
    url: str  # the canonical address
    source: str  # where the bytes came from: the mirror file's path, or the url
    sha256: str
    bytes: int
    path: Path  # the local copy


def mirror_from_env(environ: Mapping[str, str]) -> Path | None:
    """The mirror folder named by ``$NMT_DATA_MIRROR`` in ``environ``; None if unset/empty.

    A value that is not an existing folder is an error, not a silent fall-back.
    """
    value = environ.get(MIRROR_ENV, "").strip()
    if not value:
        return None
    return _check_mirror(Path(value))


def _check_mirror(root: Path) -> Path:
    if not root.is_dir():
        raise DownloadError(f"{MIRROR_ENV}={root}: no such folder")
    return root


def mirror_path(url: str, root: str | os.PathLike[str]) -> Path:
    """Where a mirror rooted at ``root`` keeps ``url``: ``<root>/<host>/<path>``."""
    parts = urlsplit(url)
    host, path = parts.hostname, unquote(parts.path).lstrip("/")
    if not host or not path or ".." in path.split("/"):
        raise DownloadError(f"{url}: not an address a mirror can hold")
    return Path(root, host, *path.split("/"))


def _write_verified(
    dest: Path,
    chunks: Iterable[bytes],
    *,
    total: int | None,
    expected: str | None,
    label: str,
    desc: str,
    progress: bool,
) -> tuple[str, int]:
    """Stream ``chunks`` to ``dest`` via a temp file, hashing; return (sha256, size).

    The temp file is renamed onto ``dest`` only when complete and, if ``expected`` is
    given, only when its digest matches; otherwise it is removed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    digest, size = hashlib.sha256(), 0
    bar = tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=None if progress else True,  # None: off when stderr is not a terminal
        leave=False,
    )
    try:
        with os.fdopen(fd, "wb") as out, bar:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
        actual = digest.hexdigest()
        if expected is not None and actual != expected.lower():
            raise ChecksumError(
                f"{label}: sha256 mismatch: expected {expected.lower()}, got {actual}"
            )
        commit_file(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return actual, size


def _read_chunks(f: IO[bytes]) -> Iterator[bytes]:
    while chunk := f.read(CHUNK_BYTES):
        yield chunk


def _is_unreachable(err: requests.RequestException) -> bool:
    """True when no connection could be made at all: retrying soon will not help."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    stack: list[Any] = [err]
    while stack:  # requests wraps urllib3's MaxRetryError, which holds the cause in .reason
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NewConnectionError):  # includes NameResolutionError
            return True
        stack.extend([getattr(e, "reason", None), e.__cause__, e.__context__])
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    return False


def _get_once(
    session: requests.Session, url: str, dest: Path, timeout: float, **write: Any
) -> tuple[str, int]:
    """One attempt: GET ``url`` and stream it to ``dest``."""
    with session.get(url, stream=True, timeout=(min(CONNECT_TIMEOUT_S, timeout), timeout)) as r:
        if r.status_code in RETRY_STATUS:
            raise _TransientError(f"HTTP {r.status_code} {r.reason}")
        if r.status_code >= 400:
            raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason}")
        length = r.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        return _write_verified(dest, r.iter_content(CHUNK_BYTES), total=total, **write)


def _download(
    url: str,
    dest: Path,
    *,
    session: requests.Session,
    retries: int,
    timeout: float,
    backoff: float,
    hint: str,
    **write: Any,
) -> tuple[str, int]:
    """GET with up to ``retries`` more attempts on transient errors, backing off 2x."""
    for attempt in range(retries + 1):
        try:
            return _get_once(session, url, dest, timeout, **write)
        except requests.RequestException as err:
            if _is_unreachable(err):
                raise UnreachableError(f"cannot reach {url} ({_reason(err)}); {hint}") from None
            last: Exception = err
        except _TransientError as err:
            last = err
        if attempt < retries:
            wait = backoff * 2**attempt
            log.warning("%s: %s; retrying in %.1fs", url, _reason(last), wait)
            time.sleep(wait)
    raise DownloadError(f"{url}: failed after {retries + 1} attempt(s): {_reason(last)}")


def _reason(err: BaseException) -> str:
    """A one-line account of ``err``: the innermost cause requests/urllib3 wrap."""
    inner = err
    while True:
        nxt = getattr(inner, "reason", None)
        if nxt is None and inner.args and isinstance(inner.args[0], BaseException):
            nxt = inner.args[0]
        if not isinstance(nxt, BaseException) or nxt is inner:
            break
        inner = nxt
    lines = str(inner).splitlines()
    text = lines[0] if lines else type(inner).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def fetch(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    mirror: str | os.PathLike[str] | None = None,
    progress: bool = True,
    session: requests.Session | None = None,
    backoff: float = 0.5,
    desc: str | None = None,
) -> FetchResult:
    """Fetch ``url`` to ``dest``: from ``mirror`` when it holds the file, else the network.

    ``sha256`` pins the expected digest (a mismatch raises :class:`ChecksumError` and
    leaves nothing at ``dest``). ``retries`` more attempts follow transient network
    errors, ``backoff * 2**k`` seconds apart; ``timeout`` is the read timeout in seconds
    (connecting gets at most :data:`CONNECT_TIMEOUT_S`). ``progress`` shows a tqdm bar
    on a terminal. ``session`` replaces the requests session (a hook for tests).
    """
    dest = Path(dest)
    write: dict[str, Any] = {"expected": sha256, "desc": desc or dest.name, "progress": progress}
    if url.startswith(PACKAGE_SCHEME):
        resource = importlib.resources.files("nmt").joinpath(url[len(PACKAGE_SCHEME) :])
        if not resource.is_file():
            raise DownloadError(f"{url}: not shipped with this package")
        with resource.open("rb") as f:
            digest, size = _write_verified(dest, _read_chunks(f), total=None, label=url, **write)
        return FetchResult(url, "package", digest, size, dest)
    hint = f"set {MIRROR_ENV} to a mirror folder holding <host>/<path> to work offline"
    if mirror is not None:
        local = mirror_path(url, _check_mirror(Path(mirror)))
        if local.is_file():
            with local.open("rb") as f:
                digest, size = _write_verified(
                    dest, _read_chunks(f), total=local.stat().st_size, label=str(local), **write
                )
            log.info("%s: copied from mirror %s", url, local)
            return FetchResult(url, str(local), digest, size, dest)
        hint = f"not in the mirror either ({MIRROR_ENV}: {local} does not exist)"
        log.info("%s: not in mirror (%s); trying the network", url, local)
    own = session is None
    session = session or requests.Session()
    session.headers.setdefault("User-Agent", USER_AGENT)
    try:
        digest, size = _download(
            url,
            dest,
            session=session,
            retries=retries,
            timeout=timeout,
            backoff=backoff,
            hint=hint,
            label=url,
            **write,
        )
    finally:
        if own:
            session.close()
    return FetchResult(url, url, digest, size, dest)


def _origin(got: FetchResult) -> str:
    if got.source in ("package", got.url):
        return "package" if got.source == "package" else "network"
    return "mirror"


def selected_corpora(data: DataParams) -> list[Corpus]:
    """The registry entries for ``data.corpora`` and ``data.test_sets``, in that order."""
    return [get_corpus(n, data.src_lang, data.tgt_lang) for n in [*data.corpora, *data.test_sets]]


def corpus_members(corpus: Corpus) -> list[str]:
    """Every archive member the registry names for ``corpus`` (both directions), sorted."""
    names = set(corpus.members.values())
    for _direction, members in corpus.direction_members:
        names.update(member for _lang, member in members)
    return sorted(names)


def download_corpora(
    corpora: Sequence[Corpus],
    out_dir: str | os.PathLike[str],
    params: DownloadParams,
    *,
    mirror: str | os.PathLike[str] | None = None,
    session: requests.Session | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Fetch each corpus and extract its members to ``out_dir/<name>/<member path>``.

    Writes ``out_dir/manifest.json`` and returns it: per corpus name, ``url``,
    ``source`` (``mirror`` or ``network``), ``sha256`` and
    ``bytes`` of the archive, and the extracted ``members``. Archives are fetched into
    a temporary folder inside ``out_dir`` and deleted once extracted. A checksum pinned
    in ``params.checksums`` (else the registry's) must match.
    """
    unknown = sorted(set(params.checksums) - NAMES)
    if unknown:
        raise DownloadError(f"download.checksums: unknown corpus name(s): {', '.join(unknown)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, Any]] = {}
    with requests.Session() if session is None else contextlib.nullcontext(session) as shared:
        for corpus in corpora:
            with tempfile.TemporaryDirectory(prefix=".archive-", dir=out) as tmp:
                got = fetch(
                    corpus.url,
                    Path(tmp, corpus.archive_name),
                    sha256=params.checksums.get(corpus.name) or corpus.sha256,
                    retries=params.retries,
                    timeout=params.timeout_s,
                    mirror=mirror,
                    progress=progress,
                    session=shared,
                    desc=corpus.name,
                )
                members = extract_members(
                    got.path, corpus_members(corpus), out / corpus.name, label=got.source
                )
            manifest[corpus.name] = {
                "url": got.url,
                # "mirror" or "network", not the mirror's path: where the mirror lives
                # must not change data/raw (and so every stage after it).
                "source": _origin(got),
                "sha256": got.sha256,
                "bytes": got.bytes,
                "members": members,
            }
            log.info(
                "%s: %d bytes, sha256 %s, %d member(s)",
                corpus.name,
                got.bytes,
                got.sha256,
                len(members),
            )
    write_json(out / "manifest.json", manifest)
    return manifest
