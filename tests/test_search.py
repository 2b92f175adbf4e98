import itertools

import pytest
import torch

from nmt.config.model import RNNParams, TransformerParams
from nmt.inference.search import (
    EOS_ID,
    SOS_ID,
    SearchSettings,
    beam_search,
    greedy_search,
    length_penalty,
    max_output_lengths,
    prepare,
    search,
)
from nmt.models import build_model

SRC_V, TGT_V = 30, 25


def tiny(attention: str = "bahdanau", cell: str = "gru", seed: int = 0) -> torch.nn.Module:
    """A small untrained model; attention ``transformer`` gives the Transformer."""
    torch.manual_seed(seed)
    if attention == "transformer":
        params = TransformerParams(
            arch="transformer", model_dim=16, heads=2, ff_dim=24, encoder_layers=2,
            decoder_layers=2, dropout=0.0,
        )  # fmt: skip
    else:
        params = RNNParams(
            attention=attention, cell=cell, embedding_dim=16, hidden_dim=12, dropout=0.0
        )
    return build_model(params, SRC_V, TGT_V).eval()


def batch(lengths=(7, 3, 5, 1)):
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor(lengths)
    src = torch.randint(4, SRC_V, (len(lengths), int(lengths.max())), generator=g)
    for i, n in enumerate(lengths):
        src[i, n:] = 0
    return src, lengths


def greedy_by_hand(model, src, lengths, max_len):
    """One sentence, one token at a time, no batching tricks."""
    enc = model.encode(src, lengths)
    state = model.init_state(enc)
    prev, out = torch.tensor([SOS_ID]), []
    for _ in range(max_len):
        logits, state, _ = model.decode_step(prev, state, enc)
        logits[:, :2] = -float("inf")  # <pad> and <sos> are never proposed
        prev = logits.argmax(-1)
        if int(prev) == EOS_ID:
            break
        out.append(int(prev))
    return out


def eos_biased(model, bias: float) -> None:
    """Add ``bias`` to the <eos> logit: large makes it win at once, negative never."""
    shift = torch.zeros(TGT_V)
    shift[EOS_ID] = bias
    model.generator.bias = torch.nn.Parameter(shift)


@pytest.mark.parametrize(
    ("attention", "cell"),
    [(a, c) for a in ("none", "bahdanau", "general") for c in ("gru", "lstm")]
    + [("transformer", "-")],
)
def test_greedy_batched_equals_one_at_a_time(attention, cell):
    model = tiny(attention, cell)
    src, lengths = batch()
    hyps = greedy_search(model, src, lengths, max_len=12)
    assert len(hyps) == 4
    for i, n in enumerate(lengths.tolist()):
        assert hyps[i] == greedy_by_hand(model, src[i : i + 1, :n], lengths[i : i + 1], 12)
        assert all(t not in (0, SOS_ID, EOS_ID) for t in hyps[i])
        assert len(hyps[i]) <= 12


def test_greedy_respects_per_row_caps_and_empty_sources():
    model = tiny()
    eos_biased(model, -100.0)  # <eos> never wins: every row runs to its cap
    src, lengths = batch((4, 0, 2))
    hyps = greedy_search(model, src, lengths, max_len=torch.tensor([3, 9, 6]))
    assert [len(h) for h in hyps] == [3, 0, 6]
    assert greedy_search(model, src[:0], lengths[:0], 5) == []
    assert greedy_search(model, src, torch.zeros(3, dtype=torch.long), 5) == [[], [], []]


def test_greedy_stops_when_all_rows_end():
    model = tiny()
    eos_biased(model, 100.0)  # <eos> always wins at once
    src, lengths = batch()
    assert greedy_search(model, src, lengths, max_len=50) == [[], [], [], []]


@pytest.mark.parametrize("attention", ["bahdanau", "transformer"])
def test_greedy_returns_attention_per_output_token(attention):
    model = tiny(attention)
    src, lengths = batch()
    hyps, attn = greedy_search(model, src, lengths, max_len=8, return_attention=True)
    for i, n in enumerate(lengths.tolist()):
        steps = attn[i].shape[0]
        assert attn[i].shape[1] == n
        assert steps in (len(hyps[i]), len(hyps[i]) + 1)  # + the <eos> step, if produced
        torch.testing.assert_close(attn[i].sum(-1), torch.ones(steps))
    plain = tiny("none")
    hyps2, none = greedy_search(plain, src, lengths, max_len=8, return_attention=True)
    assert none is None and len(hyps2) == 4


@pytest.mark.parametrize("attention", ["none", "bahdanau", "dot", "transformer"])
def test_beam_size_one_is_greedy(attention):
    for seed in range(3):
        model = tiny(attention, seed=seed)
        src, lengths = batch((7, 3, 5, 1, 6))
        limits = max_output_lengths(lengths, 1.5, 2)
        assert beam_search(model, src, lengths, limits, beam_size=1) == greedy_search(
            model, src, lengths, limits
        )


