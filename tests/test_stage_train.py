import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from click.testing import CliRunner

from nmt.threads import available_cpus
from nmt.training.checkpoint import load_model
from nmt.vocab import SPECIALS, WordTokenizer, save_tokenizers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stages"))
import train as train_stage  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


ROOT = Path(__file__).resolve().parents[1]


def reversal(n: int, seed: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    src = [" ".join(map(str, rng.integers(0, 10, rng.integers(2, 6)))) for _ in range(n)]
    tgt = [" ".join(reversed(s.split())) for s in src]
    return {"src": src, "tgt": tgt, "ref": tgt}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    for split, n, seed in (("train", 200, 0), ("valid", 30, 1)):
        pq.write_table(pa.table(reversal(n, seed)), prepared / f"{split}.parquet")
    tok = WordTokenizer(list(SPECIALS) + [str(i) for i in range(10)])
    save_tokenizers(tmp_path / "data" / "vocab", tok, tok)
    params = {
        "seed": 3,
        "models": {"attention": {"embedding_dim": 16, "hidden_dim": 16, "dropout": 0.0}},
        "train": {"epochs": 2, "batch_tokens": 200, "valid_sentences": 20},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


ARGS = [
    "--model", "attention", "--prepared", "data/prepared", "--vocab", "data/vocab",
    "--out", "checkpoints/attention", "--metrics", "metrics/train/attention.json",
    "--live", "metrics/train/attention",
]  # fmt: skip


def invoke(*extra):
    return CliRunner().invoke(train_stage.main, [*ARGS, *extra], catch_exceptions=False)


def test_stage_writes_checkpoints_metrics_and_curves(workdir):
    result = invoke()
    assert result.exit_code == 0, result.output
    summary = json.loads((workdir / "metrics/train/attention.json").read_text())
    assert summary["final_epoch"] == 2 and summary["model"] == "attention"
    assert summary["parameters"] > 0 and summary["train_tokens_per_s"] > 0
    assert set(summary["best"]) == {"valid_loss", "valid_loss_free", "valid_bleu"}
    assert summary["torch_threads"] == available_cpus()  # train.threads: auto
    assert isinstance(summary["omp_wait"], str) and summary["omp_wait"]
    curve = (workdir / "metrics/train/attention/plots/metrics/valid_bleu.tsv").read_text()
    assert curve.splitlines()[0] == "step\tvalid_bleu" and len(curve.splitlines()) == 3
    for name in ("train_loss", "valid_loss_free", "teacher_forcing", "lr", "tokens_per_s"):
        assert (workdir / f"metrics/train/attention/plots/metrics/{name}.tsv").is_file()
    assert not (workdir / "dvc.yaml").exists()  # dvclive must not write one
    loaded = load_model(workdir / "checkpoints/attention")  # best.pt, self-describing
    assert loaded.src_lang == "fr" and loaded.model.params.hidden_dim == 16
    last = torch.load(workdir / "checkpoints/attention/last.pt", weights_only=True)
    assert last["training"]["fit"]["epoch"] == 2
    kept = sorted(p.name for p in (workdir / "checkpoints/attention").glob("epoch-*.pt"))
    assert kept == ["epoch-1.pt", "epoch-2.pt"]


def test_stage_resumes_to_train_longer_and_fresh_starts_over(workdir, caplog):
    assert invoke().exit_code == 0
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["train"]["epochs"] = 3
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    caplog.set_level(logging.INFO, logger="nmt.training.loop")
    assert invoke().exit_code == 0
    assert "resuming from checkpoints/attention/last.pt after epoch 2" in caplog.text
    curve = (workdir / "metrics/train/attention/plots/metrics/train_loss.tsv").read_text()
    assert [line.split("\t")[0] for line in curve.splitlines()] == ["step", "1", "2", "3"]
    params["train"]["lr"] = 0.01  # other params: last.pt does not belong to this run
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    assert invoke().exit_code == 0
    last = torch.load(workdir / "checkpoints/attention/last.pt", weights_only=True)
    assert last["training"]["fit"]["epoch"] == 3
    assert len(last["training"]["fit"]["history"]) == 3


def test_step_curves_beside_the_epoch_curves_in_dvc_plots(workdir):
    edit_params(workdir, "train", log_every=3)
    assert invoke().exit_code == 0
    steps = workdir / "metrics/train/attention/steps/plots/metrics"
    loss = (steps / "train_loss.tsv").read_text().splitlines()
    assert loss[0] == "step\ttrain_loss" and len(loss) > 4  # 2 epochs of 8 steps
    for name in ("lr", "teacher_forcing", "tokens_per_s"):
        assert len((steps / f"{name}.tsv").read_text().splitlines()) == len(loss)
    # dvc draws both from dvc.yaml's plots (the attention model's: gru did not train here)
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    (workdir / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}))
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=workdir, check=True)
    shown = subprocess.run(
        [dvc, "plots", "show", "--json"], cwd=workdir, check=True, capture_output=True, text=True
    )
    data = json.loads(shown.stdout)["data"]

    def points(title):
        (plot,) = data[title]
        return [v["step"] for v in plot["content"]["data"]["values"]]

    assert points("Training loss (per target token)") == ["1", "2"]
    assert points("Training loss per step") == [line.split("\t")[0] for line in loss[1:]]
    assert len(points("Training speed per step")) == len(loss) - 1


