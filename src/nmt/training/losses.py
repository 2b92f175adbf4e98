"""The training loss, and which target steps it covers."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from nmt.specials import EOS_ID, PAD_ID


def masked_cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Summed cross-entropy over real tokens (padding ignored), computed in fp32.

    logits: (B, T, V) or (N, V); target: (B, T) or (N,), ``PAD_ID`` where there is no
    token.
    Returns a scalar: divide by the number of real tokens for the mean.
    """
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        target.reshape(-1),
        ignore_index=PAD_ID,
        reduction="sum",
        label_smoothing=label_smoothing,
    )


def stop_at_predicted_eos(logits: Tensor, target: Tensor, rows: Tensor) -> Tensor:
    """logits: (B, T, V); target: (B, T); rows: (B,) bool -> the target with the steps
    after each chosen row's first predicted ``<eos>`` set to ``PAD_ID`` (no loss there)."""
    is_eos = logits.argmax(dim=-1) == EOS_ID  # (B, T)
    # a step after the first predicted <eos>: an earlier step (not this one) predicts it
    after = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
    return target.masked_fill(after & rows[:, None], PAD_ID)
