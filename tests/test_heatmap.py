import torch

from nmt.evaluation.heatmap import pick_sentences, write_heatmaps
from nmt.inference.translate import AttentionMap

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_pick_sentences_is_fixed_and_readable():
    sources = ["a b", "one two three", "w " * 30, "x y z w", "p q r", "s t u"]
    assert pick_sentences(sources, 2) == [1, 3]
    assert pick_sentences(sources, 10) == [1, 3, 4, 5]
    assert pick_sentences(sources, 0) == []


def test_write_heatmaps_makes_pngs(tmp_path):
    weights = torch.softmax(torch.randn(3, 4), dim=-1)
    amap = AttentionMap(
        source=["le", "chat", "noir", "."], target=["the", "cat", "<eos>"], weights=weights
    )
    paths = write_heatmaps([amap, amap], tmp_path / "maps", "heldout")
    assert [p.name for p in paths] == ["heldout-0.png", "heldout-1.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 1000
