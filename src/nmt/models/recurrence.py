"""The Bahdanau-attention GRU recurrence over a whole reference target, with a written-out
backward pass.

Under teacher forcing the decoder's step loop is the training step's critical path: every
step runs a dozen small ops, and autograd would record each of them and replay them one by
one in backward, with a weight-gradient matmul per step. :class:`BahdanauGRU` runs the same
forward arithmetic without recording, keeps what backward needs, and in backward loops over
the steps only for the recurrent part (the hidden and attention gradients); the gradients
of the recurrent weights, the attention vector and the memory's gate inputs are then one
large matmul each over all steps.

Shapes: B sentences, T target steps, S source positions, H hidden units, A attention units.
The hidden-gate matmul runs in the dtype of ``w_h`` (fp32, or bf16 under autocast); the
small per-step attention ops, the gate arithmetic, softmax and state in the dtype of ``h0``
(fp32, fp64 in gradient checks).

The module also holds :func:`tanh`, the CPU-fast tanh that the models use.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx


class BahdanauGRU(torch.autograd.Function):
    """One-layer GRU decoder with additive attention queried by the previous state.

    Per step t, with h the previous state (``h0`` at t = 0)::

        gh, q  = split(h @ w_h^T + b_h, [3H, A])        # hidden gates and attention query
        u      = tanh(q + keys)                         # (B, S, A)
        w      = softmax(u @ v + neg)                   # attention weights (B, S)
        gi     = gi_emb[:, t] + w @ mem_gates           # input gates (B, 3H)
        r, z   = sigmoid(gi[:2H] + gh[:2H])
        n      = tanh(gi[2H:] + r * gh[2H:])
        h      = (1 - z) * n + z * h

    Inputs: gi_emb (B, T, 3H) the embedding's share of the input gates (bias included);
    mem_gates (B, S, 3H) the memory's share (``memory @ W_ic^T``), so the context's share
    is ``w @ mem_gates``; keys (B, S, A); w_h (3H + A, H) and b_h (3H + A,) the hidden-gate
    and query weights stacked; v (A,); h0 (B, H); neg (B, S) 0 on real positions, -inf on
    padding.

    Returns the states (B, T, H) and the attention weights (B, T, S) of every step.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        gi_emb: Tensor,
        mem_gates: Tensor,
        keys: Tensor,
        w_h: Tensor,
        b_h: Tensor,
        v: Tensor,
        h0: Tensor,
        neg: Tensor,
    ) -> tuple[Tensor, Tensor]:
        with torch.autocast(h0.device.type, enabled=False):
            return _forward(ctx, gi_emb, mem_gates, keys, w_h, b_h, v, h0, neg)

    @staticmethod
    def backward(ctx: FunctionCtx, d_hs: Tensor | None, d_w: Tensor | None):  # type: ignore[override]
        with torch.autocast(ctx.device_type, enabled=False):  # type: ignore[attr-defined]
            return _backward(ctx, d_hs, d_w)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype in force on ``device``'s type, or None."""
    if not torch.is_autocast_enabled(device.type):
        return None
    return torch.get_autocast_dtype(device.type)


def tanh(x: Tensor) -> Tensor:
    """``tanh`` as ``2 * sigmoid(2x) - 1`` on CPU, where PyTorch's tanh kernel runs several
    times slower than its sigmoid (absolute error below 2e-7 in fp32); ``torch.tanh``
    elsewhere. Not differentiable: for tensors that need gradients use :class:`Tanh`."""
    if x.device.type != "cpu":
        return torch.tanh(x)
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


def tanh_grad(x: Tensor) -> Tensor:
    """:func:`tanh` through :class:`Tanh` when ``x`` needs a gradient, else directly."""
    return Tanh.apply(x) if x.requires_grad else tanh(x)


