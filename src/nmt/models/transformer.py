"""The Transformer encoder-decoder (``arch: transformer``; Vaswani et al. 2017), pre-norm:
each sublayer reads a layer-normalised copy of its input and adds its output back, with a
final layer norm on both stacks (as in Joey NMT, OpenNMT-py and fairseq's defaults since
Wang et al. 2019), which trains stably without a long warm-up.

Built from ``torch.nn`` layers: the encoder is ``nn.TransformerEncoder``; the decoder's
layers use ``nn.MultiheadAttention``. Training runs the modules as they are. A search step
reuses their weights with a key/value cache, as every toolkit's incremental decoding does:
the decoder state is, per layer, the self-attention's keys and values at every position so
far (B, H, t, d), so a step projects only the newest position; the keys and values of the
attention over the source are projected once per sentence, in :meth:`Transformer.encode`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config.model import TransformerParams
from nmt.models.base import Seq2SeqModel
from nmt.models.encoder import length_mask
from nmt.specials import PAD_ID

# Per decoder layer, its self-attention's keys then values: 2 * layers tensors (B, H, t, d).
TransformerState = tuple[Tensor, ...]


@dataclass(frozen=True)
class TransformerMemory:
    """memory: (B, S, D) the encoder's output; mask: (B, S) bool, True on real tokens;
    cross: per decoder layer, the keys and values (B, H, S, d) its attention over the
    source reads (empty when the memory is only for the teacher-forced unroll)."""

    memory: Tensor
    mask: Tensor
    cross: tuple[tuple[Tensor, Tensor], ...] = ()

    def index_select(self, index: Tensor) -> TransformerMemory:
        return TransformerMemory(
            self.memory.index_select(0, index),
            self.mask.index_select(0, index),
            tuple((k.index_select(0, index), v.index_select(0, index)) for k, v in self.cross),
        )


def _heads(x: Tensor, heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, D / H)."""
    b, t, _ = x.shape
    return x.view(b, t, heads, -1).transpose(1, 2)


def _projections(attn: nn.MultiheadAttention) -> tuple[Tensor, ...]:
    """The query, key and value weights and biases of ``attn`` (packed in its in_proj)."""
    w, bias = attn.in_proj_weight.chunk(3), attn.in_proj_bias.chunk(3)
    return w[0], w[1], w[2], bias[0], bias[1], bias[2]


def _attend(
    attn: nn.MultiheadAttention,
    q: Tensor,
    keys: Tensor,
    values: Tensor,
    mask: Tensor | None = None,
    need_weights: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """What ``attn`` computes for one query position, from projected inputs.

    q: (B, H, 1, d); keys, values: (B, H, t, d); mask: (B, 1, 1, t) True where a key may
    be attended, or None (all) -> the output (B, 1, D) and, with ``need_weights``, the
    weights averaged over heads (B, 1, t), as ``nn.MultiheadAttention`` returns them.
    """
    p = attn.dropout if attn.training else 0.0
    weights = None
    if need_weights:
        scores = q @ keys.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        probs = F.dropout(scores.softmax(dim=-1), p, attn.training)
        context, weights = probs @ values, probs.mean(dim=1)
    else:
        context = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=p)
    b, _, t, _ = context.shape
    return attn.out_proj(context.transpose(1, 2).reshape(b, t, -1)), weights


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

    def cross_keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """memory: (B, S, D) -> the keys and values (B, H, S, d) of the attention over it."""
        _, wk, wv, _, bk, bv = _projections(self.cross_attn)
        heads = self.cross_attn.num_heads
        return _heads(F.linear(memory, wk, bk), heads), _heads(F.linear(memory, wv, bv), heads)

    def step(
        self,
        x: Tensor,
        keys: Tensor,
        values: Tensor,
        cross: tuple[Tensor, Tensor],
        mask: Tensor,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """:meth:`forward` at the newest position only.

        x: (B, 1, D); keys, values: (B, H, t, d) the self-attention's at the earlier
        positions; cross: :meth:`cross_keys_values` of the memory; mask: (B, 1, 1, S) True
        on real source tokens -> the output (B, 1, D), the keys and values with this
        position, and the weights over the source (B, 1, S) with ``need_weights``.
        """
        wq, wk, wv, bq, bk, bv = _projections(self.self_attn)
        heads = self.self_attn.num_heads
        h = self.self_norm(x)
        keys = torch.cat([keys, _heads(F.linear(h, wk, bk), heads)], dim=2)
        values = torch.cat([values, _heads(F.linear(h, wv, bv), heads)], dim=2)
        q = _heads(F.linear(h, wq, bq), heads)
        x = x + self.dropout(_attend(self.self_attn, q, keys, values)[0])
        wq, _, _, bq, _, _ = _projections(self.cross_attn)
        q = _heads(F.linear(self.cross_norm(x), wq, bq), heads)
        context, weights = _attend(self.cross_attn, q, *cross, mask, need_weights)
        x = x + self.dropout(context)
        return x + self.dropout(self.ff(self.ff_norm(x))), keys, values, weights

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

    def _encoder(self, src: Tensor, src_lengths: Tensor) -> TransformerMemory:
        """The encoder's output, without the decoder's projections of it."""
        mask = length_mask(src_lengths.to(src.device), src.size(1))
        x = self._embed(self.src_embedding, src)
        memory = self.encoder(x, src_key_padding_mask=~mask)
        return TransformerMemory(memory=memory, mask=mask)

    def encode(self, src: Tensor, src_lengths: Tensor) -> TransformerMemory:
        out = self._encoder(src, src_lengths)
        cross = tuple(layer.cross_keys_values(out.memory) for layer in self.layers)
        return TransformerMemory(memory=out.memory, mask=out.mask, cross=cross)

    def init_state(self, memory: TransformerMemory) -> TransformerState:
        b, heads = memory.memory.size(0), self.params.heads
        empty = memory.memory.new_zeros(b, heads, 0, self.params.model_dim // heads)
        return tuple(empty for _ in range(2 * len(self.layers)))

    def decode_step(
        self, prev: Tensor, state: TransformerState, memory: TransformerMemory
    ) -> tuple[Tensor, TransformerState, Tensor | None]:
        x = self._embed(self.tgt_embedding, prev.unsqueeze(1), offset=state[0].size(2))
        mask, last = memory.mask[:, None, None, :], len(self.layers) - 1
        new_state: list[Tensor] = []
        weights = None
        for i, layer in enumerate(self.layers):
            x, keys, values, weights = layer.step(
                x, state[2 * i], state[2 * i + 1], memory.cross[i], mask, need_weights=i == last
            )
            new_state += [keys, values]
        logits = self.generator(self.final_norm(x)).squeeze(1)
        assert weights is not None
        return logits, tuple(new_state), weights.squeeze(1)

    def reorder_state(self, state: TransformerState, index: Tensor) -> TransformerState:
        return tuple(cache.index_select(0, index) for cache in state)

    def features(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        memory = self._encoder(src, src_lengths)
        x = self._embed(self.tgt_embedding, tgt_in)
        t = tgt_in.size(1)
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).triu_(1)
        pad = ~memory.mask
        for layer in self.layers:
            x, _ = layer(x, memory.memory, pad, causal)
        return self.final_norm(x)

    def logits(self, features: Tensor) -> Tensor:
        return self.generator(features)