def test_processes_start_torchrun_with_the_stage_s_own_command(workdir, monkeypatch):
    edit_params(workdir, "train", processes=2)
    calls = []

    def execv(path, argv):
        calls.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(train_stage.os, "execv", execv)
    monkeypatch.setattr(train_stage.sys, "argv", ["stages/train.py", *ARGS])
    CliRunner().invoke(train_stage.main, ARGS)
    (argv,) = calls
    assert argv[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert argv[5:] == ["stages/train.py", *ARGS]
    # under a torchrun of another size the stage refuses to start, naming the param
    monkeypatch.setenv("WORLD_SIZE", "3")
    result = CliRunner().invoke(train_stage.main, ARGS)
    assert result.exit_code == 1 and "train.processes is 2 but torchrun started 3" in result.output


def test_two_processes_under_torchrun_write_what_one_does(workdir):
    edit_params(workdir, "train", processes=2, threads=1, log_every=4)
    stage = str(ROOT / "stages" / "train.py")
    done = subprocess.run(
        [sys.executable, stage, *ARGS, "--progress", "off"], cwd=workdir, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "process 2 of 2" in done.stdout + done.stderr
    summary = json.loads((workdir / "metrics/train/attention.json").read_text())
    assert summary["processes"] == 2 and summary["final_epoch"] == 2
    steps = workdir / "metrics/train/attention/steps/plots/metrics/train_loss.tsv"
    assert len(steps.read_text().splitlines()) > 3
    kept = sorted(p.name for p in (workdir / "checkpoints/attention").iterdir())
    assert kept == ["best.pt", "epoch-1.pt", "epoch-2.pt", "last.pt"]


def test_when_rank_0_fails_every_process_stops_and_the_stage_fails(workdir):
    edit_params(workdir, "train", processes=2, threads=1)
    (workdir / "checkpoints").write_text("a file where the folder should be")
    stage = str(ROOT / "stages" / "train.py")
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, stage, *ARGS, "--progress", "off"], cwd=workdir, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    # rank 0 cannot write best.pt; rank 1, waiting for it, fails too instead of hanging
    assert done.returncode != 0 and time.monotonic() - began < 60
    assert "NotADirectoryError" in done.stderr or "FileExistsError" in done.stderr
    assert not (workdir / "metrics/train/attention.json").exists()


def test_unknown_model_is_a_clear_error(workdir):
    result = CliRunner().invoke(train_stage.main, [*ARGS[:1], "nope", *ARGS[2:]])
    assert result.exit_code != 0 and "models.nope" in result.output


def test_dvc_yaml_train_stage_lists_what_the_stage_reads():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    train = stages["train"]["do"]
    assert train["params"] == [
        "seed", "data.src_lang", "data.tgt_lang", "prepare.normalize", "models.${key}", "train",
    ]  # fmt: skip
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in train["outs"]]
    assert outs == ["checkpoints/${key}", "metrics/train/${key}"]
    assert train["outs"][0]["checkpoints/${key}"]["persist"] is True


def test_a_diverging_run_fails_the_stage_and_leaves_no_checkpoint(workdir):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["train"].update(lr=1e37, clip_grad_norm=None)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(train_stage.main, ARGS)
    assert result.exit_code != 0
    assert "training diverged at epoch 1, step" in result.output and "train.lr" in result.output
    assert not (workdir / "checkpoints/attention/best.pt").exists()
    assert not (workdir / "metrics/train/attention.json").exists()


def test_checkpoints_record_the_longest_training_source(workdir):
    assert invoke().exit_code == 0
    loaded = load_model(workdir / "checkpoints/attention")
    assert loaded.meta["train_max_src_tokens"] == 5  # reversal(): 2 to 5 digits


def edit_params(workdir, section, **values):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params.setdefault(section, {}).update(values)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def test_a_typo_in_a_section_the_stage_does_not_read_does_not_stop_it(workdir):
    edit_params(workdir, "evaluate", beam_sise=3)
    edit_params(workdir, "vocab", kind="bytes")
    # An unknown model fails right after the params are read: they loaded.
    result = CliRunner().invoke(train_stage.main, [*ARGS[:1], "nope", *ARGS[2:]])
    assert result.exit_code == 1, result.output
    assert "models.nope is not defined" in result.output and "beam_sise" not in result.output


@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("train", {"epoch": 3}, "train.epoch: unknown key"),
        ("train", {"checkpoint_every": 0}, "train.checkpoint_every: Input should be greater"),
        ("train", {"log_every": 0}, "train.log_every: Input should be greater"),
        ("train", {"checkpoint_minutes": 0}, "train.checkpoint_minutes: Input should be greater"),
        ("data", {"src_lnag": "fr"}, "data.src_lnag: unknown key"),
        ("prepare", {"normalise": {}}, "prepare.normalise: unknown key"),
        (
            "models",
            {"attention": {"hidden_dim": 16, "hiden_dim": 8}},
            "models.attention.hiden_dim: unknown key",
        ),
        ("seed", None, "seed: Input should be a valid integer"),
    ],
)
def test_a_typo_in_a_section_the_stage_reads_stops_it_naming_the_key(workdir, section, values, key):
    if values is None:
        (workdir / "params.yaml").write_text(
            (workdir / "params.yaml").read_text().replace("seed: 3", "seed: three")
        )
    else:
        edit_params(workdir, section, **values)
    result = CliRunner().invoke(train_stage.main, ARGS)
    assert result.exit_code == 1, result.output
    assert key in result.output and "Traceback" not in result.output
    assert not (workdir / "models").exists()
