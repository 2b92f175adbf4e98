import io
import logging
import time
from pathlib import Path

import pytest
import torch

import nmt.inference.translate as translate_module
from nmt.config import VocabParams
from nmt.config.data import NormalizeParams
from nmt.config.model import RNNParams
from nmt.inference.search import SearchSettings, greedy_search
from nmt.inference.translate import (
    DEFAULT_MAX_SOURCE_TOKENS,
    Translator,
    decode_ids,
    length_batches,
    pad_batch,
    read_lines,
    scrub,
)
from nmt.models import build_model
from nmt.training.checkpoint import load_model, model_payload, save_checkpoint
from nmt.vocab import SPECIALS, UNK_ID, SubwordTokenizer, WordTokenizer, train_sentencepiece

SRC_WORDS = ["le", "chat", "la", "maison", "un", "chien", "est", "noir", "grand", "petit", ".", ","]
TGT_WORDS = ["the", "cat", "house", "a", "dog", "is", "black", "big", "small", ".", ","]
NORMALIZE = NormalizeParams(lowercase=True, punctuation="split")
CPU = torch.device("cpu")


@pytest.fixture
def searched(monkeypatch) -> list[torch.Tensor]:
    """The padded source batch of every search the translator runs, in order."""
    batches: list[torch.Tensor] = []
    real_search = translate_module.search

    def spy(model, src, lengths, settings, prepared):
        batches.append(src)
        return real_search(model, src, lengths, settings, prepared)

    monkeypatch.setattr(translate_module, "search", spy)
    return batches


