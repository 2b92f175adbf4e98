"""The recurrent encoder: embedding -> (bi)directional GRU/LSTM/RNN over packed sequences."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}

# A recurrent state: (layers, B, H) for GRU/RNN; an (h, c) pair of those for LSTM.
RNNState = Tensor | tuple[Tensor, Tensor]


@dataclass(frozen=True)
class EncoderOutput:
    """What the decoder attends to.

    memory: (B, S, M) encoder states (M = hidden * directions); padding rows are zero.
    mask:   (B, S) bool, True on real source tokens.
    final:  (B, M) the top layer's last state (both directions concatenated).
    state:  the recurrent net's final state, (L * D, B, H) or an (h, c) pair of those for
            an LSTM, or None (an encoder that does not keep it).
    keys:   (B, S, A) the attention's keys (its precomputation over ``memory``), or None.
    values: (B, S, 3H) the memory's share of the input gates of a GRU decoder fed the
            context (``memory @ W_ic^T``; see :mod:`nmt.models.gru_attention`), or None.
    """

    memory: Tensor
    mask: Tensor
    final: Tensor
    keys: Tensor | None = None
    values: Tensor | None = None
    state: RNNState | None = None

    def index_select(self, index: Tensor) -> EncoderOutput:
        """Reorder/expand the batch: index (B',) of rows to take (beam search)."""
        state = self.state
        if state is not None:
            state = (
                tuple(s.index_select(1, index) for s in state)  # type: ignore[assignment]
                if isinstance(state, tuple)
                else state.index_select(1, index)
            )
        return EncoderOutput(
            memory=self.memory.index_select(0, index),
            mask=self.mask.index_select(0, index),
            final=self.final.index_select(0, index),
            keys=_take(self.keys, index),
            values=_take(self.values, index),
            state=state,
        )

    def with_keys(self, keys: Tensor | None, values: Tensor | None = None) -> EncoderOutput:
        return replace(self, keys=keys, values=values)


def length_mask(lengths: Tensor, width: int) -> Tensor:
    """lengths: (B,) -> (B, width) bool, True on the first ``lengths[i]`` positions."""
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


def _take(x: Tensor | None, index: Tensor) -> Tensor | None:
    return None if x is None else x.index_select(0, index)


class OneHot(nn.Module):
    """Fixed one-hot vectors as token inputs: ids (...) -> (..., vocab_size), no weights."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.num_embeddings = self.embedding_dim = vocab_size

    def forward(self, ids: Tensor) -> Tensor:
        return F.one_hot(ids, self.num_embeddings).to(torch.get_default_dtype())


def token_inputs(kind: str, vocab_size: int, embedding_dim: int, pad_id: int) -> nn.Module:
    """The input layer of tokens: a learned embedding, or fixed one-hot vectors (``kind``
    ``embedding`` | ``onehot``); its width is the module's ``embedding_dim``."""
    if kind == "onehot":
        return OneHot(vocab_size)
    return nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)


class Encoder(nn.Module):
    """Embeds a padded source batch and runs a multi-layer recurrent net over it.

    Sequences are packed, so padding costs no computation and never changes the states
    of real tokens.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_dim: int,
        layers: int,
        bidirectional: bool,
        dropout: float,
        cell: str,
        pad_id: int = 0,
        inputs: str = "embedding",
        input_dropout: float | None = None,
    ) -> None:
        """``dropout`` is between layers, and on the embeddings unless ``input_dropout``
        says otherwise."""
        super().__init__()
        self.embedding = token_inputs(inputs, vocab_size, embedding_dim, pad_id)
        self.dropout = nn.Dropout(dropout if input_dropout is None else input_dropout)
        self.rnn = RNN_CLASSES[cell](
            self.embedding.embedding_dim,
            hidden_dim,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.layers = layers
        self.directions = 2 if bidirectional else 1
        self.output_dim = hidden_dim * self.directions

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        """src: (B, S) token ids; lengths: (B,) real lengths (>= 1), on any device."""
        emb = self.dropout(self.embedding(src))  # (B, S, E)
        cpu_lengths = lengths.cpu()
        if bool((cpu_lengths == src.size(1)).all()):
            # No padding (common with length-bucketed batches): packing would change nothing.
            memory, hidden = self.rnn(emb)
        else:
            packed = pack_padded_sequence(emb, cpu_lengths, batch_first=True, enforce_sorted=False)
            out, hidden = self.rnn(packed)
            memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden  # (L*D, B, H)
        top = h_n.view(self.layers, self.directions, *h_n.shape[1:])[-1]  # (D, B, H)
        final = torch.cat(list(top), dim=-1)  # (B, D*H)
        mask = length_mask(lengths.to(src.device), src.size(1))
        return EncoderOutput(memory=memory, mask=mask, final=final, state=hidden)
