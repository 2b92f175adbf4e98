"""Inference-only linear maps with the weight packed once for oneDNN.

``torch.addmm`` on a CPU takes the weight as it is stored and goes through the BLAS
library (MKL here), whose kernels arrange the weight for themselves within each call.
oneDNN can take the weight arranged once, ahead of time, in its own blocked layout,
which makes batched products several times faster (docs/speed.md has the figures). For
one row BLAS has the faster path in fp32 while the weight is small, so a single row stays
with it unless the weight is large (the output layer).

Search makes these from the model's parameters (:mod:`nmt.models.kernels.folded`); they
are copies: make new ones after the parameters change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["PackedLinear"]


class PackedLinear:
    """``x @ weight.T + bias`` without gradients, with ``weight`` packed once for oneDNN
    on a CPU (falls back to :func:`torch.nn.functional.linear` elsewhere, or where oneDNN
    is missing).

    weight: (N, K) fp32 or bf16; bias: (N,) or None. Calls with fewer than ``min_rows``
    rows use ``F.linear``; by default 1 for a weight of ``ONE_ROW_ELEMENTS`` or more, else
    2. The packed product sums in a different order than BLAS, so the two can differ in
    the last bits.
    """

    # From this size on, the packed product wins for one row too (docs/speed.md).
    ONE_ROW_ELEMENTS = 1 << 19

    def __init__(
        self, weight: Tensor, bias: Tensor | None = None, min_rows: int | None = None
    ) -> None:
        self.weight = weight.detach().clone()  # copies: the parameters may change in place
        self.bias = None if bias is None else bias.detach().to(weight.dtype, copy=True)
        if min_rows is None:
            min_rows = 1 if weight.numel() >= self.ONE_ROW_ELEMENTS else 2
        self.min_rows = min_rows
        self.packed = _pack(self.weight)

    def __call__(self, x: Tensor) -> Tensor:
        """x: (B, K) -> (B, N)."""
        if self.packed is not None and x.size(0) >= self.min_rows:
            try:
                return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
            except (RuntimeError, AttributeError):  # a private op: gone or changed in a build
                self.packed = None
        return F.linear(x, self.weight, self.bias)


def _pack(weight: Tensor) -> Tensor | None:
    """oneDNN's blocked copy of ``weight`` (N, K), or None where it cannot be used."""
    if (
        weight.device.type != "cpu"
        or weight.dtype not in (torch.float32, torch.bfloat16)
        or not torch.backends.mkldnn.is_available()
        or torch.is_autocast_enabled("cpu")
    ):
        return None
    try:
        # the batch size is only a hint for the layout; any number of rows works
        return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), 128)
    except (RuntimeError, AttributeError):  # a build without this op
        return None