def _subword(words: list[str]) -> SubwordTokenizer:
    texts = [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    params = VocabParams(kind="subword", vocab_size=40)
    return SubwordTokenizer(train_sentencepiece([texts], params, seed=0, num_threads=1))


def make_checkpoint(
    path: Path,
    attention: str = "bahdanau",
    seed: int = 0,
    subword: bool = False,
    train_max_src_tokens: int | None = None,
) -> Path:
    """A tiny untrained model with word (or sentencepiece) vocabularies, saved as a real
    checkpoint; ``train_max_src_tokens`` as the train stage records it, when given."""
    torch.manual_seed(seed)
    if subword:
        src_tok, tgt_tok = _subword(SRC_WORDS), _subword(TGT_WORDS)
    else:
        src_tok = WordTokenizer([*SPECIALS, *SRC_WORDS])
        tgt_tok = WordTokenizer([*SPECIALS, *TGT_WORDS])
    params = RNNParams(attention=attention, embedding_dim=16, hidden_dim=12, dropout=0.0)
    model = build_model(params, len(src_tok), len(tgt_tok))
    payload = model_payload(model, src_tok, tgt_tok, NORMALIZE, "fr", "en")
    if train_max_src_tokens is not None:
        payload["train_max_src_tokens"] = train_max_src_tokens
    save_checkpoint(path, payload)
    return path


def test_length_batches_and_padding():
    assert length_batches([3, 1, 5, 2, 4], 2) == [[2, 4], [0, 3], [1]]
    # at most 8 tokens with padding: rows x the batch's first (longest) length
    assert length_batches([3, 1, 5, 2, 4], 3, max_tokens=8) == [[2], [4, 0], [3, 1]]
    # a sentence longer than the cap is a batch of its own
    assert length_batches([3, 1, 5, 2, 4], 3, max_tokens=4) == [[2], [4], [0], [3, 1]]
    assert length_batches([0, 0, 0], 2, max_tokens=1) == [[0, 1], [2]]
    with pytest.raises(ValueError, match="max_tokens"):
        length_batches([1], 1, max_tokens=0)
    src, lengths = pad_batch([[5, 6], [], [7]], torch.device("cpu"))
    assert src.tolist() == [[5, 6], [0, 0], [7, 0]]
    assert lengths.tolist() == [2, 0, 1]


def test_translate_matches_the_steps_done_by_hand(tmp_path):
    ckpt = make_checkpoint(tmp_path / "best.pt")
    translator = Translator.from_checkpoint(tmp_path, torch.device("cpu"), batch_size=2)
    texts = ["Le chat est noir.", "", "Un GRAND chien, la maison.", "zèbre inconnu", "le"]
    settings = SearchSettings(beam_size=1, max_length_ratio=1.5, max_length_extra=3)
    out = translator.translate(texts, settings)
    loaded = load_model(ckpt)
    for text, got in zip(texts, out, strict=True):
        norm = translator.normalizer(text)
        ids = loaded.src_tokenizer.encode(norm)
        if not ids:
            assert got == ""
            continue
        limit = int(torch.ceil(torch.tensor(len(ids) * 1.5))) + 3
        hyp = greedy_search(loaded.model, torch.tensor([ids]), torch.tensor([len(ids)]), limit)[0]
        assert got == translator.normalizer.detokenize(loaded.tgt_tokenizer.decode(hyp))
    # normalisation as in training: lower-cased, punctuation split off, unknowns -> <unk>
    assert translator.encode(["Le chat."]) == [loaded.src_tokenizer.encode("le chat .")]
    assert translator.encode(["zèbre"]) == [[UNK_ID]]


def test_batching_never_changes_results(tmp_path):
    make_checkpoint(tmp_path / "best.pt")
    translator = Translator.from_checkpoint(tmp_path / "best.pt", torch.device("cpu"))
    texts = ["le chat", "un grand chien est noir", "la maison", "le petit chat est grand ."]
    sources = translator.encode(texts)
    for beam in (1, 3):
        settings = SearchSettings(beam_size=beam)
        together = decode_ids(translator.model, sources, settings, torch.device("cpu"), 64)
        capped = decode_ids(
            translator.model, sources, settings, torch.device("cpu"), 64, max_tokens=6 * beam
        )
        alone = [
            decode_ids(translator.model, [s], settings, torch.device("cpu"), 1)[0] for s in sources
        ]
        assert together == alone == capped


@pytest.mark.parametrize(
    ("beam", "batch_size", "max_tokens", "sizes"),
    [
        (1, 3, None, [3, 3, 1]),
        (3, 7, None, [2, 2, 2, 1]),
        (1, 3, 6, [2, 3, 2]),  # lengths 3 3 | 2 2 1 | 1 1
        (3, 7, 9, [1, 1, 1, 1, 2, 1]),  # 3 source tokens per sentence of a beam of 3
    ],
)
def test_batch_size_and_max_tokens_count_hypotheses(
    tmp_path, searched, beam, batch_size, max_tokens, sizes
):
    make_checkpoint(tmp_path / "best.pt")
    translator = Translator.from_checkpoint(tmp_path / "best.pt", torch.device("cpu"))
    sources = [[5, 6, 7][: 1 + i % 3] for i in range(7)]
    decode_ids(translator.model, sources, SearchSettings(beam_size=beam), torch.device("cpu"),
               batch_size, max_tokens=max_tokens)  # fmt: skip
    assert [src.size(0) for src in searched] == sizes


def test_long_input_is_decoded(tmp_path):
    make_checkpoint(tmp_path / "best.pt")
    translator = Translator.from_checkpoint(tmp_path, torch.device("cpu"))
    text = " ".join(["le chat est noir ."] * 100)  # 500 tokens
    settings = SearchSettings(beam_size=2, max_length_ratio=0.05, max_length_extra=0)
    (out,) = translator.translate([text], settings)
    assert len(out.split()) <= 25
    capped = Translator(translator.loaded, torch.device("cpu"), max_source_tokens=50)
    assert len(capped.encode([text])[0]) == 50


def test_attention_maps_label_pieces(tmp_path):
    make_checkpoint(tmp_path / "best.pt")
    translator = Translator.from_checkpoint(tmp_path, torch.device("cpu"))
    maps = translator.attention(["Le zèbre noir."], SearchSettings())
    (amap,) = maps
    assert amap.source == ["le", "zèbre", "noir", "."]
    assert amap.weights.shape == (len(amap.target), 4)
    make_checkpoint(tmp_path / "plain.pt", attention="none")
    plain = Translator.from_checkpoint(tmp_path / "plain.pt", torch.device("cpu"))
    assert plain.attention(["le chat"], SearchSettings()) is None


def test_source_cap_is_off_by_default_and_train_takes_the_checkpoints(tmp_path):
    make_checkpoint(tmp_path / "old.pt")
    make_checkpoint(tmp_path / "new.pt", train_max_src_tokens=7)
    # the evaluate stage's Translator: whole sentences, as before
    assert Translator.from_checkpoint(tmp_path / "new.pt", CPU).max_source_tokens is None
    new = Translator.from_checkpoint(tmp_path / "new.pt", CPU, max_source_tokens="train")
    assert new.max_source_tokens == 7
    old = Translator.from_checkpoint(tmp_path / "old.pt", CPU, max_source_tokens="train")
    assert old.max_source_tokens == DEFAULT_MAX_SOURCE_TOKENS == 256
    assert Translator(new.loaded, CPU, max_source_tokens=3).max_source_tokens == 3
    for bad in (0, "longest"):
        with pytest.raises(ValueError, match="max_source_tokens"):
            Translator(new.loaded, CPU, max_source_tokens=bad)


def test_long_input_is_truncated_with_a_warning_naming_the_line(tmp_path, searched, caplog):
    make_checkpoint(tmp_path / "best.pt", train_max_src_tokens=20)
    translator = Translator.from_checkpoint(tmp_path, CPU, max_source_tokens="train")
    long = " ".join(["le chat est noir ."] * 1000)  # 5,000 words, 5,000 pieces
    head = " ".join(long.split()[:20])
    settings = SearchSettings(beam_size=2)
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="nmt.inference.translate"):
        out = translator.translate(["le chat", long, "", head], settings)
    elapsed = time.perf_counter() - start
    assert len(out) == 4 and out[2] == ""
    assert out[1] == out[3]  # the first 20 pieces, translated as they are
    assert max(src.size(1) for src in searched) == 20
    assert [r.getMessage() for r in caplog.records] == [
        "line 2: 5000 source pieces, truncated to the first 20"
    ]
    assert elapsed < 30  # about 0.1 s; without the cap 10,010 steps of beam search


