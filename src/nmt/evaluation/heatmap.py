"""Attention heatmaps: one PNG per sentence, target steps down, source pieces across."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window: stages and tests run headless

import matplotlib.pyplot as plt  # noqa: E402

from nmt.inference.translate import AttentionMap  # noqa: E402

__all__ = ["pick_sentences", "plot_attention", "write_heatmaps", "write_no_attention"]


def pick_sentences(
    sources: Sequence[str], n: int, min_words: int = 3, max_words: int = 20
) -> list[int]:
    """Indices of the first ``n`` sources of ``min_words``..``max_words`` words: a fixed,
    readable handful that stays the same from run to run."""
    picked = []
    for i, text in enumerate(sources):
        if len(picked) >= n:
            break
        if min_words <= len(text.split()) <= max_words:
            picked.append(i)
    return picked


def plot_attention(amap: AttentionMap, path: str | os.PathLike[str], title: str = "") -> None:
    """Save the attention weights (target steps x source pieces) of one sentence as PNG."""
    weights = amap.weights.numpy()
    rows, cols = weights.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * cols + 2), max(3.0, 0.4 * rows + 1.5)))
    try:
        image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(cols), amap.source, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(rows), amap.target, fontsize=8)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
        if title:
            ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.04)
        fig.tight_layout()
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)


def write_heatmaps(
    maps: Sequence[AttentionMap], out_dir: str | os.PathLike[str], prefix: str
) -> list[Path]:
    """``<out_dir>/<prefix>-<i>.png`` for each map; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, amap in enumerate(maps):
        path = out / f"{prefix}-{i}.png"
        plot_attention(amap, path, title=" ".join(amap.source))
        paths.append(path)
    return paths


def write_no_attention(out_dir: str | os.PathLike[str], model: str) -> Path:
    """A one-line PNG saying ``model`` has no attention to show.

    The heatmap folder is a declared output: leaving it empty would vanish from git and
    make DVC see a changed output on a fresh clone.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "no-attention.png"
    fig = plt.figure(figsize=(4.0, 0.6))
    try:
        fig.text(
            0.5,
            0.5,
            f"{model}: no attention (plain encoder-decoder)",
            ha="center",
            va="center",
            fontsize=9,
        )
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
    return path
