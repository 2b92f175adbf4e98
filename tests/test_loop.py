import io
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nmt.config import TrainParams
from nmt.config.data import NormalizeParams
from nmt.config.model import RNNParams, parse_model_params
from nmt.config.train import LRScheduleParams
from nmt.models import build_model
from nmt.training.batching import collate, make_batches, tokenize_pairs
from nmt.training.checkpoint import epoch_checkpoints, model_payload
from nmt.training.loop import (
    TrainingDiverged,
    ValidSet,
    batch_logits,
    fit,
    rng_state,
    set_rng_state,
    train_epoch,
)
from nmt.training.losses import masked_cross_entropy
from nmt.training.optim import (
    build_optimizer,
    build_scheduler,
    load_scheduler_state,
    scheduler_state,
    warmup_factor,
)
from nmt.vocab import PAD_ID, SPECIALS, WordTokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


DIGITS = WordTokenizer(list(SPECIALS) + [str(i) for i in range(10)])
CPU = torch.device("cpu")


def reversal(n: int, seed: int, lo: int = 2, hi: int = 7) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    src = [" ".join(map(str, rng.integers(0, 10, rng.integers(lo, hi + 1)))) for _ in range(n)]
    return src, [" ".join(reversed(s.split())) for s in src]


def data(n_train: int = 300, n_valid: int = 40, **kw):
    src, tgt = reversal(n_train, 0, **kw)
    train = tokenize_pairs(src, tgt, DIGITS, DIGITS)
    vsrc, vtgt = reversal(n_valid, 1, **kw)
    return train, ValidSet(tokenize_pairs(vsrc, vtgt, DIGITS, DIGITS), vtgt)


def tiny_model(seed: int = 0, **kw):
    torch.manual_seed(seed)
    params = RNNParams(**{"embedding_dim": 16, "hidden_dim": 24, "dropout": 0.1, **kw})
    return build_model(params, len(DIGITS), len(DIGITS))


def payload(model):
    return model_payload(model, DIGITS, DIGITS, NormalizeParams(), "fr", "en")


def train_params(**kw) -> TrainParams:
    base = {"epochs": 3, "batch_tokens": 300, "valid_batch_size": 20, "lr": 3e-3}
    return TrainParams(**{**base, **kw})


def run(tmp_path, params, *, seed=0, on_epoch=None, on_log=None, model_kw=None, resume=True):
    torch.manual_seed(seed)
    model = tiny_model(seed, **(model_kw or {}))
    train, valid = data()
    result = fit(
        model, train, valid, DIGITS.decode, params, seed=seed, device=CPU, dtype=None,
        out_dir=tmp_path, payload=lambda: payload(model),
        run_id="test", on_epoch=on_epoch, on_log=on_log, resume=resume,
    )  # fmt: skip
    return model, result


# ------------------------------------------------------------------------ loss, optim


def test_masked_cross_entropy_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    target = torch.tensor([[3, 4, 2, PAD_ID], [5, 2, PAD_ID, PAD_ID]])
    got = masked_cross_entropy(logits, target)
    logp = logits.log_softmax(-1)
    want = -sum(logp[b, t, target[b, t]] for b in range(2) for t in range(4) if target[b, t])
    torch.testing.assert_close(got, want)
    # garbage logits under padding change nothing, with or without label smoothing
    noisy = logits.clone()
    noisy[0, 3] = 100.0
    noisy[1, 2:] = -50.0
    for ls in (0.0, 0.2):
        torch.testing.assert_close(
            masked_cross_entropy(noisy, target, ls), masked_cross_entropy(logits, target, ls)
        )
    assert masked_cross_entropy(logits, target, 0.2) != got


@pytest.mark.parametrize("name", ["adam", "adamw", "adagrad", "sgd"])
def test_every_optimizer_reduces_the_loss(name):
    model = tiny_model(dropout=0.0)
    train, _ = data(64)
    batch = collate(train, np.arange(64))
    opt = build_optimizer(model, train_params(optimizer=name, lr=0.5 if name == "sgd" else 0.01))

    def loss():
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        return masked_cross_entropy(logits, batch.tgt_out) / batch.n_tokens

    before = float(loss().detach())
    for _ in range(5):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert float(loss().detach()) < before


