"""The contract every architecture implements.

Search, training, validation, ``nmt translate``, heatmaps and evaluation see a model only
through :class:`Seq2SeqModel`: encode a padded source batch into a *memory*, make the
decoder's initial *state* from it, advance the state by one target token, reorder rows of
a state or a memory, and, for training, the teacher-forced unroll over a whole reference.
What a memory and a state hold is the architecture's business; outside ``nmt.models``
they are opaque values passed back to the model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

import torch
from torch import Tensor, nn


class Memory(Protocol):
    """What the decoder attends to, for a batch of B sources."""

    def index_select(self, index: Tensor) -> Memory:
        """The rows ``index`` (B',) of the batch, in that order."""
        ...


State = Any  # a tensor or a tuple of tensors, with the batch along a known dimension


class Seq2SeqModel(nn.Module, ABC):
    """An encoder-decoder over token ids, with the special ids of :mod:`nmt.specials`.

    Shapes: B sentences, S source positions, T target positions, V target vocabulary.
    """

    #: The architecture's params (one of :data:`nmt.config.model.ModelParams`).
    params: Any

    @property
    @abstractmethod
    def has_attention(self) -> bool:
        """Whether :meth:`decode_step` returns attention weights over the source."""

    @abstractmethod
    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory:
        """src: (B, S) ids, padded; src_lengths: (B,), each >= 1 -> the memory."""

    @abstractmethod
    def init_state(self, memory: Memory) -> State:
        """The decoder state before the first target token (``<sos>`` is fed first)."""

    @abstractmethod
    def decode_step(
        self, prev: Tensor, state: State, memory: Memory
    ) -> tuple[Tensor, State, Tensor | None]:
        """prev: (B,) previous tokens -> logits (B, V), the new state, and the attention
        weights over the source (B, S) or None."""

    @abstractmethod
    def reorder_state(self, state: State, index: Tensor) -> State:
        """The rows ``index`` (B',) of a state, in that order (beam search, compaction)."""

    def reorder(self, state: State, memory: Memory, index: Tensor) -> tuple[State, Memory]:
        """The rows ``index`` of a state and of its memory."""
        return self.reorder_state(state, index), memory.index_select(index)

    @abstractmethod
    def features(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """The decoder's output features (B, T, F) under full teacher forcing, for inputs
        ``tgt_in`` (B, T) (``<sos>`` + the reference); :meth:`logits` maps them.

        Training selects the features of real target positions before :meth:`logits`, so
        the output layer (the largest matmul) never runs over padding. The same values,
        position by position, as stepping :meth:`decode_step` through ``tgt_in``.
        """

    @abstractmethod
    def logits(self, features: Tensor) -> Tensor:
        """features: (..., F) -> logits (..., V)."""

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor,
        tgt_in: Tensor,
        teacher_forcing: float = 1.0,
        tf_mode: str = "token",
        feed_reference: Tensor | None = None,
    ) -> Tensor:
        """Logits (B, T, V) for decoder inputs tgt_in: (B, T).

        With ``teacher_forcing`` < 1, each input after the first is the reference token
        with that probability, else the model's own previous argmax (scheduled sampling,
        Bengio et al. 2015), drawn per token or per sequence (``tf_mode``; see
        :func:`reference_mask`), or as given by ``feed_reference`` (B, T) bool. With 1.0
        the reference is fed throughout: :meth:`features`, the fast path.
        """
        if teacher_forcing >= 1.0 and feed_reference is None:
            return self.logits(self.features(src, src_lengths, tgt_in))
        b, t_len = tgt_in.shape
        use_ref = feed_reference
        if use_ref is None:
            use_ref = reference_mask(b, t_len, teacher_forcing, tf_mode, tgt_in.device)
        memory = self.encode(src, src_lengths)
        state = self.init_state(memory)
        prev = tgt_in[:, 0]
        out = []
        for t in range(t_len):
            logits, state, _ = self.decode_step(prev, state, memory)
            out.append(logits)
            if t + 1 < t_len:
                guess = logits.detach().argmax(dim=-1)
                prev = torch.where(use_ref[:, t + 1], tgt_in[:, t + 1], guess)
        return torch.stack(out, dim=1)


def reference_mask(
    b: int, t_len: int, ratio: float, mode: str, device: torch.device | str = "cpu"
) -> Tensor:
    """Where decoding feeds the reference token rather than the model's own guess:
    (B, T) bool, True with probability ``ratio``, drawn per token (``mode`` ``token``) or
    once per sentence (``sequence``). Column 0 (``<sos>``) is always fed."""
    if mode == "sequence":
        use_ref = (torch.rand(b, 1, device=device) < ratio).expand(b, t_len)
    elif mode == "token":
        use_ref = torch.rand(b, t_len, device=device) < ratio
    else:
        raise ValueError(f"unknown teacher-forcing mode {mode!r}")
    return use_ref


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, each shared tensor counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class SearchStep:
    """What greedy and beam search run: :meth:`start` encodes a batch, each call advances
    it by one token. This is the plain path, the model's own methods; faster ones for some
    models and devices come from :func:`nmt.models.kernels.search_step`. The model must be
    in eval mode; calls run without gradients."""

    def __init__(self, model: Seq2SeqModel) -> None:
        self.model = model

    def start(self, src: Tensor, src_lengths: Tensor) -> tuple[Memory, State]:
        """src: (B, S) ids; src_lengths: (B,), each >= 1 -> what :meth:`__call__` takes."""
        memory = self.model.encode(src, src_lengths)
        return memory, self.model.init_state(memory)

    def __call__(
        self, prev: Tensor, state: State, memory: Memory
    ) -> tuple[Tensor, State, Tensor | None]:
        """prev: (B,) previous tokens -> logits (B, V), the new state, the attention
        weights (B, S) or None (see :meth:`Seq2SeqModel.decode_step`)."""
        return self.model.decode_step(prev, state, memory)
