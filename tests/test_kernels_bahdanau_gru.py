import pytest
import torch

from nmt.config.model import RNNParams
from nmt.models import build_model
from nmt.models.kernels import choose
from nmt.models.kernels.activations import tanh
from nmt.models.kernels.bahdanau_gru import BahdanauGRU, unroll

B, T, S, H, A = 3, 4, 5, 6, 7


def inputs(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return (torch.randn(*shape, generator=g, dtype=dtype) * 0.5).requires_grad_()

    neg = torch.zeros(B, S, dtype=dtype)
    neg[1, 3:] = float("-inf")  # padding in two rows
    neg[2, 1:] = float("-inf")
    return (r(B, T, 3 * H), r(B, S, 3 * H), r(B, S, A), r(3 * H + A, H), r(3 * H + A), r(A),
            r(B, H), neg)  # fmt: skip


def test_gradients_match_finite_differences():
    assert torch.autograd.gradcheck(BahdanauGRU.apply, inputs(), eps=1e-6, atol=1e-5)


def test_outputs_and_padding():
    args = inputs(torch.float32)
    hs, w = BahdanauGRU.apply(*args)
    assert hs.shape == (B, T, H) and w.shape == (B, T, S)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, T))
    assert w[1, :, 3:].abs().max() == 0 and w[2, :, 1:].abs().max() == 0
    # a gradient through only one of the outputs (the other is then None in backward)
    hs.sum().backward()
    assert all(x.grad is not None and x.grad.isfinite().all() for x in args[:7])


def model():
    torch.manual_seed(0)
    params = RNNParams(
        attention="bahdanau", embedding_dim=10, hidden_dim=8, bidirectional=True, dropout=0.0
    )
    return build_model(params, 20, 25)


def grads(m, unroll, device="cpu"):
    src = torch.randint(4, 20, (3, 6), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([6, 2, 4])
    tgt = torch.randint(4, 25, (3, 5), generator=torch.Generator().manual_seed(2))
    src, lengths, tgt = src.to(device), lengths.to(device), tgt.to(device)
    m.zero_grad()
    enc = m.encode(src, lengths)
    feats = unroll(m.tgt_embedding(tgt), m.init_state(enc), enc)
    m.logits(feats).float().log_softmax(-1).sum().backward()
    return feats.detach().cpu(), {k: p.grad.cpu() for k, p in m.named_parameters()}


def kernel(m):
    return lambda e, s, enc: unroll(m.decoder, e, s, enc)


def test_the_kernel_is_chosen_for_training_on_cpu_only_for_its_decoder():
    assert choose(model()).unroll is unroll
    torch.manual_seed(0)
    for other in ({"attention": "dot"}, {"cell": "lstm"}, {"decoder_layers": 2}):
        params = RNNParams(embedding_dim=10, hidden_dim=8, dropout=0.0, **other)
        assert choose(build_model(params, 20, 25)).unroll is None, other


def test_fused_unroll_equals_the_step_loop_with_autograd():
    m = model()
    fused, g_fused = grads(m, kernel(m))
    looped, g_loop = grads(m, m.decoder.unroll)
    torch.testing.assert_close(fused, looped)
    assert g_fused.keys() == g_loop.keys()
    for k in g_loop:
        torch.testing.assert_close(g_fused[k], g_loop[k], atol=1e-5, rtol=1e-4, msg=k)


def test_bf16_autocast_gradients_are_close_to_fp32():
    m = model()
    _, g32 = grads(m, kernel(m))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, g16 = grads(m, kernel(m))
    for k in g32:
        cos = torch.nn.functional.cosine_similarity(g16[k].flatten(), g32[k].flatten(), dim=0)
        assert cos > 0.99, k


@pytest.mark.parametrize("steps", [1, 2])
def test_short_targets(steps):
    args = inputs()
    gi = args[0][:, :steps].detach().requires_grad_()
    assert torch.autograd.gradcheck(BahdanauGRU.apply, (gi, *args[1:]), eps=1e-6, atol=1e-5)


def test_tanh_through_sigmoid_matches_torch_tanh():
    x = torch.cat([torch.linspace(-30, 30, 10001), torch.tensor([0.0, 1e-8, -1e-8])])
    torch.testing.assert_close(tanh(x), torch.tanh(x), atol=2e-7, rtol=0)
    assert tanh(torch.tensor([-100.0, 100.0])).tolist() == [-1.0, 1.0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_plain_unroll_on_cuda_matches_the_cpu_kernel():
    m = model()
    feats, g_cpu = grads(m, kernel(m))
    m.cuda()
    feats_cuda, g_cuda = grads(m, m.decoder.unroll, "cuda")
    torch.testing.assert_close(feats_cuda, feats, atol=1e-4, rtol=1e-3)
    for k in g_cpu:
        torch.testing.assert_close(g_cuda[k], g_cpu[k], atol=1e-4, rtol=1e-3, msg=k)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, g16 = grads(m, m.decoder.unroll, "cuda")
    for k in g_cpu:
        cos = torch.nn.functional.cosine_similarity(g16[k].flatten(), g_cpu[k].flatten(), dim=0)
        assert cos > 0.99, k