def test_warmup_then_inverse_sqrt_or_constant():
    p = LRScheduleParams(kind="warmup", warmup_steps=4)
    assert [warmup_factor(s, p) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_factor(15, p) == pytest.approx(math.sqrt(4 / 16))
    flat = LRScheduleParams(kind="warmup", warmup_steps=4, after_warmup="constant")
    assert warmup_factor(99, flat) == 1.0


def test_scheduler_state_survives_a_weights_only_round_trip():
    model = tiny_model()
    for kind in ("warmup", "plateau"):
        params = LRScheduleParams(kind=kind, warmup_steps=10, patience=0)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        sched = build_scheduler(opt, params)
        for _ in range(3):
            opt.step()
            sched.step(5.0) if kind == "plateau" else sched.step()
        buf = io.BytesIO()
        torch.save(scheduler_state(sched), buf)
        buf.seek(0)
        state = torch.load(buf, weights_only=True)
        opt2 = torch.optim.SGD(model.parameters(), lr=1.0)
        sched2 = build_scheduler(opt2, params)
        load_scheduler_state(sched2, state)
        opt2.load_state_dict(opt.state_dict())
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] < 1.0
    assert build_scheduler(opt, LRScheduleParams(kind="none")) is None


def test_rng_state_round_trip_covers_torch_python_numpy():
    import random

    state = rng_state()
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    first = (torch.rand(3), random.random(), np.random.rand())
    set_rng_state(torch.load(buf, weights_only=True))
    again = (torch.rand(3), random.random(), np.random.rand())
    torch.testing.assert_close(first[0], again[0])
    assert first[1:] == again[1:]


# ------------------------------------------------------------------------ the loop


def test_same_seed_same_curve(tmp_path):
    params = train_params(epochs=2, teacher_forcing={"ratio": 0.8})
    _, a = run(tmp_path / "a", params)
    _, b = run(tmp_path / "b", params)
    assert [r["train_loss"] for r in a.state.history] == [r["train_loss"] for r in b.state.history]
    assert a.state.history[-1]["valid_loss"] == b.state.history[-1]["valid_loss"]
    _, c = run(tmp_path / "c", params, seed=1)
    assert c.state.history[0]["train_loss"] != a.state.history[0]["train_loss"]


class Interrupt(Exception):
    pass


def test_resume_equals_an_uninterrupted_run(tmp_path):
    # Dropout, scheduled sampling and a per-step lr schedule all draw on saved state.
    params = train_params(
        epochs=3,
        teacher_forcing={"ratio": 0.9, "schedule": "linear", "slope": 0.2},
        lr_schedule={"kind": "warmup", "warmup_steps": 5},
        early_stopping={"metric": "valid_loss", "patience": 5},
    )
    whole, whole_result = run(tmp_path / "whole", params)

    seen = []

    def stop_after_two(record):
        seen.append(record)
        if record["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tmp_path / "cut", params, on_epoch=stop_after_two)
    # best.pt is written before on_epoch; last.pt of epoch 2 is not: we restart after 1.
    assert read_checkpoint_state(tmp_path / "cut" / "last.pt")["epoch"] == 1
    replayed = []
    torch.manual_seed(123)  # whatever the global RNG is now, resuming restores it
    resumed, resumed_result = run(tmp_path / "cut", params, on_epoch=replayed.append)
    for name, p in whole.state_dict().items():
        assert torch.equal(p, resumed.state_dict()[name]), name
    assert timeless(resumed_result.state.history) == timeless(whole_result.state.history)
    assert replayed == resumed_result.state.history  # the logger sees every epoch once


def timeless(history):
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in history]


def read_checkpoint_state(path):
    return torch.load(path, weights_only=True)["training"]["fit"]


RESUMABLE = {  # dropout (the model's), scheduled sampling and a per-step lr schedule
    "epochs": 2,
    "teacher_forcing": {"ratio": 0.9, "schedule": "linear", "slope": 0.2},
    "lr_schedule": {"kind": "warmup", "warmup_steps": 5},
    "early_stopping": {"metric": "valid_loss", "patience": 5},
}


def kill_before_update(monkeypatch, step):
    """Stop the run as a kill would, after ``step`` updates (check_finite runs once per
    step, before its update)."""
    import nmt.training.loop as loop

    calls = []

    def check(*args, **kw):
        calls.append(1)
        if len(calls) > step:
            raise Interrupt
        return real(*args, **kw)

    real = loop.check_finite
    monkeypatch.setattr(loop, "check_finite", check)


