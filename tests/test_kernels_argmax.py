import math

import pytest
import torch

from nmt.models.kernels.argmax import two_stage_argmax


@pytest.mark.parametrize(("rows", "vocab"), [(1, 500), (8, 640), (40, 1000), (40, 50)])
def test_two_stage_argmax_is_argmax(rows, vocab):
    g = torch.Generator().manual_seed(5)
    logits = torch.randint(-3, 4, (rows, vocab), generator=g).float()  # many ties
    logits[0, :] = -math.inf  # a row without a finite logit
    logits[-1, vocab - 1] = 10.0  # a maximum in the last (short) block
    assert torch.equal(two_stage_argmax(logits), logits.argmax(dim=-1))
    spread = torch.randn(rows, vocab, generator=g)
    assert torch.equal(two_stage_argmax(spread), spread.argmax(dim=-1))
