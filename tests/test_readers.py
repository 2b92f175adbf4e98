"""Readers: TSV, aligned text and SGML, streamed in chunks; bad lines get drop codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmt.data.corpora import get_corpus
from nmt.data.filters import CODES, KEPT
from nmt.data.readers import (
    Chunk,
    CorpusFormatError,
    Decoded,
    aligned_chunks,
    corpus_chunks,
    corpus_paths,
    count_lines,
    decode_chunk,
    head_chunks,
    sgml_chunks,
    tsv_chunks,
)


def read_all(chunks: list[Chunk]) -> list[tuple[str, str] | str]:
    """Every line of every chunk: the pair, or the name of its drop reason."""
    names = {code: reason for reason, code in CODES.items()}
    out: list[tuple[str, str] | str] = []
    for chunk in chunks:
        d: Decoded = decode_chunk(chunk)
        assert len(d.src) == len(d.tgt) == int((d.codes == KEPT).sum())
        pairs = zip(d.src, d.tgt, strict=True)
        out.extend(next(pairs) if code == KEPT else names[code] for code in d.codes.tolist())
    return out


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_tsv_two_and_three_columns_in_either_order(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv", b"Go.\tVa !\nHi.\tSalut !\tCC-BY 2.0 (France) Attribution\n")
    assert read_all(list(tsv_chunks(path, 1, 0))) == [("Va !", "Go."), ("Salut !", "Hi.")]
    assert read_all(list(tsv_chunks(path, 0, 1))) == [("Go.", "Va !"), ("Hi.", "Salut !")]


@pytest.mark.parametrize("attribution", [False, True])
def test_tsv_uniform_and_mixed_chunks_decode_alike(tmp_path: Path, attribution: bool) -> None:
    extra = "\tCC-BY 2.0 (France)" if attribution else ""
    lines = [f"en {i}\tfr {i}{extra}\n" for i in range(50)]
    uniform = write(tmp_path / "u.tsv", "".join(lines).encode())  # every line alike: fast path
    mixed = write(tmp_path / "m.tsv", "".join([*lines, "no tab\n"]).encode())
    want = [(f"fr {i}", f"en {i}") for i in range(50)]
    assert read_all(list(tsv_chunks(uniform, 1, 0))) == want
    assert read_all(list(tsv_chunks(mixed, 1, 0))) == [*want, "bad_columns"]


def test_tsv_bad_lines_get_a_reason_and_reading_goes_on(tmp_path: Path) -> None:
    data = (
        b"\xef\xbb\xbfGo.\tVa !\r\n"  # BOM and CRLF: stripped, the line is kept
        b"no tab here\n"
        b"\n"
        b"Bad \xff byte\tMauvais\n"
        b"a\tb\tc\td\n"
        b"Nul\x00\tNul\n"  # readable: the invalid_chars filter drops it later
        b"Run!\t\n"  # an empty side: the empty filter drops it later
        b"Last.\tDernier."  # no newline at the end
    )
    path = write(tmp_path / "bad.tsv", data)
    assert read_all(list(tsv_chunks(path, 0, 1))) == [
        ("Go.", "Va !"),
        "bad_columns",
        "empty",
        "invalid_utf8",
        "bad_columns",
        ("Nul\x00", "Nul"),
        ("Run!", ""),
        ("Last.", "Dernier."),
    ]


def test_tsv_chunks_hold_whole_lines_and_lose_none(tmp_path: Path) -> None:
    lines = [f"sentence {i} {'x' * (i % 7)}\tphrase {i}\n" for i in range(200)]
    path = write(tmp_path / "many.tsv", "".join(lines).encode())
    small = list(tsv_chunks(path, 0, 1, chunk_bytes=64))
    assert len(small) > 10
    assert all(c.src.endswith(b"\n") for c in small)
    assert read_all(small) == read_all(list(tsv_chunks(path, 0, 1)))
    assert len(read_all(small)) == 200


def test_a_5000_word_line_is_read_whole(tmp_path: Path) -> None:
    long = " ".join(["mot"] * 5000)
    path = write(tmp_path / "long.tsv", f"{long}\tword\nok\td'accord\n".encode())
    pairs = read_all(list(tsv_chunks(path, 0, 1, chunk_bytes=100)))
    assert pairs == [(long, "word"), ("ok", "d'accord")]


def test_aligned_pairs_lines_and_strips_line_ends(tmp_path: Path) -> None:
    src = write(tmp_path / "c.fr", "Bonjour\r\n\n\ufeffMerci\nFin".encode())
    tgt = write(tmp_path / "c.en", b"Hello\r\n\nThanks\nEnd\n")
    pairs = read_all(list(aligned_chunks(src, tgt, chunk_bytes=8)))
    assert pairs == [("Bonjour", "Hello"), ("", ""), ("Merci", "Thanks"), ("Fin", "End")]


def test_aligned_invalid_utf8_on_one_side_drops_the_pair(tmp_path: Path) -> None:
    src = write(tmp_path / "c.fr", b"ok\n\xc3\x28\nbon\n")
    tgt = write(tmp_path / "c.en", b"ok\nbad\ngood\n")
    assert read_all(list(aligned_chunks(src, tgt))) == [
        ("ok", "ok"),
        "invalid_utf8",
        ("bon", "good"),
    ]


def test_aligned_unequal_lengths_name_both_files(tmp_path: Path) -> None:
    src = write(tmp_path / "c.fr", b"un\ndeux\ntrois\n")
    tgt = write(tmp_path / "c.en", b"one\ntwo\n")
    with pytest.raises(CorpusFormatError, match=r"c\.fr has 3 lines.*c\.en has 2"):
        aligned_chunks(src, tgt)  # raises at once, before any chunk is asked for


def sgml(segs: list[str]) -> bytes:
    body = "".join(f'<seg id="{i + 1}">{s}</seg>\n' for i, s in enumerate(segs))
    return f'<srcset setid="t" srclang="any">\n<doc docid="d">\n{body}</doc>\n</srcset>\n'.encode()


def test_sgml_unescapes_entities_and_pairs_segments(tmp_path: Path) -> None:
    src = write(tmp_path / "s.sgm", sgml(["AT&amp;T &quot;dit&quot; &lt;oui&gt;", "Deux"]))
    tgt = write(tmp_path / "r.sgm", sgml(["AT&amp;T &#39;says&#39;", "Two"]))
    assert read_all(list(sgml_chunks(src, tgt, chunk_bytes=4))) == [
        ('AT&T "dit" <oui>', "AT&T 'says'"),
        ("Deux", "Two"),
    ]


def test_sgml_unequal_segments_name_both_files(tmp_path: Path) -> None:
    src = write(tmp_path / "s.sgm", sgml(["a", "b"]))
    tgt = write(tmp_path / "r.sgm", sgml(["a"]))
    with pytest.raises(CorpusFormatError, match=r"s\.sgm has 2, .*r\.sgm has 1"):
        sgml_chunks(src, tgt)


def test_count_lines(tmp_path: Path) -> None:
    assert count_lines(write(tmp_path / "a", b"")) == 0
    assert count_lines(write(tmp_path / "b", b"x\ny\n")) == 2
    assert count_lines(write(tmp_path / "c", b"x\ny")) == 2


def test_corpus_chunks_follow_the_registry(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write(raw / "tatoeba/fra-eng/fra.txt", b"Go.\tVa !\n")
    fr_en = read_all(list(corpus_chunks(get_corpus("tatoeba", "fr", "en"), raw, "fr", "en")))
    en_fr = read_all(list(corpus_chunks(get_corpus("tatoeba", "en", "fr"), raw, "en", "fr")))
    assert fr_en == [("Va !", "Go.")]
    assert en_fr == [("Go.", "Va !")]
    write(raw / "europarl/europarl-v7.fr-en.fr", b"Reprise\n")
    write(raw / "europarl/europarl-v7.fr-en.en", b"Resumption\n")
    europarl = get_corpus("europarl", "fr", "en")
    assert read_all(list(corpus_chunks(europarl, raw, "fr", "en"))) == [("Reprise", "Resumption")]


def test_newstest_direction_picks_its_own_source_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    corpus = get_corpus("newstest2014", "fr", "en")
    folder = raw / "newstest2014/test-full"
    write(folder / "newstest2014-fren-src.fr.sgm", sgml(["Bonjour"]))
    write(folder / "newstest2014-fren-ref.en.sgm", sgml(["Hello"]))
    assert read_all(list(corpus_chunks(corpus, raw, "fr", "en"))) == [("Bonjour", "Hello")]


def test_missing_member_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tatoeba.*fra-eng/fra\.txt not found"):
        corpus_paths(get_corpus("tatoeba", "fr", "en"), tmp_path, "fr", "en")


def test_decoded_codes_are_uint8_per_line() -> None:
    d = decode_chunk(Chunk(b"a\tb\nbad\n"))
    assert d.codes.dtype == np.uint8
    assert d.codes.tolist() == [KEPT, CODES["bad_columns"]]


@pytest.mark.parametrize("chunk_bytes", [16, 64, 1 << 20])
def test_head_keeps_the_first_lines_raw_and_stops(tmp_path: Path, chunk_bytes: int) -> None:
    lines = [f"en {i}\tfr {i}\n" for i in range(30)]
    lines[3] = "no tab\n"  # a bad line is one of the first lines all the same
    path = write(tmp_path / "a.tsv", "".join(lines).encode())
    head = list(head_chunks(tsv_chunks(path, 0, 1, chunk_bytes), 10))
    assert read_all(head) == read_all(list(tsv_chunks(path, 0, 1)))[:10]
    assert read_all(head)[3] == "bad_columns"
    assert read_all(list(head_chunks(tsv_chunks(path, 0, 1, chunk_bytes), 100))) == read_all(
        list(tsv_chunks(path, 0, 1))
    )


def test_head_of_aligned_text_cuts_both_sides(tmp_path: Path) -> None:
    src = write(tmp_path / "c.fr", "".join(f"fr {i}\n" for i in range(20)).encode())
    tgt = write(tmp_path / "c.en", "".join(f"en {i}\n" for i in range(20)).encode())
    head = read_all(list(head_chunks(aligned_chunks(src, tgt, chunk_bytes=12), 7)))
    assert head == [(f"fr {i}", f"en {i}") for i in range(7)]
    last = write(tmp_path / "d.fr", b"a\nb")  # no newline at the end
    other = write(tmp_path / "d.en", b"A\nB")
    assert read_all(list(head_chunks(aligned_chunks(last, other), 2))) == [("a", "A"), ("b", "B")]
