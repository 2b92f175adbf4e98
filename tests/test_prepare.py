"""prepare end to end on tiny raw corpora made in tmp_path: counts, splits, leakage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from nmt.config.data import DataParams, FilterParams, NormalizeParams, PrepareParams, SplitParams
from nmt.data.prepare import prepare
from nmt.data.readers import CorpusFormatError
from nmt.data.schema import PAIR_SCHEMA, read_pairs

TATOEBA = [  # English<TAB>French, as the manythings file
    "Go.\tVa !",
    "Hi.\tSalut !",
    "Hi.\tSalut !",  # exact duplicate
    "Hi.\tSalut  !",  # duplicate once normalised
    "Run!\tCours !",
    "Run!\tCourez !",
    "Who?\tQui ?\tCC-BY 2.0 (France) Attribution: tatoeba.org",
    "no tab on this line",
    "Bad\tMauvais \xff",  # invalid UTF-8 (written as latin-1 below)
    "Nul\x00\tNul",
    "Empty side.\t",
    "\ufeffBOM first.\tBOM d'abord.",
    "CRLF end.\tFin CRLF.\r",
    "Paris\tParis",  # identical sides
    " ".join(["word"] * 5000) + "\tmot",  # a 5,000-word line
    "I am cold.\tJ'ai froid.",
    "He is tall.\tIl est grand.",
]
EUROPARL = [  # (French, English)
    ("Reprise de la session", "Resumption of the session"),
    ("", ""),
    ("Va !", "Go."),  # already kept from tatoeba: a duplicate across corpora
    ("Je déclare reprise la session.", "I declare resumed the session."),
    ("Merci beaucoup.", "Thank you very much."),
    ("Le Parlement se lève.", "The House rose."),
]
NEWSTEST = [  # (French source, English reference)
    ("Une boîte noire dans votre voiture ?", "A black box in your car?"),
    ("AT&amp;T a dit &quot;non&quot;.", "AT&amp;T said &quot;no&quot;."),
    ("", "An empty source segment."),
    (" ".join(["long"] * 60), " ".join(["Long"] * 60)),  # above max_tokens: kept all the same
    ("Merci beaucoup.", "Thank you very much."),  # also a europarl pair: leaks
]


def write_tsv(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(
        line.encode("latin-1") + b"\n" if "\xff" in line else line.encode() + b"\n"
        for line in lines
    )
    path.write_bytes(data)


def write_sgml(path: Path, segs: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f'<seg id="{i + 1}">{s}</seg>\n' for i, s in enumerate(segs))
    path.write_text(f'<refset setid="newstest2014">\n<doc docid="d">\n{body}</doc>\n</refset>\n')


def make_raw(
    root: Path,
    tatoeba: list[str] = TATOEBA,
    europarl: list[tuple[str, str]] = EUROPARL,
    newstest: list[tuple[str, str]] = NEWSTEST,
) -> Path:
    raw = root / "raw"
    write_tsv(raw / "tatoeba/fra-eng/fra.txt", tatoeba)
    (raw / "europarl").mkdir(parents=True)
    (raw / "europarl/europarl-v7.fr-en.fr").write_text("".join(f"{f}\n" for f, _ in europarl))
    (raw / "europarl/europarl-v7.fr-en.en").write_text("".join(f"{e}\n" for _, e in europarl))
    folder = raw / "newstest2014/test-full"
    write_sgml(folder / "newstest2014-fren-src.fr.sgm", [f for f, _ in newstest])
    write_sgml(folder / "newstest2014-fren-ref.en.sgm", [e for _, e in newstest])
    return raw


DATA = DataParams(corpora=["tatoeba", "europarl"], test_sets=["newstest2014"])


def run(tmp_path: Path, raw: Path | None = None, out: str = "prepared", **kw: Any) -> dict:
    kw.setdefault("data", DATA)
    kw.setdefault("params", PrepareParams())
    kw.setdefault("seed", 1234)
    return prepare(raw or make_raw(tmp_path), tmp_path / out, **kw)


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    return read_pairs(folder / f"{name}.parquet").to_pylist()


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[dict, Path]:
    return run(tmp_path), tmp_path / "prepared"


def test_writes_every_file_with_the_pair_schema(prepared: tuple[dict, Path]) -> None:
    _, out = prepared
    names = sorted(p.name for p in out.iterdir())
    assert names == ["newstest2014.parquet", "test.parquet", "train.parquet", "valid.parquet"]
    for path in out.iterdir():
        assert pq.read_schema(path).equals(PAIR_SCHEMA)


def test_counts_per_reason(prepared: tuple[dict, Path]) -> None:
    metrics, _ = prepared
    tatoeba = metrics["corpora"]["tatoeba"]
    assert tatoeba["read"] == len(TATOEBA)
    expected = {
        "duplicate": 2,
        "bad_columns": 1,
        "invalid_utf8": 1,
        "invalid_chars": 1,
        "empty": 1,
        "identical": 1,
        "too_long": 1,
    }
    for reason, n in expected.items():
        assert tatoeba[f"dropped_{reason}"] == n, reason
    assert tatoeba["kept"] == len(TATOEBA) - sum(expected.values())
    europarl = metrics["corpora"]["europarl"]
    assert (europarl["read"], europarl["dropped_empty"], europarl["dropped_duplicate"]) == (6, 1, 1)


def test_read_is_kept_plus_dropped(prepared: tuple[dict, Path]) -> None:
    metrics, _ = prepared
    for counts in [*metrics["corpora"].values(), *metrics["test_sets"].values()]:
        drops = sum(v for k, v in counts.items() if k.startswith("dropped_"))
        assert counts["read"] == counts["kept"] + drops == counts["kept"] + counts["dropped"]


def test_every_kept_pair_is_written_once_or_counted_as_leaked(prepared: tuple[dict, Path]) -> None:
    metrics, out = prepared
    kept = sum(c["kept"] for c in metrics["corpora"].values())
    written = sum(metrics["splits"][s] for s in ("train", "valid", "test"))
    assert kept == written + sum(metrics["leaked"].values())
    for split in ("train", "valid", "test", "newstest2014"):
        assert len(rows(out, split)) == metrics["splits"][split]


def test_bom_and_crlf_are_stripped_not_dropped(prepared: tuple[dict, Path]) -> None:
    _, out = prepared
    pairs = {(r["src"], r["ref"]) for s in ("train", "valid", "test") for r in rows(out, s)}
    assert ("BOM d'abord.", "BOM first.") in pairs
    assert ("Fin CRLF.", "CRLF end.") in pairs


def test_provenance_and_direction(prepared: tuple[dict, Path]) -> None:
    _, out = prepared
    by_src = {r["src"]: r for s in ("train", "valid", "test") for r in rows(out, s)}
    assert by_src["Va !"]["tgt"] == "Go." and by_src["Va !"]["corpus"] == "tatoeba"
    assert by_src["Reprise de la session"]["corpus"] == "europarl"


def test_external_test_set_is_kept_whole(prepared: tuple[dict, Path]) -> None:
    metrics, out = prepared
    assert metrics["test_sets"]["newstest2014"] == {
        "read": 5,
        "kept": 4,
        "dropped": 1,
        "dropped_invalid_utf8": 0,
        "dropped_bad_columns": 0,
        "dropped_invalid_chars": 0,
        "dropped_empty": 1,
    }
    test = rows(out, "newstest2014")
    assert [r["ref"] for r in test][:2] == ["A black box in your car?", 'AT&T said "no".']
    assert any(len(r["src"].split()) == 60 for r in test)  # longer than max_tokens
    assert {r["corpus"] for r in test} == {"newstest2014"}


def test_ref_is_raw_while_tgt_is_normalised(tmp_path: Path) -> None:
    params = PrepareParams(normalize=NormalizeParams(lowercase=True, punctuation="split"))
    run(tmp_path, params=params)
    test = rows(tmp_path / "prepared", "newstest2014")
    assert (test[0]["tgt"], test[0]["ref"]) == (
        "a black box in your car ?",
        "A black box in your car?",
    )


def test_no_source_in_two_splits_and_no_test_sentence_in_train(tmp_path: Path) -> None:
    # Many sources share one target: some land in test, which must purge the others.
    tatoeba = [f"Go.\tVa {i} !" for i in range(20)] + [f"Hi {i}.\tSalut !" for i in range(20)]
    params = PrepareParams(split=SplitParams(valid=0.2, test=0.4))
    metrics = run(tmp_path, make_raw(tmp_path, tatoeba=tatoeba), params=params)
    out = tmp_path / "prepared"
    split_of: dict[str, str] = {}
    for split in ("train", "valid", "test"):
        for r in rows(out, split):
            assert split_of.setdefault(r["src"], split) == split
    held = rows(out, "test") + rows(out, "newstest2014")
    test_src, test_tgt = {r["src"] for r in held}, {r["tgt"] for r in held}
    for split in ("train", "valid"):
        for r in rows(out, split):
            assert r["src"] not in test_src and r["tgt"] not in test_tgt
    assert metrics["leaked"]["train"] + metrics["leaked"]["valid"] > 0


def test_a_pair_in_the_external_test_set_leaves_train(prepared: tuple[dict, Path]) -> None:
    metrics, out = prepared
    train_valid = {r["src"] for s in ("train", "valid") for r in rows(out, s)}
    assert "Merci beaucoup." not in train_valid
    assert metrics["leaked"]["train"] + metrics["leaked"]["valid"] >= 1


def test_same_source_same_split_across_corpora_and_runs(tmp_path: Path) -> None:
    tatoeba = [f"Sentence {i}.\tPhrase {i}." for i in range(300)]  # English first
    europarl = [(f"Phrase {i}.", f"Another sentence {i}.") for i in range(300)]
    raw = make_raw(tmp_path, tatoeba=tatoeba, europarl=europarl)
    params = PrepareParams(split=SplitParams(valid=0.2, test=0.2))
    run(tmp_path, raw, out="a", params=params)
    run(tmp_path, raw, out="b", params=params)
    run(tmp_path, raw, out="c", params=params, seed=99)
    for split in ("train", "valid", "test"):
        assert rows(tmp_path / "a", split) == rows(tmp_path / "b", split)
    srcs = {s: {r["src"] for r in rows(tmp_path / "a", s)} for s in ("train", "valid", "test")}
    assert sum(map(len, srcs.values())) == 300  # each source in one split (both pairs with it)
    assert {r["src"] for r in rows(tmp_path / "c", "test")} != srcs["test"]  # seed matters


def test_max_pairs_keeps_the_first_kept_pairs_and_stops(tmp_path: Path) -> None:
    params = PrepareParams(max_pairs={"europarl": 2})
    metrics = run(tmp_path, params=params)
    europarl = metrics["corpora"]["europarl"]
    # "Reprise ..." (kept), "" (empty), "Va !" (duplicate), "Je déclare ..." (kept): stop.
    assert (europarl["read"], europarl["kept"], europarl["dropped"]) == (4, 2, 2)
    out = tmp_path / "prepared"
    written = {r["src"] for s in ("train", "valid", "test") for r in rows(out, s)}
    assert {"Reprise de la session", "Je déclare reprise la session."} <= written
    assert "Le Parlement se lève." not in written


def test_max_pairs_for_a_corpus_not_in_use_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"max_pairs names \['europal'\]"):
        run(tmp_path, params=PrepareParams(max_pairs={"europal": 10}))
    assert not (tmp_path / "prepared").exists()


def test_pairs_beyond_the_cap_do_not_count_as_seen(tmp_path: Path) -> None:
    # tatoeba stops after "Go." -> "Va !"; its "Run!" pair was never kept, so the same
    # pair in europarl is new there, not a duplicate.
    europarl = [("Cours !", "Run!"), ("Va !", "Go.")]
    params = PrepareParams(max_pairs={"tatoeba": 1})
    metrics = run(tmp_path, make_raw(tmp_path, europarl=europarl), params=params)
    tatoeba = metrics["corpora"]["tatoeba"]
    assert (tatoeba["read"], tatoeba["kept"]) == (1, 1)
    assert metrics["corpora"]["europarl"]["kept"] == 1
    assert metrics["corpora"]["europarl"]["dropped_duplicate"] == 1


def test_english_prefix_filter_spares_the_test_set(tmp_path: Path) -> None:
    params = PrepareParams(
        normalize=NormalizeParams(lowercase=True),
        filters=FilterParams(english_prefixes=["i am ", "he is "]),
    )
    metrics = run(tmp_path, params=params)
    out = tmp_path / "prepared"
    tgts = [r["tgt"] for s in ("train", "valid", "test") for r in rows(out, s)]
    assert sorted(tgts) == ["he is tall.", "i am cold."]
    assert metrics["corpora"]["tatoeba"]["dropped_english_prefix"] > 0
    assert metrics["splits"]["newstest2014"] == 4


def test_output_does_not_depend_on_workers_or_chunking(tmp_path: Path) -> None:
    raw = make_raw(tmp_path, tatoeba=TATOEBA + [f"S {i}.\tP {i}." for i in range(200)])
    one = run(tmp_path, raw, out="one")
    many = run(tmp_path, raw, out="many", workers=2, chunk_bytes=64)
    assert one == many
    for name in ("train", "valid", "test", "newstest2014"):
        assert rows(tmp_path / "one", name) == rows(tmp_path / "many", name)


def test_failure_leaves_the_previous_output_alone(tmp_path: Path) -> None:
    raw = make_raw(tmp_path)
    out = tmp_path / "prepared"
    run(tmp_path, raw)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (raw / "europarl/europarl-v7.fr-en.en").write_text("one line only\n")
    with pytest.raises(CorpusFormatError, match="europarl-v7.fr-en.fr has 6 lines"):
        run(tmp_path, raw)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared", "raw"]


def test_missing_corpus_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    raw = make_raw(tmp_path)
    (raw / "tatoeba/fra-eng/fra.txt").unlink()
    with pytest.raises(FileNotFoundError, match="fra-eng/fra.txt"):
        run(tmp_path, raw)
    assert not (tmp_path / "prepared").exists()


def test_head_reads_only_the_first_lines(tmp_path: Path) -> None:
    metrics = run(tmp_path, params=PrepareParams(head={"tatoeba": 3, "europarl": 100}))
    tatoeba = metrics["corpora"]["tatoeba"]
    # "Go.", "Hi.", "Hi." (a duplicate): head comes before filtering and deduplication
    assert (tatoeba["read"], tatoeba["kept"], tatoeba["dropped_duplicate"]) == (3, 2, 1)
    assert metrics["corpora"]["europarl"]["read"] == len(EUROPARL)


def test_head_and_normalize_corpora_name_corpora_in_use(tmp_path: Path) -> None:
    raw = make_raw(tmp_path)
    with pytest.raises(ValueError, match=r"prepare.head names \['tutorial'\]"):
        run(tmp_path, raw, params=PrepareParams(head={"tutorial": 10}))
    with pytest.raises(ValueError, match=r"normalize_corpora names \['europal'\]"):
        run(tmp_path, raw, params=PrepareParams(normalize_corpora={"europal": NormalizeParams()}))
    assert not (tmp_path / "prepared").exists()


def test_duplicates_can_be_kept(tmp_path: Path) -> None:
    metrics = run(tmp_path, params=PrepareParams(drop_duplicates=False))
    tatoeba, europarl = metrics["corpora"]["tatoeba"], metrics["corpora"]["europarl"]
    assert tatoeba["dropped_duplicate"] == europarl["dropped_duplicate"] == 0
    pairs = [
        (r["src"], r["tgt"])
        for s in ("train", "valid", "test")
        for r in rows(tmp_path / "prepared", s)
    ]
    assert pairs.count(("Salut !", "Hi.")) == 3  # twice as read, once normalised
    assert pairs.count(("Va !", "Go.")) == 2  # tatoeba and europarl


def test_split_kind_train_judges_on_the_training_pairs(tmp_path: Path) -> None:
    params = PrepareParams(split=SplitParams(kind="train", valid=0, test=0))
    metrics = run(tmp_path, params=params)
    out = tmp_path / "prepared"
    train = rows(out, "train")
    assert rows(out, "valid") == rows(out, "test") == train
    assert metrics["split"] == {"kind": "train"}
    sizes = metrics["splits"]
    assert sizes["train"] == sizes["valid"] == sizes["test"] == len(train)
    kept = sum(c["kept"] for c in metrics["corpora"].values())
    # the external test set still purges train ("Merci beaucoup." is in newstest2014)
    assert metrics["leaked"] == {"train": 1} and len(train) == kept - 1
    assert "Merci beaucoup." not in {r["src"] for r in train}


def test_a_corpus_normalised_on_its_own_first(tmp_path: Path) -> None:
    own = NormalizeParams(nfkc=False, ascii_fold="drop", punctuation="strip")
    params = PrepareParams(
        normalize=NormalizeParams(lowercase=True), normalize_corpora={"europarl": own}
    )
    run(tmp_path, params=params)
    by_corpus: dict[str, set[str]] = {}
    for s in ("train", "valid", "test"):
        for r in rows(tmp_path / "prepared", s):
            by_corpus.setdefault(r["corpus"], set()).add(r["src"])
    assert "je declare reprise la session" in by_corpus["europarl"]
    assert "le parlement se leve" in by_corpus["europarl"]
    assert "bom d'abord." in by_corpus["tatoeba"]  # only the shared steps


def test_new_options_do_not_depend_on_workers(tmp_path: Path) -> None:
    raw = make_raw(tmp_path, tatoeba=TATOEBA + [f"S {i}.\tP {i}." for i in range(200)])
    params = PrepareParams(
        normalize_corpora={"europarl": NormalizeParams(lowercase=True)},
        head={"tatoeba": 150},
        drop_duplicates=False,
        split=SplitParams(kind="train"),
    )
    one = run(tmp_path, raw, out="one", params=params)
    many = run(tmp_path, raw, out="many", params=params, workers=2, chunk_bytes=64)
    assert one == many
    for name in ("train", "valid", "test", "newstest2014"):
        assert rows(tmp_path / "one", name) == rows(tmp_path / "many", name)
