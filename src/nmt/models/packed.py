"""Inference-only linear maps with the weight packed once for oneDNN.

``torch.addmm`` on a CPU takes the weight as it is stored and goes through the BLAS
library (MKL here), whose kernels arrange the weight for themselves within each call.
oneDNN can take the weight arranged once, ahead of time, in its own blocked layout.
Measured on a 2-core AMD EPYC (Zen 5), fp32, 128 rows x 256 -> 1,024: ``addmm`` 0.56 ms,
the packed product 0.19 ms; 1,920 rows x 512 -> 1,280: 14.1 against 5.7 ms. For one row
BLAS has the faster path (13-15 against 19-24 us), so a single row stays with it; from
two rows up (4 rows: 93 against 20 us) the packed product is faster. For bf16 the packed
product also wins at one row (8,000 x 256: 109 against 50 us).

Search makes these from the model's parameters (:class:`~nmt.models.FoldedStep`,
:func:`nmt.inference.search.prepare`); they are copies: make new ones after the parameters
change.
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
    rows use ``F.linear``. The packed product sums in a different order than BLAS, so
    the two can differ in the last bits.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None = None, min_rows: int = 2) -> None:
        self.weight = weight.detach().clone()  # copies: the parameters may change in place
        self.bias = None if bias is None else bias.detach().to(weight.dtype, copy=True)
        self.min_rows = min_rows
        self.packed = _pack(self.weight)

    def __call__(self, x: Tensor) -> Tensor:
        """x: (B, K) -> (B, N)."""
        if self.packed is None or x.size(0) < self.min_rows:
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


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