def steps_of_epoch_1():
    train, _ = data()
    return len(make_batches(train.src_lengths, train.tgt_lengths, batch_tokens=300))


def assert_same_run(a_dir, a_model, a_result, b_dir, b_model, b_result):
    for name, p in a_model.state_dict().items():
        assert torch.equal(p, b_model.state_dict()[name]), name
    assert timeless(a_result.state.history) == timeless(b_result.state.history)
    for name in ("best.pt", "last.pt", "epoch-1.pt", "epoch-2.pt"):
        assert (a_dir / name).read_bytes() == (b_dir / name).read_bytes(), name


def test_a_run_killed_mid_epoch_resumes_from_the_step_of_its_last_checkpoint(
    tmp_path, monkeypatch, caplog
):
    n1 = steps_of_epoch_1()
    assert n1 > 6
    logged = []
    whole, whole_result = run(tmp_path / "whole", train_params(**RESUMABLE), on_log=logged.append)
    params = train_params(**RESUMABLE, checkpoint_every=5)
    cut = tmp_path / "cut"
    killed_at = (n1 // 5 + 1) * 5 + 2  # two steps past the first checkpoint of epoch 2
    with monkeypatch.context() as m:
        kill_before_update(m, killed_at)
        with pytest.raises(Interrupt):
            run(cut, params)
    training = torch.load(cut / "last.pt", weights_only=True)["training"]
    assert training["fit"]["epoch"] == 1 and training["fit"]["steps"] == killed_at - 2
    assert training["position"]["epoch"]["step"] == killed_at - 2 - n1
    caplog.set_level(logging.INFO, logger="nmt.training.loop")
    replayed, relogged = [], []
    torch.manual_seed(123)  # whatever the global RNG is now, resuming restores it
    resumed, resumed_result = run(cut, params, on_epoch=replayed.append, on_log=relogged.append)
    assert f"at epoch 2, step {killed_at - 2 - n1}" in caplog.text
    # checkpoints mid-epoch change nothing: the run ends as one that wrote none
    assert_same_run(tmp_path / "whole", whole, whole_result, cut, resumed, resumed_result)
    assert timeless(replayed) == timeless(resumed_result.state.history)
    assert resumed_result.state.history[-1]["tokens_per_s"] > 0
    # the step records too: replayed from last.pt (without timings), then trained on
    assert timeless(relogged) == timeless(logged)
    assert all("tokens_per_s" not in r for r in relogged if r["step"] <= killed_at - 2)
    assert all(r["tokens_per_s"] > 0 for r in relogged if r["step"] > killed_at - 2)


def test_step_records_every_log_every_steps_and_at_each_epochs_end(tmp_path):
    n1 = steps_of_epoch_1()
    params = train_params(**RESUMABLE, log_every=4)
    logged = []
    _, result = run(tmp_path / "a", params, on_log=logged.append)
    total = result.state.steps
    want = sorted({*range(4, total + 1, 4), n1, total})
    assert [r["step"] for r in logged] == want
    assert [r["epoch"] for r in logged] == [1 if s <= n1 else 2 for s in want]
    ratio = {r["epoch"]: r["teacher_forcing"] for r in result.state.history}
    assert [r["teacher_forcing"] for r in logged] == [ratio[r["epoch"]] for r in logged]
    assert ratio[1] != ratio[2]
    first = logged[0]  # steps 1-4 of the warm-up over 5 steps: the lr of the 4th
    assert first["lr"] == pytest.approx(3e-3 * 4 / 5) and first["tokens_per_s"] > 0
    assert all(0 < r["train_loss"] < 5 for r in logged)
    # one step a record: the records' losses are the epoch's, step by step
    every_step = []
    every_1 = params.model_copy(update={"log_every": 1})
    _, again = run(tmp_path / "b", every_1, on_log=every_step.append)
    assert len(every_step) == total
    assert timeless(again.state.history) == timeless(result.state.history)
    none = []
    run(tmp_path / "c", params.model_copy(update={"log_every": None}), on_log=none.append)
    assert none == []


def test_checkpoints_by_the_clock_resume_as_those_by_step(tmp_path, monkeypatch):
    n1 = steps_of_epoch_1()
    whole, whole_result = run(tmp_path / "whole", train_params(**RESUMABLE))
    params = train_params(**RESUMABLE, checkpoint_minutes=1e-9)  # after every step
    cut = tmp_path / "cut"
    with monkeypatch.context() as m:
        kill_before_update(m, n1 + 3)
        with pytest.raises(Interrupt):
            run(cut, params)
    training = torch.load(cut / "last.pt", weights_only=True)["training"]
    assert training["fit"]["steps"] == n1 + 3 and training["position"]["epoch"]["step"] == 3
    resumed, resumed_result = run(cut, params)
    assert_same_run(tmp_path / "whole", whole, whole_result, cut, resumed, resumed_result)


def test_a_run_killed_while_writing_last_pt_resumes_from_the_one_before(tmp_path, monkeypatch):
    import tempfile

    import nmt.training.loop as loop

    whole, whole_result = run(tmp_path / "whole", train_params(**RESUMABLE))
    params = train_params(**RESUMABLE, checkpoint_every=3)
    cut = tmp_path / "cut"
    saves = []

    def dying_save(path, payload):
        saves.append(path.name)
        if saves.count("last.pt") < 2:
            return real(path, payload)
        # Killed mid-write: half the file in atomic_path's temporary, never renamed.
        buf = io.BytesIO()
        torch.save(payload, buf)
        tmp = Path(tempfile.mkdtemp(prefix=".last.pt.", dir=path.parent))
        (tmp / "last.pt").write_bytes(buf.getvalue()[: buf.tell() // 2])
        raise Interrupt

    real = loop.save_checkpoint
    with monkeypatch.context() as m:
        m.setattr(loop, "save_checkpoint", dying_save)
        with pytest.raises(Interrupt):
            run(cut, params)
    assert any(p.name.startswith(".last.pt.") for p in cut.iterdir())
    assert torch.load(cut / "last.pt", weights_only=True)["training"]["fit"]["steps"] == 3
    resumed, resumed_result = run(cut, params)
    assert_same_run(tmp_path / "whole", whole, whole_result, cut, resumed, resumed_result)
    assert not any(p.name.startswith(".") for p in cut.iterdir())


def test_the_resume_fingerprint_ignores_the_length_and_the_checkpoint_interval():
    from nmt.training.loop import resume_fingerprint

    base = resume_fingerprint(train_params(), 1, "data")
    same = train_params(epochs=9, checkpoint_every=7, checkpoint_minutes=5, log_every=3)
    assert resume_fingerprint(same, 1, "data") == base
    assert resume_fingerprint(train_params(lr=0.1), 1, "data") != base
    assert resume_fingerprint(train_params(), 2, "data") != base


def test_a_different_run_id_starts_fresh_and_best_pt_is_written(tmp_path):
    params = train_params(epochs=1)
    run(tmp_path, params)
    model = tiny_model(5)
    train, valid = data()
    result = fit(
        model, train, valid, DIGITS.decode, params, seed=5, device=CPU, dtype=None,
        out_dir=tmp_path, payload=lambda: payload(model), run_id="other",
    )  # fmt: skip
    assert result.state.epoch == 1 and len(result.state.history) == 1
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["metrics"]["epoch"] == 1


def test_identical_runs_write_byte_identical_checkpoints(tmp_path):
    params = train_params(epochs=2)
    _, a = run(tmp_path / "a", params)
    _, b = run(tmp_path / "b", params)
    assert a.state.history[-1]["tokens_per_s"] > 0  # timings reach the logger ...
    for name in ("best.pt", "last.pt"):  # ... but not the files
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    last = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert "tokens_per_s" not in last["metrics"]
    assert "train_seconds" not in last["training"]["fit"]
    assert all("tokens_per_s" not in r for r in last["training"]["fit"]["history"])


def test_the_last_epochs_are_kept_and_a_resume_drops_those_past_it(tmp_path):
    params = train_params(epochs=3, keep_epochs=2, early_stopping={"patience": 5})
    whole, _ = run(tmp_path / "whole", params)
    kept = epoch_checkpoints(tmp_path / "whole")
    assert list(kept) == [2, 3]
    last = torch.load(kept[3], weights_only=True)
    assert last["metrics"]["epoch"] == 3 and "training" not in last
    assert all(torch.equal(v, whole.state_dict()[k]) for k, v in last["model_state"].items())

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise Interrupt

    cut = tmp_path / "cut"
    with pytest.raises(Interrupt):
        run(cut, params, on_epoch=stop_after_two)
    assert read_checkpoint_state(cut / "last.pt")["epoch"] == 1
    # as if killed after saving epoch 2's weights but before last.pt, or left by another run
    for stale in ("epoch-2.pt", "epoch-7.pt"):
        (cut / stale).write_bytes((cut / "epoch-1.pt").read_bytes())
    run(cut, params)
    assert {e: p.read_bytes() for e, p in epoch_checkpoints(cut).items()} == {
        e: p.read_bytes() for e, p in kept.items()
    }


def test_a_finished_run_is_trained_again_not_resumed(tmp_path, caplog):
    params = train_params(epochs=2)
    first, _ = run(tmp_path, params)
    caplog.set_level(logging.INFO, logger="nmt.training.loop")
    seen = []
    again, result = run(tmp_path, params, on_epoch=seen.append)
    assert "is a finished run (2 epochs); training from scratch" in caplog.text
    assert [r["epoch"] for r in seen] == [1, 2] and all("tokens_per_s" in r for r in seen)
    assert result.summary()["resumed_after_epoch"] == 0
    for name, p in first.state_dict().items():  # and it reproduces the first run
        assert torch.equal(p, again.state_dict()[name]), name


def test_an_unreadable_last_pt_is_reported_and_training_starts_afresh(tmp_path, caplog):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    caplog.set_level(logging.WARNING, logger="nmt.training.loop")
    _, result = run(tmp_path, train_params(epochs=1))
    assert result.state.epoch == 1
    assert "not a readable checkpoint" in caplog.text and "training from scratch" in caplog.text
    assert read_checkpoint_state(tmp_path / "last.pt")["epoch"] == 1


def test_temporaries_of_a_killed_save_are_swept(tmp_path):
    for left in (".best.pt.k1l2d3", ".last.pt.x9y8z7"):  # atomic_path's temporary folders
        (tmp_path / left).mkdir()
        (tmp_path / left / left.split(".")[1]).write_bytes(b"half a checkpoint")
    (tmp_path / "notes.txt").write_text("kept")
    run(tmp_path, train_params(epochs=1))
    kept = ["best.pt", "epoch-1.pt", "last.pt", "notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == kept


@pytest.mark.parametrize("clip", [None, 1.0])
def test_a_diverging_run_stops_naming_the_step_and_writes_no_checkpoint(tmp_path, clip):
    params = train_params(epochs=2, lr=1e37, clip_grad_norm=clip)
    where = r"at epoch 1, step \d+ of \d+: .*train\.lr = 1e\+37"
    with pytest.raises(TrainingDiverged, match=where):
        run(tmp_path, params)
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "last.pt").exists()


def test_train_epoch_writes_progress_lines_naming_the_epoch_and_the_loss(capsys):
    params = train_params()
    model = tiny_model()
    train, _ = data(60)
    batches = make_batches(train.src_lengths, train.tgt_lengths, batch_tokens=params.batch_tokens)
    stats = train_epoch(
        model, train, batches, build_optimizer(model, params), step_scheduler=None,
        params=params, ratio=1.0, device=CPU, dtype=None, progress="lines", epoch=2,
        progress_interval=0.0,
    )  # fmt: skip
    lines = capsys.readouterr().err.splitlines()
    n = len(batches)
    assert n > 1 and len(lines) == n + 1  # a line per step, and one on closing
    assert all(line.startswith("train epoch 3: ") and ", loss " in line for line in lines)
    assert lines[0].startswith(f"train epoch 3: 1/{n} batches")
    assert lines[-1].startswith(f"train epoch 3: {n}/{n} batches (100%)")
    assert f", loss {stats['loss']:.3f}, tok/s " in lines[-1]


def test_early_stopping_when_the_metric_stalls(tmp_path):
    params = train_params(
        epochs=10,
        lr=1e-9,
        early_stopping={"metric": "valid_loss", "patience": 2, "min_delta": 0.01},
    )
    _, result = run(tmp_path, params)
    assert result.state.stopped_early
    assert result.state.epoch == 3 and result.state.best_epoch == 1
    summary = result.summary()
    assert summary["best_epoch"] == 1 and summary["final_epoch"] == 3
    assert set(summary["best"]) == {"valid_loss", "valid_loss_free", "valid_bleu"}


TRANSFORMER = {
    "arch": "transformer", "model_dim": 64, "heads": 4, "ff_dim": 128, "encoder_layers": 2,
    "decoder_layers": 2, "dropout": 0.0,
}  # fmt: skip


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_a_tiny_model_learns_to_reverse_digit_strings(tmp_path, arch):
    from nmt.inference.search import greedy_search
    from nmt.training.checkpoint import load_model

    torch.manual_seed(0)
    if arch == "rnn":
        model = tiny_model(0, embedding_dim=32, hidden_dim=64, dropout=0.0)
    else:
        model = build_model(parse_model_params(TRANSFORMER), len(DIGITS), len(DIGITS))
    train, valid = data(3000, 200, lo=3, hi=8)
    params = train_params(epochs=6, batch_tokens=800, lr=3e-3, valid_batch_size=200)
    if arch == "transformer":  # with the warm-up transformers are trained with
        schedule = LRScheduleParams(kind="warmup", warmup_steps=100, after_warmup="constant")
        params = params.model_copy(update={"lr": 1e-3, "epochs": 12, "lr_schedule": schedule})
    result = fit(
        model, train, valid, DIGITS.decode, params, seed=0, device=CPU, dtype=None,
        out_dir=tmp_path, payload=lambda: payload(model), run_id="reverse",
    )  # fmt: skip
    best = load_model(tmp_path).model  # best.pt, by validation BLEU
    batch = collate(valid.pairs, np.arange(len(valid.refs)))
    out = greedy_search(best, batch.src, batch.src_lengths, 12)
    exact = np.mean([DIGITS.decode(o) == ref for o, ref in zip(out, valid.refs, strict=True)])
    # in this budget of small batches the Transformer got 0.875 of the strings exact
    want = 0.95 if arch == "rnn" else 0.8
    assert exact >= want, (exact, [round(r["valid_bleu"], 1) for r in result.state.history])


# ------------------------------------------------------------------------ model fast path


def test_fused_bahdanau_unroll_equals_stepping_and_selects_real_positions():
    model = tiny_model(dropout=0.0).eval()  # one-layer GRU + Bahdanau: the written-out cell
    train, _ = data(8)
    batch = collate(train, np.arange(8))
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    steps = []
    for t in range(batch.tgt_in.size(1)):
        step_logits, state, _ = model.decode_step(batch.tgt_in[:, t], state, enc)
        steps.append(step_logits)
    torch.testing.assert_close(torch.stack(steps, 1), logits)
    flat, target = batch_logits(model, batch)
    real = batch.tgt_out != PAD_ID
    assert flat.shape == (batch.n_tokens, len(DIGITS)) and target.shape == (batch.n_tokens,)
    torch.testing.assert_close(flat, logits[real])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, _ = batch_logits(model, batch)
    torch.testing.assert_close(low.float(), flat, atol=0.05, rtol=0.05)


def test_the_loss_per_slot_spreads_each_sentences_loss_over_its_slots(tmp_path):
    params = train_params(epochs=1, loss_slots=8, passes=2)
    _, result = run(tmp_path, params)
    record = result.state.history[0]
    train, _ = data()
    tokens = int((train.tgt_lengths + 1).sum()) * 2  # every target and its <eos>, twice
    per_slot = record["train_loss"] * tokens / (8 * len(train.src_lengths) * 2)
    assert record["train_loss_per_slot"] == pytest.approx(per_slot, rel=1e-12)
    _, plain = run(tmp_path / "plain", train_params(epochs=1))
    assert "train_loss_per_slot" not in plain.state.history[0]


def test_a_free_running_loss_that_stops_at_eos_trains(tmp_path):
    params = train_params(epochs=2, teacher_forcing={"ratio": 0.0, "stop_at_eos": True})
    _, result = run(tmp_path, params)
    losses = [r["train_loss"] for r in result.state.history]
    assert all(np.isfinite(losses)) and losses[1] < losses[0]
