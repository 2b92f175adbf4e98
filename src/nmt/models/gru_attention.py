"""One step of a one-layer GRU decoder with additive attention queried by the previous
state, written once as a function of tensors.

The decoder's step (:class:`~nmt.models.decoder.RNNDecoder`), the training kernel's
recurrence (:class:`~nmt.models.kernels.bahdanau_gru.BahdanauGRU`) and the folded search
step (:class:`~nmt.models.kernels.folded.FoldedStep`) all call :func:`gru_attention_cell`;
the kernels pass their own activations (tanh as a sigmoid, in place) and pre-arranged
weights, the decoder plain ``torch`` ones.

Per step, with h the previous state::

    gh, q  = split(h @ [W_hh; W_q]^T + [b_hh; 0], [3H, A])   # hidden gates, query
    w      = softmax(act(q + keys) @ v + bias)                # attention weights (B, S)
    gi     = gi_emb + w @ values[:, :, :3H]                   # input gates: embedding + context
    r, z   = sigmoid(gi[:2H] + gh[:2H])
    n      = tanh(gi[2H:] + r * gh[2H:])
    h'     = (1 - z) * n + z * h

``values`` is ``memory @ W_ic^T``, the memory's share of the input gates, so the context's
share is ``w @ values`` without forming the context; it may hold extra columns that the
weights sum too (the folded step's readout share).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Act = Callable[[Tensor], Tensor]


def gru_attention_cell(
    state: Tensor,
    gi: Tensor,
    hq: Tensor,
    values: Tensor,
    keys: Tensor,
    v: Tensor,
    bias: Tensor,
    *,
    score_act: Act = torch.tanh,
    tanh: Act = torch.tanh,
    scores_out: Tensor | None = None,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor], Tensor]:
    """One step; see the module docstring.

    state (B, H); gi (B, 3H) the embedding's share of the input gates, bias included; hq
    (B, 3H + A) the state times the stacked hidden-gate and query weights, plus their bias
    (the caller picks the matmul); values (B, S, 3H + X); keys (B, S, A); v (A,); bias
    (B, S), 0 on real positions and -inf on padding. ``score_act`` is applied to
    ``q + keys`` (written to ``scores_out`` (B, S, A) first, when given, so an in-place
    activation leaves its result there); ``tanh`` is the candidate state's.

    Returns the new state (B, H), the attention weights (B, S), the gates (r, z, n, h_n)
    and the weighted sum of the X extra columns of ``values`` (B, X).
    """
    h3, a = gi.size(-1), keys.size(-1)
    h = h3 // 3
    gh, q = hq.split([h3, a], dim=-1)
    pre = (
        q.unsqueeze(1) + keys
        if scores_out is None
        else torch.add(q.unsqueeze(1), keys, out=scores_out)
    )
    scores = torch.matmul(score_act(pre), v.to(pre.dtype)).add_(bias)
    w = torch.softmax(scores, dim=-1)
    shares = torch.bmm(w.unsqueeze(1).to(values.dtype), values).squeeze(1)  # (B, 3H + X)
    i_rz, i_n = (gi + shares[:, :h3]).split([2 * h, h], dim=-1)
    h_rz, h_n = gh.split([2 * h, h], dim=-1)
    r, z = torch.sigmoid(i_rz + h_rz).chunk(2, dim=-1)
    n = tanh(torch.addcmul(i_n, r, h_n))
    new = torch.lerp(n, state, z)  # (1 - z) * n + z * h
    return new, w, (r, z, n, h_n), shares[:, h3:]
