"""The Transformer encoder-decoder (``arch: transformer``; Vaswani et al. 2017), pre-norm:
each sublayer reads a layer-normalised copy of its input and adds its output back, with a
final layer norm on both stacks (as in Joey NMT, OpenNMT-py and fairseq's defaults since
Wang et al. 2019), which trains stably without a long warm-up.

Built from ``torch.nn`` layers: the encoder is ``nn.TransformerEncoder``; the decoder's
layers use ``nn.MultiheadAttention`` directly, so that a search step can attend over the
previous positions' cached inputs instead of recomputing the whole prefix. The decoder
state is that cache: per layer, the normalised inputs of its self-attention at every
position so far (B, t, D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nmt.config.model import TransformerParams
from nmt.models.base import Seq2SeqModel
from nmt.models.encoder import length_mask
from nmt.specials import PAD_ID

TransformerState = tuple[Tensor, ...]


@dataclass(frozen=True)
class TransformerMemory:
    """memory: (B, S, D) the encoder's output; mask: (B, S) bool, True on real tokens."""

    memory: Tensor
    mask: Tensor

    def index_select(self, index: Tensor) -> TransformerMemory:
        return TransformerMemory(
            self.memory.index_select(0, index), self.mask.index_select(0, index)
        )


def sinusoids(length: int, dim: int, offset: int = 0) -> Tensor:
    """(length, dim) fixed position encodings of positions ``offset`` onwards: sines in the
    first half of each row and cosines in the second, of geometrically spaced
    wavelengths."""
    half = dim // 2
    freq = torch.exp(
        torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / max(half - 1, 1))
    )
    pos = torch.arange(offset, offset + length, dtype=torch.float32)[:, None] * freq[None, :]
    table = torch.cat([pos.sin(), pos.cos()], dim=1)
    if dim % 2:
        table = torch.cat([table, table.new_zeros(length, 1)], dim=1)
    return table


class DecoderLayer(nn.Module):
    """Masked self-attention, attention over the memory, feed-forward; each pre-norm."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_norm = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, memory: Tensor, pad: Tensor, causal: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """x: (B, T, D) all positions; pad: (B, S) True on padding; causal: (T, T) True
        above the diagonal -> (B, T, D) and the cross-attention weights (B, T, S)."""
        h = self.self_norm(x)
        x = x + self.dropout(self.self_attn(h, h, h, attn_mask=causal, need_weights=False)[0])
        return self._cross_and_ff(x, memory, pad, need_weights)

    def step(
        self, x: Tensor, cache: Tensor, memory: Tensor, pad: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """x: (B, 1, D) the newest position; cache: (B, t, D) the self-attention's inputs
        at the earlier positions -> output (B, 1, D), the cache with this position, weights."""
        h = self.self_norm(x)
        keys = torch.cat([cache, h], dim=1)
        x = x + self.dropout(self.self_attn(h, keys, keys, need_weights=False)[0])
        out, weights = self._cross_and_ff(x, memory, pad, need_weights)
        return out, keys, weights

    def _cross_and_ff(
        self, x: Tensor, memory: Tensor, pad: Tensor, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        h = self.cross_norm(x)
        context, weights = self.cross_attn(
            h, memory, memory, key_padding_mask=pad, need_weights=need_weights
        )
        x = x + self.dropout(context)
        return x + self.dropout(self.ff(self.ff_norm(x))), weights


class Transformer(Seq2SeqModel):
    """Embeddings (scaled by sqrt(D)) plus positions, the encoder and decoder stacks, and
    the output layer (tied to the target embeddings by default). The attention weights a
    step returns are the last decoder layer's over the source, averaged over heads."""

    def __init__(self, params: TransformerParams, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.params = params
        dim = params.model_dim
        self.src_embedding = nn.Embedding(src_vocab_size, dim, padding_idx=PAD_ID)
        if params.share_embeddings:
            if src_vocab_size != tgt_vocab_size:
                raise ValueError(
                    f"share_embeddings needs one vocabulary for both sides, got "
                    f"{src_vocab_size} source and {tgt_vocab_size} target tokens"
                )
            self.tgt_embedding = self.src_embedding
        else:
            self.tgt_embedding = nn.Embedding(tgt_vocab_size, dim, padding_idx=PAD_ID)
        for emb in {id(e): e for e in (self.src_embedding, self.tgt_embedding)}.values():
            nn.init.normal_(emb.weight, std=dim**-0.5)
            with torch.no_grad():
                emb.weight[PAD_ID].zero_()
        self.positions = (
            nn.Embedding(params.max_positions, dim) if params.positions == "learned" else None
        )
        self.dropout = nn.Dropout(params.dropout)
        layer = nn.TransformerEncoderLayer(
            dim, params.heads, params.ff_dim, params.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, params.encoder_layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False
        )
        self.layers = nn.ModuleList(
            DecoderLayer(dim, params.heads, params.ff_dim, params.dropout)
            for _ in range(params.decoder_layers)
        )
        self.final_norm = nn.LayerNorm(dim)
        self.generator = nn.Linear(dim, tgt_vocab_size, bias=False)
        if params.tie_embeddings:
            self.generator.weight = self.tgt_embedding.weight

    @property
    def has_attention(self) -> bool:
        return True

    def _embed(self, embedding: nn.Embedding, ids: Tensor, offset: int = 0) -> Tensor:
        """ids: (B, T) at positions offset.. -> (B, T, D)."""
        x = embedding(ids) * math.sqrt(self.params.model_dim)
        t = ids.size(1)
        if self.positions is None:
            pos = sinusoids(t, self.params.model_dim, offset).to(x.device, x.dtype)
        else:  # positions past the table share its last row
            idx = torch.arange(offset, offset + t, device=ids.device)
            pos = self.positions(idx.clamp_(max=self.params.max_positions - 1))
        return self.dropout(x + pos)

    def encode(self, src: Tensor, src_lengths: Tensor) -> TransformerMemory:
        mask = length_mask(src_lengths.to(src.device), src.size(1))
        x = self._embed(self.src_embedding, src)
        memory = self.encoder(x, src_key_padding_mask=~mask)
        return TransformerMemory(memory=memory, mask=mask)

    def init_state(self, memory: TransformerMemory) -> TransformerState:
        b, dim = memory.memory.size(0), self.params.model_dim
        empty = memory.memory.new_zeros(b, 0, dim)
        return tuple(empty for _ in self.layers)

    def decode_step(
        self, prev: Tensor, state: TransformerState, memory: TransformerMemory
    ) -> tuple[Tensor, TransformerState, Tensor | None]:
        x = self._embed(self.tgt_embedding, prev.unsqueeze(1), offset=state[0].size(1))
        pad, last = ~memory.mask, len(self.layers) - 1
        caches, weights = [], None
        for i, layer in enumerate(self.layers):
            x, cache, weights = layer.step(x, state[i], memory.memory, pad, need_weights=i == last)
            caches.append(cache)
        logits = self.generator(self.final_norm(x)).squeeze(1)
        assert weights is not None
        return logits, tuple(caches), weights.squeeze(1)

    def reorder_state(self, state: TransformerState, index: Tensor) -> TransformerState:
        return tuple(cache.index_select(0, index) for cache in state)

    def features(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        memory = self.encode(src, src_lengths)
        x = self._embed(self.tgt_embedding, tgt_in)
        t = tgt_in.size(1)
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).triu_(1)
        pad = ~memory.mask
        for layer in self.layers:
            x, _ = layer(x, memory.memory, pad, causal)
        return self.final_norm(x)

    def logits(self, features: Tensor) -> Tensor:
        return self.generator(features)
