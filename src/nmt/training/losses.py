"""The training loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from nmt.specials import PAD_ID


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