def sequence_logprob(model, src, lengths, tokens):
    """log P(tokens | src) for one sentence; tokens may or may not end with <eos>."""
    enc = model.encode(src, lengths)
    state = model.init_state(enc)
    prev, total = torch.tensor([SOS_ID]), 0.0
    for tok in tokens:
        logits, state, _ = model.decode_step(prev, state, enc)
        logits[:, :2] = -float("inf")
        total += float(torch.log_softmax(logits, -1)[0, tok])
        prev = torch.tensor([tok])
    return total


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("seed", [2, 6])  # seeds where alpha, or beam vs greedy, differ
def test_wide_beam_is_exact_search(alpha, seed):
    # Four proposable tokens besides <eos> and a cap of 3: 1 + 4 + 16 hypotheses end in
    # <eos>, 64 hit the cap. A beam of 80 keeps them all: it must find the brute-force best.
    torch.manual_seed(seed)
    params = RNNParams(attention="bahdanau", embedding_dim=8, hidden_dim=6, dropout=0.0)
    model = build_model(params, SRC_V, 7).eval()
    with torch.no_grad():
        model.generator.weight.mul_(6)  # confident: paths differ a lot
    src, lengths = batch((5,))
    candidates = [[*p, EOS_ID] for n in range(3) for p in itertools.product((3, 4, 5, 6), repeat=n)]
    candidates += [list(p) for p in itertools.product((3, 4, 5, 6), repeat=3)]
    with torch.no_grad():
        scored = [
            (sequence_logprob(model, src, lengths, c) / length_penalty(len(c), alpha), c)
            for c in candidates
        ]
    best = max(scored)[1]
    want = best[:-1] if best[-1] == EOS_ID else best
    assert beam_search(model, src, lengths, 3, beam_size=80, alpha=alpha) == [want]


def test_beam_batched_equals_one_at_a_time():
    model = tiny("bahdanau", cell="lstm")
    src, lengths = batch((7, 3, 5, 1, 6))
    limits = max_output_lengths(lengths, 2.0, 3)
    together = beam_search(model, src, lengths, limits, beam_size=4, alpha=0.6)
    for i, n in enumerate(lengths.tolist()):
        alone = beam_search(
            model, src[i : i + 1, :n], lengths[i : i + 1], limits[i : i + 1], 4, alpha=0.6
        )
        assert together[i] == alone[0]


def test_beam_handles_caps_empty_sources_and_tiny_vocab():
    model = tiny()
    eos_biased(model, -100.0)
    src, lengths = batch((4, 0, 2))
    hyps = beam_search(model, src, lengths, torch.tensor([3, 9, 5]), beam_size=3)
    assert [len(h) for h in hyps] == [3, 0, 5]
    assert all(EOS_ID not in h for h in hyps)
    assert beam_search(model, src[:0], lengths[:0], 5, beam_size=3) == []
    assert beam_search(model, src, torch.zeros(3, dtype=torch.long), 5, beam_size=3) == [[]] * 3


def test_length_penalty_and_limits():
    assert length_penalty(1, 0.0) == 1.0
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    torch.testing.assert_close(
        max_output_lengths(torch.tensor([0, 1, 10]), 1.5, 4), torch.tensor([0, 6, 19])
    )
    with pytest.raises(ValueError, match="beam_size"):
        SearchSettings(beam_size=0)


def test_search_dispatches_and_runs_long_inputs():
    model = tiny("bahdanau")
    g = torch.Generator().manual_seed(3)
    src = torch.randint(4, SRC_V, (2, 500), generator=g)
    lengths = torch.tensor([500, 250])
    src[1, 250:] = 0
    settings = SearchSettings(beam_size=1, max_length_ratio=0.02, max_length_extra=0)
    hyps = search(model, src, lengths, settings)
    assert len(hyps) == 2 and all(len(h) <= 10 for h in hyps)
    assert search(model, src, lengths, SearchSettings(beam_size=2, max_length_ratio=0.02))


def test_search_follows_in_place_parameter_updates():
    # Optimizers update parameters in place (fused Adam without bumping their version):
    # nothing made from the parameters may outlive a search.
    torch.manual_seed(0)
    params = RNNParams(embedding_dim=16, hidden_dim=12, dropout=0.0)
    model = build_model(params, SRC_V, 100).eval()
    src, lengths = batch()
    before = greedy_search(model, src, lengths, max_len=6)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5, fused=True)
    model.train()
    model(src, lengths, torch.randint(3, 100, (4, 5))).sum().backward()
    optimizer.step()
    model.eval()
    after = greedy_search(model, src, lengths, max_len=6)
    assert after != before
    assert after == [greedy_by_hand(model, src[i : i + 1], lengths[i : i + 1], 6) for i in range(4)]
    assert search(model, src, lengths, SearchSettings()) == greedy_search(
        model, src, lengths, max_output_lengths(lengths, 2.0, 10)
    )
    assert greedy_search(model, src, lengths, 6, prepared=prepare(model)) == after
