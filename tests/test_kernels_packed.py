import pytest
import torch
import torch.nn.functional as F

from nmt.models.kernels.packed import PackedLinear


def weights(dtype=torch.float32, bias=True):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(40, 24, generator=g).to(dtype)
    b = torch.randn(40, generator=g).to(dtype) if bias else None
    return w, b


@pytest.mark.parametrize("rows", [1, 2, 5, 130])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_linear_is_the_linear_map(rows, bias):
    w, b = weights(bias=bias)
    x = torch.randn(rows, 24, generator=torch.Generator().manual_seed(1))
    lin = PackedLinear(w, b)
    assert lin.packed is not None  # oneDNN is part of the CPU build the project pins
    torch.testing.assert_close(lin(x), F.linear(x, w, b), rtol=1e-5, atol=1e-5)


def test_packed_linear_in_bf16():
    w, b = weights(torch.bfloat16)
    x = torch.randn(7, 24, generator=torch.Generator().manual_seed(1)).bfloat16()
    for min_rows in (1, 8):  # packed, then F.linear
        got = PackedLinear(w, b, min_rows=min_rows)(x)
        assert got.dtype == torch.bfloat16
        want = F.linear(x.float(), w.float(), b.float())
        torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=5e-2)


def test_fewer_rows_than_min_rows_take_the_plain_product():
    w, b = weights()
    lin = PackedLinear(w, b, min_rows=4)
    x = torch.randn(3, 24, generator=torch.Generator().manual_seed(2))
    assert torch.equal(lin(x), F.linear(x, w, b))  # the very same call, bit for bit


def test_one_row_takes_the_packed_product_only_for_a_large_weight(monkeypatch):
    monkeypatch.setattr(PackedLinear, "ONE_ROW_ELEMENTS", 40 * 24)
    w, b = weights()
    large = PackedLinear(w, b)
    assert large.min_rows == 1
    x = torch.randn(1, 24, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(large(x), F.linear(x, w, b), rtol=1e-5, atol=1e-5)
    small = PackedLinear(w[:20], b[:20])
    assert small.min_rows == 2 and torch.equal(small(x), F.linear(x, w[:20], b[:20]))


def test_packed_linear_copies_the_parameters():
    layer = torch.nn.Linear(24, 40)
    lin = PackedLinear(layer.weight, layer.bias)
    x = torch.randn(5, 24, generator=torch.Generator().manual_seed(3))
    before = lin(x)
    with torch.no_grad():  # an optimizer step updates parameters in place
        layer.weight.add_(1.0)
        layer.bias.add_(1.0)
    assert torch.equal(lin(x), before)
    assert not lin(x).requires_grad


def test_nothing_is_packed_under_autocast():
    w, b = weights()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lin = PackedLinear(w, b)
        assert lin.packed is None
        assert lin(torch.randn(4, 24)).dtype == torch.bfloat16  # autocast's own product


def test_packed_linear_falls_back_to_f_linear_without_the_private_ops(monkeypatch):
    w, b = weights()
    x = torch.randn(9, 24, generator=torch.Generator().manual_seed(1))

    def gone(*args, **kwargs):
        raise RuntimeError("no such operator mkldnn::_linear_pointwise")

    lin = PackedLinear(w, b)
    assert lin.packed is not None
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", gone)
    torch.testing.assert_close(lin(x), F.linear(x, w, b))
    assert lin.packed is None  # found missing once, not tried again
    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", gone)
    unpacked = PackedLinear(w, b)
    assert unpacked.packed is None
    torch.testing.assert_close(unpacked(x), F.linear(x, w, b))