class Tanh(torch.autograd.Function):
    """:func:`tanh` with autograd: backward is ``grad * (1 - y**2)`` from the output y."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor) -> Tensor:  # type: ignore[override]
        y = tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (y,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.ops.aten.tanh_backward(grad, y)


def _forward(ctx, gi_emb, mem_gates, keys, w_h, b_h, v, h0, neg):
    b, t_len, h3 = gi_emb.shape
    s, a = keys.shape[1:]
    sd = h0.dtype
    ctx.dtypes = (mem_gates.dtype, keys.dtype, v.dtype)
    # The attention's tanh is 2 sigmoid(2x) - 1 (see attention_gru_cell). Only the
    # hidden-gate matmul runs in the matmul dtype: the small per-step ops are faster in
    # fp32 on CPU.
    w_h2, b_h2 = doubled_query(w_h, b_h, h3)
    keys2, v2 = keys.to(sd) * 2, v.to(sd) * 2
    mem_gates, gi_all = mem_gates.to(sd), gi_emb.to(sd)
    sig = h0.new_empty(t_len, b, s, a)  # sigmoid(2 (q + keys)) of every step
    hs, ws, gates = [], [], []
    w_h2_t = w_h2.t()
    state = h0
    for t in range(t_len):
        hq = torch.addmm(b_h2, state.to(w_h2_t.dtype), w_h2_t).to(sd)
        state, w, step_gates, _ = attention_gru_cell(
            state, gi_all[:, t], hq, mem_gates, keys2, v2, neg, sig[t]
        )
        hs.append(state)
        ws.append(w)
        gates.append(step_gates)
    hs_t, ws_t = torch.stack(hs), torch.stack(ws)
    ctx.save_for_backward(mem_gates, w_h, b_h, h0, hs_t, sig, ws_t)
    ctx.gates, ctx.v_sd, ctx.gi_dtype = gates, v.to(sd), gi_emb.dtype
    ctx.device_type = h0.device.type
    return hs_t.transpose(0, 1), ws_t.transpose(0, 1)


def doubled_query(w_h: Tensor, b_h: Tensor, h3: int) -> tuple[Tensor, Tensor]:
    """Copies of the stacked hidden-gate and query weights (3H + A, H) and bias with the
    query rows (from row ``h3``) doubled, as :func:`attention_gru_cell` wants them."""
    w_h2, b_h2 = w_h.clone(), b_h.clone()
    w_h2[h3:] *= 2
    b_h2[h3:] *= 2
    return w_h2, b_h2


def attention_gru_cell(
    state: Tensor,
    gi: Tensor,
    hq: Tensor,
    values: Tensor,
    keys2: Tensor,
    v2: Tensor,
    neg: Tensor,
    sig: Tensor | None = None,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor], Tensor]:
    """One step of :class:`BahdanauGRU`'s recurrence, with the attention's tanh written as
    ``2 sigmoid(2x) - 1``: the doubling is folded into the query rows of the stacked
    hidden-gate and query weights (:func:`doubled_query`) and into ``keys2``, and since
    softmax ignores a constant per row, the scores are ``sigmoid(2 (q + keys)) @ v2`` with
    ``v2 = 2 v``.

    state (B, H) in the dtype of the gate arithmetic; gi (B, 3H) the input gates' share
    that does not depend on attention; hq (B, 3H + A) the state times those stacked
    weights, plus their bias (the caller picks the matmul); values (B, S, 3H + X): the
    memory's share of the input gates, then X more columns the attention weights sum;
    keys2 (B, S, A); neg (B, S); sig: where to write the sigmoid (B, S, A), or None.

    Returns the new state (B, H), the attention weights (B, S), the gates (r, z, n, h_n)
    that backward needs, and the weighted sum of the X extra columns (B, X).
    """
    h3, a = gi.size(-1), keys2.size(-1)
    h = h3 // 3
    gh, q2 = hq.split([h3, a], dim=-1)
    st = torch.add(q2.unsqueeze(1), keys2, out=sig).sigmoid_()
    w = torch.softmax(torch.matmul(st, v2).add_(neg), dim=-1)
    shares = torch.bmm(w.unsqueeze(1), values).squeeze(1)  # (B, 3H + X)
    i_rz, i_n = (gi + shares[:, :h3]).split([2 * h, h], dim=-1)
    h_rz, h_n = gh.split([2 * h, h], dim=-1)
    r, z = torch.sigmoid(i_rz + h_rz).chunk(2, dim=-1)
    n = tanh(torch.addcmul(i_n, r, h_n))
    state = torch.lerp(n, state, z)  # (1 - z) * n + z * h
    return state, w, (r, z, n, h_n), shares[:, h3:]


def _backward(ctx, d_hs, d_w):
    mem_gates, w_h, b_h, h0, hs, sig, ws = ctx.saved_tensors
    t_len, b, h = hs.shape
    s, a = sig.shape[2:]
    mm, sd = w_h.dtype, h0.dtype
    v4 = ctx.v_sd * 4  # d tanh(x) = 4 sigmoid'(2x) in terms of the saved sigmoid(2x)
    mem_gates_t = mem_gates.transpose(1, 2).contiguous()  # (B, 3H, S): a faster bmm below
    d_gi = h0.new_empty(t_len, b, 3 * h)  # the input gates' pre-activation gradients
    d_ghq = h0.new_empty(t_len, b, 3 * h + a)  # ... of the hidden gates and the query
    d_scores = h0.new_empty(t_len, b, s)
    d_keys = h0.new_zeros(b, s, a)
    dh = torch.zeros_like(h0)
    for t in reversed(range(t_len)):
        if d_hs is not None:
            dh = dh + d_hs[:, t]
        r, z, n, h_n = ctx.gates[t]
        prev = hs[t - 1] if t > 0 else h0
        gi, ghq = d_gi[t], d_ghq[t]
        # h = n + z * (prev - n); n = tanh(i_n + r * h_n); r, z = sigmoid(...)
        d_n = torch.ops.aten.tanh_backward(dh * (1 - z), n)
        gi[:, 2 * h :] = d_n
        torch.mul(d_n, r, out=ghq[:, 2 * h : 3 * h])
        gi[:, :h] = torch.ops.aten.sigmoid_backward(d_n * h_n, r)
        gi[:, h : 2 * h] = torch.ops.aten.sigmoid_backward(dh * (prev - n), z)
        ghq[:, : 2 * h] = gi[:, : 2 * h]
        # gi_c = w @ mem_gates; w = softmax(scores); scores = tanh(q + keys) @ v
        dw = torch.bmm(gi.unsqueeze(1), mem_gates_t).squeeze(1)
        if d_w is not None:
            dw += d_w[:, t]
        w = ws[t]
        ds = torch.mul(w, dw - (dw * w).sum(-1, keepdim=True), out=d_scores[t])  # padding: 0
        d_pre = torch.ops.aten.sigmoid_backward(ds.unsqueeze(-1) * v4, sig[t])  # (B, S, A)
        torch.sum(d_pre, dim=1, out=ghq[:, 3 * h :])
        d_keys += d_pre
        dh = torch.mm(ghq.to(mm), w_h).to(sd).addcmul_(dh, z)
    # Gradients of what every step shares: one matmul each over all steps.
    prevs = torch.cat([h0.unsqueeze(0), hs[:-1]]).view(t_len * b, h)
    d_w_h = torch.mm(d_ghq.view(t_len * b, -1).t().to(mm), prevs.to(mm))
    d_b_h = d_ghq.sum(dim=(0, 1))
    d_mem = torch.bmm(ws.permute(1, 2, 0), d_gi.transpose(0, 1))  # (B, S, 3H)
    # scores = tanh(.) @ v with tanh = 2 sigmoid(2x) - 1
    d_v = torch.mv(sig.view(-1, a).t(), d_scores.view(-1)).mul_(2).sub_(d_scores.sum())
    return (
        d_gi.transpose(0, 1).to(ctx.gi_dtype),
        d_mem.to(ctx.dtypes[0]),
        d_keys.to(ctx.dtypes[1]),
        d_w_h.to(w_h.dtype),
        d_b_h.to(b_h.dtype),
        d_v.to(ctx.dtypes[2]),
        dh,
        None,
    )
