import torch

from nmt.config.model import RNNParams
from nmt.models import build_model
from nmt.specials import EOS_ID, PAD_ID
from nmt.training.batching import Batch
from nmt.training.loop import batch_logits
from nmt.training.losses import masked_cross_entropy, stop_at_predicted_eos


def test_masked_cross_entropy_sums_real_tokens_only():
    logits = torch.randn(2, 3, 5)
    target = torch.tensor([[4, 3, PAD_ID], [2, PAD_ID, PAD_ID]])
    full = torch.nn.functional.cross_entropy(logits[0, :2], target[0, :2], reduction="sum")
    full += torch.nn.functional.cross_entropy(logits[1, :1], target[1, :1], reduction="sum")
    torch.testing.assert_close(masked_cross_entropy(logits, target), full)


def one_hot_logits(predicted: list[list[int]], vocab: int = 8) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predicted), vocab).float()


def test_loss_stops_at_the_first_predicted_eos_of_the_chosen_rows():
    logits = one_hot_logits([[5, EOS_ID, 6, EOS_ID], [5, EOS_ID, 6, 7], [5, 6, 7, 5]])
    target = torch.tensor([[4, 5, 6, 7], [4, 5, 6, 7], [4, 5, 6, EOS_ID]])
    rows = torch.tensor([True, False, True])
    out = stop_at_predicted_eos(logits, target, rows)
    # row 0: the <eos> step is the last with a loss; row 1 is not chosen; row 2 predicts
    # no <eos>: all of its reference counts
    assert out.tolist() == [[4, 5, PAD_ID, PAD_ID], [4, 5, 6, 7], [4, 5, 6, EOS_ID]]


def tiny_batch() -> Batch:
    src = torch.tensor([[5, 6, 7], [5, 6, PAD_ID]])
    tgt_out = torch.tensor([[6, 7, 8, EOS_ID], [6, 7, EOS_ID, PAD_ID]])
    tgt_in = torch.tensor([[1, 6, 7, 8], [1, 6, 7, EOS_ID]])
    return Batch(src=src, src_lengths=torch.tensor([3, 2]), tgt_in=tgt_in, tgt_out=tgt_out,
                 indices=None, n_tokens=7)  # fmt: skip


def test_free_running_batch_stops_its_loss_at_the_predicted_eos():
    torch.manual_seed(0)
    params = RNNParams(attention="none", feed_final=False, bridge="identity",
                       bidirectional=False, readout="none", output_bias=True,
                       embedding_dim=8, hidden_dim=8, dropout=0.0)  # fmt: skip
    model = build_model(params, 10, 10)
    with torch.no_grad():  # make <eos> the model's guess at every step
        model.generator.bias.zero_()
        model.generator.bias[EOS_ID] = 100.0
    batch = tiny_batch()
    logits, target = batch_logits(model, batch, 0.0, "token", stop_at_eos=True)
    assert logits.shape == (2, 4, 10)
    # each sentence's loss covers its first step only (it predicted <eos> there)
    assert target.tolist() == [[6, PAD_ID, PAD_ID, PAD_ID], [6, PAD_ID, PAD_ID, PAD_ID]]
    _, kept = batch_logits(model, batch, 0.0, "token", stop_at_eos=False)
    assert torch.equal(kept, batch.tgt_out)
    # sentences fed the reference (ratio 1 drawn per sentence) keep their whole target
    _, forced = batch_logits(model, batch, 0.999999, "sequence", stop_at_eos=True)
    assert torch.equal(forced, batch.tgt_out)
