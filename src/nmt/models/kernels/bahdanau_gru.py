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

The arithmetic of a step is :func:`~nmt.models.gru_attention.gru_attention_cell`, the
decoder's own, with the attention's tanh as a sigmoid (see :func:`_forward`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx

from nmt.models.attention import padding_bias
from nmt.models.decoder import RNNDecoder, top_layer
from nmt.models.encoder import EncoderOutput, RNNState
from nmt.models.gru_attention import gru_attention_cell
from nmt.models.kernels.activations import tanh


def unroll(decoder: RNNDecoder, emb: Tensor, state: RNNState, enc: EncoderOutput) -> Tensor:
    """:meth:`RNNDecoder.unroll` of a :attr:`~RNNDecoder.gru_attention` decoder through
    :class:`BahdanauGRU`: the same features (B, T, F) for emb (B, T, E), faster on a CPU.

    The embedding's share of the input gates runs once over all steps, and the hidden-gate
    matmul and the attention's query projection are one matmul per step.
    """
    rnn, attention = decoder.rnn, decoder.attention
    assert decoder.gru_attention and attention is not None and enc.values is not None
    gi_emb = F.linear(emb, rnn.weight_ih_l0[:, : decoder.emb_dim], rnn.bias_ih_l0)  # (B, T, 3H)
    memory = enc.memory
    w_h, b_h = decoder.hidden_query_weights()
    low = autocast_dtype(memory.device)
    if low is not None:  # cast once, not at every step
        w_h, b_h = w_h.to(low), b_h.to(low)
    h0 = top_layer(state)
    h0 = h0.to(torch.promote_types(h0.dtype, torch.float32))  # (B, H), fp32 under autocast
    v = attention.v.weight[0]  # type: ignore[union-attr]
    out, weights = BahdanauGRU.apply(
        gi_emb, enc.values, enc.keys, w_h, b_h, v, h0, padding_bias(enc.mask)
    )
    context = torch.bmm(weights.to(memory.dtype), memory)  # (B, T, M)
    return torch.cat([out.to(context.dtype), context], dim=-1)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype in force on ``device``'s type, or None."""
    if not torch.is_autocast_enabled(device.type):
        return None
    return torch.get_autocast_dtype(device.type)


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


def _forward(ctx, gi_emb, mem_gates, keys, w_h, b_h, v, h0, neg):
    b, t_len, h3 = gi_emb.shape
    s, a = keys.shape[1:]
    sd = h0.dtype
    ctx.dtypes = (mem_gates.dtype, keys.dtype, v.dtype)
    # The attention's tanh is 2 sigmoid(2x) - 1, folded into the weights (see
    # doubled_query). Only the
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
        state, w, step_gates, _ = gru_attention_cell(
            state,
            gi_all[:, t],
            hq,
            mem_gates,
            keys2,
            v2,
            neg,
            score_act=torch.sigmoid_,
            tanh=tanh,
            scores_out=sig[t],
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
    query rows (from row ``h3``) doubled.

    The kernels compute the attention's ``tanh(q + keys) @ v`` as ``sigmoid(2 (q + keys))
    @ 2v``: tanh(x) = 2 sigmoid(2x) - 1, and softmax ignores the constant ``-sum(v)`` per
    row. With the query rows, the keys and ``v`` doubled ahead of time, a step's scores
    are ``sigmoid(q2 + keys2) @ v2``, and the sigmoid's output is what backward needs.
    """
    w_h2, b_h2 = w_h.clone(), b_h.clone()
    w_h2[h3:] *= 2
    b_h2[h3:] *= 2
    return w_h2, b_h2


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
