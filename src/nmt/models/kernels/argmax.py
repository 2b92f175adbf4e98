"""The argmax of a batch of logits rows, in two stages on a CPU."""

from __future__ import annotations

import torch
from torch import Tensor


def two_stage_argmax(logits: Tensor, block: int = 64) -> Tensor:
    """logits: (N, V) -> (N,) the index of each row's first largest value, as
    ``logits.argmax(-1)``: the first block of ``block`` columns holding the row's
    maximum, then the first maximum in that block. PyTorch's CPU argmax over long rows is
    several times slower than these two reductions; for fewer than 8 rows, or rows of one
    block, it is used as it is."""
    n, v = logits.shape
    if n < 8 or v <= block:
        return logits.argmax(dim=-1)
    whole = v // block * block
    maxima = logits[:, :whole].view(n, -1, block).amax(-1)
    if whole < v:  # the last columns are one more block
        maxima = torch.cat([maxima, logits[:, whole:].amax(-1, keepdim=True)], dim=1)
    first = maxima.argmax(dim=-1) * block  # (N,) the first column of the block
    # a short last block repeats its last column: a later copy never comes first
    cols = (first.unsqueeze(1) + torch.arange(block, device=logits.device)).clamp_(max=v - 1)
    return first + logits.gather(1, cols).argmax(dim=-1)
