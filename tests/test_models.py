import pytest
import torch

from nmt.config.model import RNNParams, TransformerParams
from nmt.models import ARCHITECTURES, Seq2SeqModel, build_model, count_parameters
from nmt.models.attention import masked_softmax
from nmt.models.rnn import RNNSeq2Seq
from nmt.models.transformer import Transformer

ATTENTIONS = ["none", "bahdanau", "dot", "general"]
CELLS = ["gru", "lstm", "rnn"]
SRC_V, TGT_V = 30, 40


def tiny(attention: str = "bahdanau", cell: str = "gru", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    params = RNNParams(
        attention=attention, cell=cell, embedding_dim=16, hidden_dim=12, dropout=0.0, **kw
    )
    return build_model(params, SRC_V, TGT_V).eval()


def batch():
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, SRC_V, (3, 7), generator=g)
    lengths = torch.tensor([7, 3, 5])
    for i, n in enumerate(lengths):
        src[i, n:] = 0
    tgt = torch.randint(4, TGT_V, (3, 6), generator=g)
    return src, lengths, tgt


def assert_steps_equal_unroll(model, atol=None, rtol=None) -> None:
    """Stepping decode_step through the reference gives the teacher-forced logits; the
    attention weights (when the model has them) sum to 1 and skip padding (except the
    tutorial's location attention, which weighs slots, padding included)."""
    src, lengths, tgt = batch()
    logits = model(src, lengths, tgt)
    assert logits.shape == (3, 6, TGT_V)
    memory = model.encode(src, lengths)
    state = model.init_state(memory)
    steps = []
    for t in range(tgt.size(1)):
        step_logits, state, attn = model.decode_step(tgt[:, t], state, memory)
        steps.append(step_logits)
        if not model.has_attention:
            assert attn is None
        else:
            assert attn.shape == (3, 7)
            if getattr(model.params, "attention", None) == "location":
                continue
            if getattr(model.params, "source_markers", "none") != "none":
                assert (attn.sum(-1) <= 1 + 1e-6).all()  # the markers take a share
            else:
                torch.testing.assert_close(attn.sum(-1), torch.ones(3))
            # padding gets no attention
            assert attn[1, 3:].abs().max() == 0 and attn[2, 5:].abs().max() == 0
    torch.testing.assert_close(torch.stack(steps, 1), logits, atol=atol, rtol=rtol)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_shapes_and_step_equals_unroll(attention, cell):
    assert_steps_equal_unroll(tiny(attention, cell, encoder_layers=2, decoder_layers=2))


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_padding_never_changes_real_outputs(attention):
    model = tiny(attention, bidirectional=True)
    src, lengths, tgt = batch()
    base = model(src, lengths, tgt)
    # More padding columns, and garbage under the padding: nothing real may change.
    wider = torch.cat([src, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    wider[1, 3:] = 7  # ids beyond each length are ignored
    torch.testing.assert_close(model(wider, lengths, tgt), base)
    # Each sentence alone gives the same outputs as inside the batch.
    for i in range(3):
        n = int(lengths[i])
        alone = model(src[i : i + 1, :n], lengths[i : i + 1], tgt[i : i + 1])
        torch.testing.assert_close(alone, base[i : i + 1], atol=1e-5, rtol=1e-4)


def test_teacher_forcing_zero_feeds_own_predictions():
    model = tiny("bahdanau")
    src, lengths, tgt = batch()
    free = model(src, lengths, tgt, teacher_forcing=0.0)
    # Re-run greedily by hand: each input is the previous argmax.
    enc = model.encode(src, lengths)
    state = model.init_state(enc)
    prev, outs = tgt[:, 0], []
    for _ in range(tgt.size(1)):
        logits, state, _ = model.decode_step(prev, state, enc)
        outs.append(logits)
        prev = logits.argmax(-1)
    torch.testing.assert_close(free, torch.stack(outs, 1))
    forced = model(src, lengths, tgt, teacher_forcing=1.0)
    assert not torch.allclose(free[:, 1:], forced[:, 1:])


def test_sequence_mode_with_ratio_one_half_is_all_or_nothing_per_row():
    model = tiny("dot")
    src, lengths, tgt = batch()
    forced = model(src, lengths, tgt, teacher_forcing=1.0)
    free = model(src, lengths, tgt, teacher_forcing=0.0)
    torch.manual_seed(3)
    mixed = model(src, lengths, tgt, teacher_forcing=0.5, tf_mode="sequence")
    for i in range(3):
        assert torch.allclose(mixed[i], forced[i], atol=1e-5) or torch.allclose(
            mixed[i], free[i], atol=1e-5
        )


def test_unknown_tf_mode_is_an_error():
    model = tiny()
    src, lengths, tgt = batch()
    with pytest.raises(ValueError, match="teacher-forcing mode"):
        model(src, lengths, tgt, teacher_forcing=0.5, tf_mode="sometimes")


def test_tied_embeddings_share_the_matrix():
    model = tiny(tie_embeddings=True)
    assert model.generator.weight is model.tgt_embedding.weight
    untied = tiny(tie_embeddings=False)
    assert count_parameters(untied) - count_parameters(model) == TGT_V * 16


def test_masked_softmax_ignores_masked_positions():
    scores = torch.tensor([[[1.0, 2.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    w = masked_softmax(scores, mask)
    assert w[0, 0, 2] == 0
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 1))


def test_gradients_reach_every_parameter():
    model = tiny("bahdanau").train()
    src, lengths, tgt = batch()
    model(src, lengths, tgt).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


# ---------------------------------------------------------------- the registry, the variants


def transformer(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    params = TransformerParams(
        **{"arch": "transformer", "model_dim": 16, "heads": 2, "ff_dim": 24,
           "encoder_layers": 2, "decoder_layers": 2, "dropout": 0.0, **kw}
    )  # fmt: skip
    return build_model(params, SRC_V, TGT_V).eval()


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_transformer_steps_equal_its_teacher_forced_unroll(positions):
    assert_steps_equal_unroll(transformer(positions=positions), atol=1e-5, rtol=1e-4)


def test_transformer_padding_never_changes_real_outputs():
    model = transformer()
    src, lengths, tgt = batch()
    base = model(src, lengths, tgt)
    wider = torch.cat([src, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    wider[1, 3:] = 7
    torch.testing.assert_close(model(wider, lengths, tgt), base, atol=1e-5, rtol=1e-4)
    for i in range(3):
        n = int(lengths[i])
        alone = model(src[i : i + 1, :n], lengths[i : i + 1], tgt[i : i + 1])
        torch.testing.assert_close(alone, base[i : i + 1], atol=1e-5, rtol=1e-4)


def test_transformer_embeddings_tie_and_share():
    tied = transformer()
    assert tied.generator.weight is tied.tgt_embedding.weight
    assert tied.src_embedding.weight is not tied.tgt_embedding.weight
    untied = transformer(tie_embeddings=False)
    assert count_parameters(untied) - count_parameters(tied) == TGT_V * 16
    torch.manual_seed(0)
    shared = build_model(
        TransformerParams(arch="transformer", model_dim=16, heads=2, share_embeddings=True),
        SRC_V,
        SRC_V,
    )
    assert shared.src_embedding.weight is shared.tgt_embedding.weight
    with pytest.raises(ValueError, match="one vocabulary"):
        build_model(TransformerParams(arch="transformer", share_embeddings=True), SRC_V, TGT_V)


def test_transformer_gradients_reach_every_parameter():
    model = transformer(positions="learned").train()
    src, lengths, tgt = batch()
    model(src, lengths, tgt).sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize(
    "overrides",
    [{"bridge": "linear"}, {"bridge": "zeros"}, {"bridge": "zeros", "cell": "lstm"},
     {"readout": "none"}, {"readout": "none", "attention": "none"}],
)  # fmt: skip
def test_rnn_components_step_equals_unroll(overrides):
    model = tiny(**overrides)
    if overrides.get("bridge") == "zeros":
        src, lengths, _ = batch()
        state = model.init_state(model.encode(src, lengths))
        h = state[0] if isinstance(state, tuple) else state
        assert h.abs().max() == 0
    assert_steps_equal_unroll(model)


def test_a_tied_readout_must_be_embedding_wide():
    with pytest.raises(ValueError, match="tie_embeddings"):
        tiny(readout="none", tie_embeddings=True)


def test_the_registry_builds_each_architecture_from_its_params():
    assert set(ARCHITECTURES) == {"rnn", "transformer"}
    assert isinstance(tiny(), RNNSeq2Seq) and isinstance(transformer(), Transformer)
    for model in (tiny(), transformer()):
        assert isinstance(model, Seq2SeqModel) and model.has_attention
    assert not tiny("none").has_attention


# -- the components of the write-ups' systems -------------------------------------------

SUTSKEVER = dict(
    attention="none", feed_final=False, bridge="identity", bidirectional=False,
    readout="none", output_bias=True,
)  # fmt: skip


def plain(**kw) -> RNNSeq2Seq:
    """A one-direction model whose embedding and hidden sizes agree (12)."""
    torch.manual_seed(0)
    params = RNNParams(**{"embedding_dim": 12, "hidden_dim": 12, "dropout": 0.0, **kw})
    return build_model(params, SRC_V, TGT_V).eval()


WRITEUP_MODELS = [
    dict(SUTSKEVER),
    dict(SUTSKEVER, decoder_activation="relu"),
    dict(SUTSKEVER, decoder_activation="relu", decoder_passes=2, source_markers="eos"),
    dict(SUTSKEVER, cell="lstm", encoder_layers=2, decoder_layers=2),
    dict(SUTSKEVER, cell="rnn", inputs="onehot"),
    dict(attention="additive", attention_v=False, bridge="identity", bidirectional=False,
         readout="none", output_bias=True),
    dict(attention="additive", bidirectional=True),
    dict(attention="location", attention_slots=9, bridge="identity", bidirectional=False,
         decoder_activation="relu", readout="none", output_bias=True, source_markers="eos"),
    dict(attention="bahdanau", source_markers="sos_eos", decoder_activation="relu"),
]  # fmt: skip


@pytest.mark.parametrize("overrides", WRITEUP_MODELS)
def test_writeup_components_step_equals_unroll(overrides):
    assert_steps_equal_unroll(plain(**overrides), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("overrides", WRITEUP_MODELS)
def test_writeup_components_padding_never_changes_real_outputs(overrides):
    model = plain(**overrides)
    src, lengths, tgt = batch()
    padded = torch.cat([src, torch.zeros(3, 4, dtype=src.dtype)], dim=1)
    torch.testing.assert_close(model(padded, lengths, tgt), model(src, lengths, tgt))


def test_sutskever_decoder_starts_from_the_encoder_state_and_reads_only_its_state():
    model = plain(**SUTSKEVER)
    src, lengths, tgt = batch()
    memory = model.encode(src, lengths)
    state = model.init_state(memory)
    assert torch.equal(state[0], memory.final)  # identity: the encoder's final state
    assert model.decoder.feature_dim == 12 and model.generator.bias is not None
    assert not hasattr(model, "pre_output")
    # the step's logits are the output layer of the new state alone
    logits, new_state, _ = model.decode_step(tgt[:, 0], state, memory)
    torch.testing.assert_close(logits, model.generator(new_state[-1]))


def test_decoder_passes_apply_the_same_recurrent_net_with_a_relu_before_each():
    model = plain(**SUTSKEVER, decoder_activation="relu", decoder_passes=2)
    src, lengths, tgt = batch()
    memory = model.encode(src, lengths)
    h = model.init_state(memory)
    x = model.tgt_embedding(tgt[:, 0])
    gru = model.decoder.rnn
    for _ in range(2):  # the tutorial: output = relu(output); output, hidden = gru(...)
        out, h = gru(torch.relu(x).unsqueeze(1), h)
        x = out.squeeze(1)
    logits, state, _ = model.decode_step(tgt[:, 0], model.init_state(memory), memory)
    torch.testing.assert_close(state, h)
    torch.testing.assert_close(logits, model.generator(x))


def test_location_attention_is_the_tutorials():
    model = plain(attention="location", attention_slots=9, bridge="identity",
                  bidirectional=False, decoder_activation="relu", readout="none")  # fmt: skip
    src, lengths, tgt = batch()
    memory = model.encode(src, lengths)
    h = model.init_state(memory)
    att = model.decoder.attention
    emb = model.tgt_embedding(tgt[:, 0])
    # weights over 9 slots from [embedded; hidden]; the memory zero-padded to 9 slots
    weights = torch.softmax(att.attn(torch.cat([emb, h[0]], -1)), dim=-1)
    slots = torch.zeros(3, 9, 12)
    slots[:, :7] = memory.memory
    applied = torch.bmm(weights.unsqueeze(1), slots).squeeze(1)
    x = torch.relu(att.combine(torch.cat([emb, applied], -1)))
    out, _ = model.decoder.rnn(x.unsqueeze(1), h)
    logits, _, attn = model.decode_step(tgt[:, 0], h, memory)
    torch.testing.assert_close(logits, model.generator(out.squeeze(1)))
    torch.testing.assert_close(attn, weights[:, :7])  # reported over the source positions
    # fewer slots than source positions: the later ones are not attended
    short = plain(attention="location", attention_slots=4, bidirectional=False)
    assert short.decoder.attention.precompute(memory.memory).shape == (3, 4, 12)


def test_additive_attention_without_v_sums_its_units():
    model = plain(attention="additive", attention_v=False, bidirectional=False)
    att = model.decoder.attention
    assert att.v is None
    q, keys = torch.randn(3, 1, 12), att.precompute(torch.randn(3, 7, 12))
    expect = torch.tanh(att.query_proj(q).unsqueeze(2) + keys.unsqueeze(1)).sum(-1)
    torch.testing.assert_close(att.score(q, keys), expect)
    assert model.decoder.query == "current" and model.decoder.parallel


def test_onehot_inputs_have_no_weights_and_are_one_hot():
    model = plain(**SUTSKEVER, cell="rnn", inputs="onehot")
    assert model.encoder.rnn.input_size == SRC_V and model.decoder.rnn.input_size == TGT_V
    names = [n for n, _ in model.named_parameters()]
    assert not any("embedding" in n for n in names)
    x = model.tgt_embedding(torch.tensor([[0, 5]]))
    assert x.shape == (1, 2, TGT_V) and x.sum() == 2 and x[0, 1, 5] == 1


def test_source_markers_wrap_each_sentence():
    from nmt.models.rnn import add_markers
    from nmt.specials import EOS_ID, PAD_ID, SOS_ID

    src = torch.tensor([[7, 8, 9], [7, PAD_ID, PAD_ID]])
    out, lengths = add_markers(src, torch.tensor([3, 1]), "sos_eos")
    assert out.tolist() == [
        [SOS_ID, 7, 8, 9, EOS_ID], [SOS_ID, 7, EOS_ID, PAD_ID, PAD_ID]
    ]  # fmt: skip
    assert lengths.tolist() == [5, 3]


def test_dropout_applies_only_where_asked():
    model = plain(**SUTSKEVER, dropout_on=["source"], dropout=0.5)
    assert model.encoder.dropout.p == 0.5
    assert model.dropout.p == 0.0 and model.readout_dropout.p == 0.0
    default = plain(dropout=0.5)
    assert default.encoder.dropout.p == default.dropout.p == default.readout_dropout.p == 0.5


@pytest.mark.parametrize(
    "overrides, message",
    [({"bridge": "identity"}, "bridge: identity"),
     ({"feed_final": False}, "feed_final"),
     ({"attention": "none", "feed_final": False, "decoder_passes": 2, "bidirectional": False,
       "embedding_dim": 8}, "embedding_dim = hidden_dim"),
     ({"decoder_passes": 2}, "decoder_passes"),
     ({"inputs": "onehot", "tie_embeddings": True}, "tie_embeddings"),
     ({"dropout_on": ["source", "source"]}, "dropout_on")],
)  # fmt: skip
def test_inconsistent_writeup_components_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        RNNParams(**{"hidden_dim": 12, "embedding_dim": 12, **overrides})