def test_scrub_replaces_lone_surrogates():
    assert scrub("Café") == ("Café", False)
    assert scrub("Caf\udcc3 au lait") == ("Caf\ufffd au lait", True)
    # escapes of a valid UTF-8 sequence decode to it; others become U+FFFD
    assert scrub("\udcc3\udca9 \ud800x\udfff") == ("é \ufffdx\ufffd", True)


def test_read_lines_is_lazy_and_splits_on_newline_only():
    data = b"\xef\xbb\xbfBonjour.\r\nCaf\xc3 au lait.\n\na\rb\x0cc\xe2\x80\xa8d\n\xff"
    lines = read_lines(io.BytesIO(data))
    assert next(lines) == "Bonjour."
    assert list(lines) == ["Caf\udcc3 au lait.", "", "a\rb\x0cc\u2028d", "\udcff"]
    assert list(read_lines(io.BytesIO(b""))) == []


def test_undecodable_text_affects_only_its_own_line(tmp_path, caplog):
    make_checkpoint(tmp_path / "best.pt", subword=True)
    translator = Translator.from_checkpoint(tmp_path, CPU)
    texts = ["le chat .", "Caf\udcc3 au lait.", "", "\ud800", "la maison"]
    settings = SearchSettings(beam_size=2)
    with caplog.at_level(logging.WARNING, logger="nmt.inference.translate"):
        out = translator.translate(texts, settings, first_line=10)
    assert len(out) == len(texts) and out[2] == ""
    assert [r.getMessage() for r in caplog.records] == [
        "line 11: bytes that are not UTF-8 replaced with U+FFFD",
        "line 13: bytes that are not UTF-8 replaced with U+FFFD",
    ]
    clean = translator.translate(["le chat .", "Caf\ufffd au lait.", "la maison"], settings)
    assert [out[0], out[1], out[4]] == clean


def test_a_line_that_fails_to_tokenise_is_translated_as_empty(tmp_path, monkeypatch, caplog):
    make_checkpoint(tmp_path / "best.pt")
    translator = Translator.from_checkpoint(tmp_path, CPU)
    tokenizer = translator.loaded.src_tokenizer
    real = tokenizer.encode_batch

    def fussy(texts):
        if any("chien" in t for t in texts):
            raise RuntimeError("no dogs")
        return real(texts)

    monkeypatch.setattr(tokenizer, "encode_batch", fussy)
    with caplog.at_level(logging.WARNING, logger="nmt.inference.translate"):
        out = translator.translate(["le chat", "un chien", "la maison"], SearchSettings())
    assert out[1] == "" and out[0] != "" and out[2] != ""
    assert [r.getMessage() for r in caplog.records] == [
        "line 2: not translated, tokenising failed (no dogs)"
    ]


def test_translate_stream_yields_each_chunk_before_reading_the_next(tmp_path, caplog):
    make_checkpoint(tmp_path / "best.pt", train_max_src_tokens=6)
    translator = Translator.from_checkpoint(tmp_path, CPU, batch_size=4, max_source_tokens="train")
    texts = [" ".join(SRC_WORDS[: 1 + i % 9]) for i in range(11)]
    read = []

    def source():
        for text in texts:
            read.append(text)
            yield text

    settings = SearchSettings(beam_size=2)
    stream = translator.translate_stream(source(), settings, chunk_size=4)
    with caplog.at_level(logging.WARNING, logger="nmt.inference.translate"):
        first = next(stream)
        assert len(read) == 4  # the first chunk only
        rest = list(stream)
    assert [first, *rest] == translator.translate(texts, settings)
    # warnings number lines across chunks: 7, 8 (chunk 2) and 9 (chunk 3) are too long;
    # then the same from translate() of the whole list
    warned = [r.getMessage().split(":")[0] for r in caplog.records]
    assert warned == ["line 7", "line 8", "line 9"] * 2
    # the default chunk holds CHUNK_BATCHES batches of hypotheses
    assert translator.chunk_size(settings) == translate_module.CHUNK_BATCHES * 2
    assert list(translator.translate_stream(iter([]), settings)) == []


def test_the_search_is_prepared_once_per_translator(tmp_path, monkeypatch):
    make_checkpoint(tmp_path / "best.pt")
    translator = Translator.from_checkpoint(tmp_path, CPU)
    made = []
    real_prepare = translate_module.prepare

    def counting(model):
        made.append(model)
        return real_prepare(model)

    monkeypatch.setattr(translate_module, "prepare", counting)
    settings = SearchSettings(beam_size=2)
    first = [translator.translate([t], settings)[0] for t in ("le chat", "la maison", "le chat")]
    assert len(made) == 1
    assert first[0] == first[2] == translator.translate(["le chat"], settings)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):  # another autocast state: its own
        translator.translate(["le chat"], settings)
    assert len(made) == 2
