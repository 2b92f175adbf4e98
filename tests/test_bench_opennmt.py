"""benchmarks/bench_opennmt.py: the OpenNMT-py configuration and the reading of its log."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
bench = importlib.import_module("bench_opennmt")


def test_the_config_is_the_reference_model(tmp_path: Path) -> None:
    paths = {name: tmp_path / name for name in ("train.fr", "train.en", "vocab.fr", "vocab.en")}
    config = yaml.safe_load(bench.onmt_config(paths, tmp_path, steps=400, report=100, workers=1))
    assert config["data"]["corpus_1"] == {
        "path_src": str(paths["train.fr"]), "path_tgt": str(paths["train.en"])
    }  # fmt: skip
    assert (config["rnn_type"], config["hidden_size"], config["word_vec_size"]) == ("GRU", 256, 256)
    assert (config["enc_layers"], config["dec_layers"], config["global_attention"]) == (1, 1, "mlp")
    assert (config["batch_type"], config["batch_size"], config["optim"]) == ("sents", 64, "adam")
    assert config["train_steps"] == 400 and config["gpu_ranks"] == []
    assert config["save_checkpoint_steps"] > 400  # no checkpoint inside the timing


def test_the_target_rate_is_read_from_each_report_line() -> None:
    log = "\n".join(
        f"[2026-12-02 15:00:00,000 INFO] Step {step}/  400; acc: 12.3; ppl: 345.6; xent: 5.8; "
        f"lr: 0.00100; sents:    6400; bsz:  102/  99/64; 2345/{rate} tok/s;     29 sec;"
        for step, rate in ((100, 1500), (200, 2213), (300, 2301))
    )
    assert [int(m.group(3)) for m in bench.STEP.finditer(log)] == [1500, 2213, 2301]
