"""Attention scores over the encoder memory, with padding masked out.

Each attention splits its work in two: ``precompute`` runs once per batch over the memory
(the key projection), ``forward`` runs per query. Queries may be one step (B, H) or all
steps at once (B, T, H), which lets Luong attention run over a whole target in one call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def padding_bias(mask: Tensor) -> Tensor:
    """mask: (B, S) bool, True on real tokens -> (B, S) fp32, 0 there and -inf on padding:
    added to attention scores, it masks them."""
    bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    return bias.masked_fill_(~mask, float("-inf"))


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """scores: (B, T, S); mask: (B, S) bool, True on real tokens -> weights (B, T, S)."""
    scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1)


class Attention(nn.Module):
    """Base: maps queries (B, T, H) and memory (B, S, M) to context (B, T, M), weights."""

    def precompute(self, memory: Tensor) -> Tensor:
        """memory: (B, S, M) -> keys in the form ``score`` wants."""
        raise NotImplementedError

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query: (B, T, H); keys: from precompute -> scores (B, T, S)."""
        raise NotImplementedError

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """query: (B, T, H) or (B, H); memory: (B, S, M); mask: (B, S).

        Returns context (B, T, M) and weights (B, T, S) (without T for a (B, H) query).
        """
        single = query.dim() == 2
        if single:
            query = query.unsqueeze(1)
        weights = masked_softmax(self.score(query, keys), mask)
        context = torch.bmm(weights.to(memory.dtype), memory)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights


class BahdanauAttention(Attention):
    """Additive attention (Bahdanau et al., 2015): v^T tanh(W_q q + W_k h); without ``v``
    (``use_v=False``) the sum of tanh(W_q q + W_k h) over its units."""

    def __init__(self, query_dim: int, memory_dim: int, attn_dim: int, use_v: bool = True) -> None:
        super().__init__()
        self.key_proj = nn.Linear(memory_dim, attn_dim, bias=False)
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False) if use_v else None

    def precompute(self, memory: Tensor) -> Tensor:
        return self.key_proj(memory)  # (B, S, A), once per batch

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        q = self.query_proj(query)  # (B, T, A)
        # (B, T, 1, A) + (B, 1, S, A) -> (B, T, S)
        energy = torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))
        if self.v is None:
            return energy.sum(dim=-1)
        return self.v(energy).squeeze(-1)


class LocationAttention(nn.Module):
    """The PyTorch seq2seq tutorial's attention: weights over a fixed number of source
    *slots* come from the embedded input and the previous state alone,
    ``softmax(W_a [e; h])``, and weigh the memory padded with zeros (or cut) to that many
    slots; ``W_c [e; context]`` is the recurrent net's input. Padding is not masked: its
    slots hold zeros, as in the tutorial.
    """

    def __init__(self, input_dim: int, query_dim: int, memory_dim: int, slots: int, out_dim: int):
        super().__init__()
        self.slots = slots
        self.attn = nn.Linear(input_dim + query_dim, slots)
        self.combine = nn.Linear(input_dim + memory_dim, out_dim)

    def precompute(self, memory: Tensor) -> Tensor:
        """memory: (B, S, M) -> (B, slots, M): zero rows added, or positions cut."""
        s = memory.size(1)
        if s >= self.slots:
            return memory[:, : self.slots]
        return F.pad(memory, (0, 0, 0, self.slots - s))

    def forward(self, emb: Tensor, query: Tensor, slotted: Tensor) -> tuple[Tensor, Tensor]:
        """emb: (B, E) the embedded input; query: (B, H) the previous state; slotted:
        from :meth:`precompute` -> the recurrent input (B, out_dim), weights (B, slots)."""
        weights = torch.softmax(self.attn(torch.cat([emb, query], dim=-1)), dim=-1)
        context = torch.bmm(weights.unsqueeze(1).to(slotted.dtype), slotted).squeeze(1)
        return self.combine(torch.cat([emb, context], dim=-1)), weights


class LuongAttention(Attention):
    """Multiplicative attention (Luong et al., 2015): ``dot`` q.h or ``general`` q.W h.

    For ``dot`` with a memory wider than the query (a bidirectional encoder) the memory
    is first projected to the query size, so the score is still a plain dot product.
    """

    def __init__(self, query_dim: int, memory_dim: int, kind: str) -> None:
        super().__init__()
        if kind not in ("dot", "general"):
            raise ValueError(f"unknown Luong score {kind!r}")
        needs_proj = kind == "general" or memory_dim != query_dim
        self.key_proj = nn.Linear(memory_dim, query_dim, bias=False) if needs_proj else None

    def precompute(self, memory: Tensor) -> Tensor:
        return memory if self.key_proj is None else self.key_proj(memory)  # (B, S, H)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2))  # (B, T, S)


def build_attention(kind: str, query_dim: int, memory_dim: int, use_v: bool = True) -> Attention:
    """The attention that scores queries (``query_dim`` wide) against the memory: additive
    (``bahdanau``, ``additive``; with ``v`` or without) or multiplicative."""
    if kind in ("bahdanau", "additive"):
        return BahdanauAttention(query_dim, memory_dim, query_dim, use_v)
    return LuongAttention(query_dim, memory_dim, kind)
