"""CPU fast paths, chosen in one place: :func:`choose`.

Each kernel computes what a plain path of the models computes, with an equality test
against it (``tests/test_kernels_*.py``):

- ``bahdanau_gru``: the teacher-forced unroll of a one-layer GRU decoder with additive
  attention, one autograd function with a written-out backward (plain path:
  :meth:`~nmt.models.decoder.RNNDecoder.unroll`, stepping with autograd);
- ``folded``: search steps of recurrent models (plain path:
  :class:`~nmt.models.base.SearchStep`), the folded step of that decoder and the table
  encoder, with products against weights packed for oneDNN (``packed``);
- ``argmax``: the argmax of logits rows in two stages (plain path: ``Tensor.argmax``);
- ``activations``: tanh as a sigmoid, inside the kernels above.

Model definitions use plain ``torch`` and never pick a kernel themselves. The plain path
is the reference, works for every architecture, and is what CUDA runs: the kernels were
written for and measured on CPUs, and no GPU measurement says they would gain there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from nmt.models.base import SearchStep, Seq2SeqModel

if TYPE_CHECKING:
    from nmt.models.decoder import RNNDecoder
    from nmt.models.encoder import EncoderOutput, RNNState

__all__ = ["Kernels", "argmax", "choose", "search_step"]


@dataclass(frozen=True)
class Kernels:
    """The fast paths for one model on its device (None / False: the plain path).

    unroll: the teacher-forced decoder unroll of training, ``(decoder, emb, state, enc)
        -> features``; folded_step: search with :class:`~.folded.FoldedStep`;
        packed_step: search with :class:`~.folded.PackedStep`; two_stage_argmax: search's
        argmax by :func:`~.argmax.two_stage_argmax`.
    """

    unroll: Callable[[RNNDecoder, Tensor, RNNState, EncoderOutput], Tensor] | None = None
    folded_step: bool = False
    packed_step: bool = False
    two_stage_argmax: bool = False


def choose(model: Seq2SeqModel) -> Kernels:
    """The kernels that apply to ``model`` on the device its parameters are on, under the
    autocast state now in force: the only place that decides."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        return Kernels()
    if getattr(model.params, "arch", None) != "rnn":
        return Kernels(two_stage_argmax=True)
    from nmt.models.kernels import bahdanau_gru

    decoder = model.decoder  # type: ignore[attr-defined]
    params = model.params
    written = bool(decoder.gru_attention)
    # the folded step encodes with the encoder's own weights and embedding tables
    foldable = (
        written
        and params.readout == "tanh"
        and params.inputs == "embedding"
        and params.source_markers == "none"
        and params.bridge != "identity"
    )
    # the folded step and packed products are fp32: under autocast the plain step runs
    plain_precision = not torch.is_autocast_enabled("cpu")
    return Kernels(
        unroll=bahdanau_gru.unroll if written else None,
        folded_step=foldable and plain_precision,
        packed_step=plain_precision,
        two_stage_argmax=True,
    )


def search_step(model: Seq2SeqModel) -> SearchStep:
    """The search step for ``model`` (in eval mode) as :func:`choose` decides. A fast step
    copies what it needs from the parameters: make a new one after they change."""
    kernels = choose(model)
    if kernels.folded_step or kernels.packed_step:
        from nmt.models.kernels.folded import FoldedStep, PackedStep

        return FoldedStep(model) if kernels.folded_step else PackedStep(model)  # type: ignore[arg-type]
    return SearchStep(model)


def argmax(model: Seq2SeqModel) -> Callable[[Tensor], Tensor]:
    """The argmax over the last dimension of (N, V) logits that search uses for ``model``."""
    if choose(model).two_stage_argmax:
        from nmt.models.kernels.argmax import two_stage_argmax

        return two_stage_argmax
    return lambda logits: logits.argmax(dim=-1)
