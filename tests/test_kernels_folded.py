import pytest
import torch

from nmt.config.model import RNNParams
from nmt.models import SearchStep, build_model
from nmt.models.kernels import search_step
from nmt.models.kernels.folded import FoldedStep, PackedStep

SRC_V, TGT_V = 30, 25


def tiny(seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    params = RNNParams(embedding_dim=16, hidden_dim=12, dropout=0.0, **overrides)
    return build_model(params, SRC_V, TGT_V).eval()


def batch(rows: int = 3):
    lengths = torch.tensor([6, 2, 4] * (rows // 3) + [5, 1][: rows % 3])
    src = torch.randint(4, SRC_V, (rows, 6), generator=torch.Generator().manual_seed(1))
    for i, n in enumerate(lengths):
        src[i, n:] = 0
    return src, lengths


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({}, FoldedStep),  # the default: one-layer GRU, Bahdanau attention
        ({"readout": "none"}, PackedStep),
        ({"cell": "lstm"}, PackedStep),
        ({"decoder_layers": 2}, PackedStep),
        ({"attention": "general"}, PackedStep),
        ({"attention": "none"}, PackedStep),
    ],
)
def test_folded_only_for_the_one_layer_gru_bahdanau_decoder(overrides, kind):
    step = search_step(tiny(**overrides))
    assert type(step) is kind
    assert isinstance(step, SearchStep)


def test_the_plain_step_under_autocast():
    model = tiny()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert type(search_step(model)) is SearchStep


@pytest.mark.parametrize("overrides", [{"attention": "none"}, {"cell": "lstm"}, {}])
@torch.inference_mode()
def test_packed_step_computes_the_models_step(overrides):
    model = tiny(seed=2, **overrides)
    src, lengths = batch()
    packed, plain = PackedStep(model), SearchStep(model)
    mem, state_k = packed.start(src, lengths)
    _, state_p = plain.start(src, lengths)
    prev = torch.tensor([1, 1, 1])
    for _ in range(4):
        out_k, state_k, attn_k = packed(prev, state_k, mem)
        out_p, state_p, attn_p = plain(prev, state_p, mem)
        torch.testing.assert_close(out_k, out_p, rtol=1e-5, atol=1e-6)
        assert (attn_k is None) == (attn_p is None)
        prev = out_p.argmax(-1)


DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@torch.inference_mode()
def test_folded_step_computes_the_models_step(device):
    model = tiny(seed=3).to(device)
    src, lengths = (t.to(device) for t in batch())
    folded, plain = FoldedStep(model), SearchStep(model)
    enc_f, state_f = folded.start(src, lengths)
    enc_p, state_p = plain.start(src, lengths)
    assert torch.equal(enc_f.bias.isinf(), ~enc_p.mask)
    prev = torch.tensor([1, 1, 1], device=device)
    for t in range(5):
        out_f, state_f, attn_f = folded(prev, state_f, enc_f)
        out_p, state_p, attn_p = plain(prev, state_p, enc_p)
        torch.testing.assert_close(out_f, out_p, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(state_f, state_p, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(attn_f, attn_p, rtol=1e-5, atol=1e-6)
        assert float(attn_f[~enc_p.mask].abs().sum()) == 0.0  # padding gets no attention
        prev = out_p.argmax(-1)
        if t == 2:  # search drops and repeats rows: the folded encoder output follows
            keep = torch.tensor([2, 0, 0], device=device)
            state_f, enc_f = model.reorder(state_f, enc_f, keep)
            state_p, enc_p = model.reorder(state_p, enc_p, keep)
            prev = prev[keep]


def test_a_folded_step_keeps_the_parameters_it_was_made_with():
    model = tiny()
    src, lengths = batch()
    prev = torch.tensor([1, 1, 1])

    def readout(step):
        with torch.inference_mode():
            enc, state = step.start(src, lengths)
            return step(prev, state, enc)[0]

    folded = FoldedStep(model)
    before = readout(folded)
    with torch.no_grad():
        model.pre_output.bias.add_(0.5)  # an in-place update, as an optimizer step does
    torch.testing.assert_close(readout(folded), before)
    now = readout(SearchStep(model))
    assert not torch.allclose(now, before)
    torch.testing.assert_close(readout(FoldedStep(model)), now, rtol=1e-5, atol=1e-6)


def test_a_model_made_under_inference_mode_can_search():
    with torch.inference_mode():
        model = tiny()
        step = search_step(model)
        enc, state = step.start(*batch())
        out, _, _ = step(torch.tensor([1, 1, 1]), state, enc)
    assert isinstance(step, FoldedStep) and out.shape == (3, TGT_V)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("rows", [1, 3, 20])  # 20: the packed products (PACKED_ROWS)
def test_the_folded_encoder_gives_the_encoders_output(bidirectional, rows):
    model = tiny(seed=4, bidirectional=bidirectional)
    step = FoldedStep(model)
    assert (rows >= step.encode.PACKED_ROWS) == (rows == 20)
    src, lengths = batch(rows)
    with torch.inference_mode():
        want = model.encoder(src, lengths)
        got = step.encode(src, lengths)
    assert torch.equal(got.mask, want.mask)
    torch.testing.assert_close(got.memory, want.memory, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.final, want.final, rtol=1e-5, atol=1e-6)
    assert float(got.memory[~got.mask].abs().sum()) == 0.0


def test_a_deeper_encoder_is_not_folded():
    step = FoldedStep(tiny(encoder_layers=2))
    assert step.encode is step.model.encoder
