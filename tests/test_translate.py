from pathlib import Path

import pytest
import torch

import nmt.translate as translate_module
from nmt.checkpoint import load_model, model_payload, save_checkpoint
from nmt.config import ModelParams
from nmt.config.data import NormalizeParams
from nmt.decoding import SearchSettings, greedy_search
from nmt.models import build_model
from nmt.translate import Translator, decode_ids, length_batches, pad_batch
from nmt.vocab import SPECIALS, UNK_ID, WordTokenizer

SRC_WORDS = ["le", "chat", "la", "maison", "un", "chien", "est", "noir", "grand", "petit", ".", ","]
TGT_WORDS = ["the", "cat", "house", "a", "dog", "is", "black", "big", "small", ".", ","]
NORMALIZE = NormalizeParams(lowercase=True, punctuation="split")


def make_checkpoint(path: Path, attention: str = "bahdanau", seed: int = 0) -> Path:
    """A tiny untrained model with word vocabularies, saved as a real checkpoint."""
    torch.manual_seed(seed)
    src_tok = WordTokenizer([*SPECIALS, *SRC_WORDS])
    tgt_tok = WordTokenizer([*SPECIALS, *TGT_WORDS])
    params = ModelParams(attention=attention, embedding_dim=16, hidden_dim=12, dropout=0.0)
    model = build_model(params, len(src_tok), len(tgt_tok))
    payload = model_payload(model, src_tok, tgt_tok, NORMALIZE, "fr", "en")
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
    tmp_path, monkeypatch, beam, batch_size, max_tokens, sizes
):
    make_checkpoint(tmp_path / "best.pt")
    translator = Translator.from_checkpoint(tmp_path / "best.pt", torch.device("cpu"))
    seen = []
    real_search = translate_module.search

    def spy(model, src, lengths, settings, prepared):
        seen.append(src.size(0))
        return real_search(model, src, lengths, settings, prepared)

    monkeypatch.setattr(translate_module, "search", spy)
    sources = [[5, 6, 7][: 1 + i % 3] for i in range(7)]
    decode_ids(translator.model, sources, SearchSettings(beam_size=beam), torch.device("cpu"),
               batch_size, max_tokens=max_tokens)  # fmt: skip
    assert seen == sizes


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
