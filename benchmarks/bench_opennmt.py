"""Training speed against OpenNMT-py on the same data, model size and batches, one sitting.

    python -m venv .venv-onmt
    .venv-onmt/bin/pip install OpenNMT-py==3.0.4 torch==2.13.0   # torch pinned: the CPU wheel
    python benchmarks/bench_opennmt.py --onmt-train .venv-onmt/bin/onmt_train --avx2

The task is ``bench_train.py``'s reference configuration: Tatoeba French->English,
normalised like the PyTorch tutorial, at most 15 tokens a side, word vocabularies of the
words seen at least twice in the training pairs (the same words for both), a
unidirectional one-layer GRU encoder of 256 and a one-layer GRU decoder of 256 with additive
(MLP, Bahdanau) attention, embeddings of 256, no dropout, batches of 64 sentences, Adam at
1e-3, loss per target token, no gradient clipping, 2 torch threads, fp32.

What still differs, as far as the two allow: OpenNMT-py's decoder attends with its new
state and feeds the attentional vector to the next step (input feeding); ours attends
with the previous state and feeds the context into the GRU's input and the readout. Its
batches come from its own length-bucketing iterator (``num_workers`` data-loader
processes), ours from ``make_batches``. Both count target tokens the same way (words +
end of sentence, no padding).

``--avx2`` caps PyTorch, oneDNN and MKL at AVX2 (``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``) for both, as an approximation of an
AVX2-only CPU on a newer one; the script prints what each library then reports. Figures
only, no asserts; run it on an otherwise quiet machine.
"""

from __future__ import annotations

import nmt  # noqa: F401  (first: it sets how OpenMP threads wait, before torch loads them)

# isort: split
import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from bench_threads import measure
from bench_train import MAX_TOKENS, load_data, read_texts, vocabulary_counts
from machine import AVX2_ONLY, print_machine
from nmt.threads import OPENMP_VARIABLES

# Prints the ISA that each library uses under the environment it runs in.
ISA_PROBE = """
import torch
print("PyTorch kernels:", torch.backends.cpu.get_cpu_capability())
a = torch.randn(256, 256)
a @ a  # MKL
packed = torch.ops.mkldnn._reorder_linear_weight(a, 64)
torch.ops.mkldnn._linear_pointwise(a[:64], packed, None, "none", [], "")  # oneDNN
"""
STEP = re.compile(r"Step (\d+)/\s*\d+;.*?(\d+)/\s*(\d+) tok/s")


def isa_report(env: dict[str, str]) -> list[str]:
    """What PyTorch, oneDNN and MKL say they use under ``env``."""
    out = subprocess.run(
        [sys.executable, "-c", ISA_PROBE],
        env={**env, "MKL_VERBOSE": "1", "ONEDNN_VERBOSE": "1"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    found = [line for line in lines if line.startswith("PyTorch kernels")]
    found += [line for line in lines if "onednn_verbose" in line and ",isa:" in line][:1]
    found += [line for line in lines if re.match(r"MKL_VERBOSE (oneMKL|Intel)", line)][:1]
    return found


def write_corpus(folder: Path) -> dict[str, Path]:
    """The training pairs as OpenNMT-py's text files, and vocabularies with counts."""
    src, tgt, train_idx, _ = read_texts()
    paths = {name: folder / name for name in ("train.fr", "train.en", "vocab.fr", "vocab.en")}
    sides = ((src, "train.fr", "vocab.fr"), (tgt, "train.en", "vocab.en"))
    for texts, text_file, vocab_file in sides:
        paths[text_file].write_text("".join(texts[i] + "\n" for i in np.sort(train_idx)))
        counts = vocabulary_counts(texts, train_idx)
        paths[vocab_file].write_text("".join(f"{w} {c}\n" for w, c in counts.most_common()))
    return paths


def onmt_config(paths: dict[str, Path], folder: Path, steps: int, report: int, workers: int) -> str:
    """OpenNMT-py's YAML for the reference configuration (see the module doc)."""
    return f"""
data:
  corpus_1: {{path_src: {paths["train.fr"]}, path_tgt: {paths["train.en"]}}}
save_data: {folder}/run
src_vocab: {paths["vocab.fr"]}
tgt_vocab: {paths["vocab.en"]}
src_words_min_frequency: 2
tgt_words_min_frequency: 2
src_seq_length: {MAX_TOKENS}
tgt_seq_length: {MAX_TOKENS}
save_model: {folder}/model
save_checkpoint_steps: {steps * 10}
valid_steps: {steps * 10}
train_steps: {steps}
report_every: {report}
seed: 0
world_size: 1
gpu_ranks: []
num_workers: {workers}
encoder_type: rnn
decoder_type: rnn
rnn_type: GRU
enc_layers: 1
dec_layers: 1
hidden_size: 256
word_vec_size: 256
global_attention: mlp
input_feed: 1
bridge: false
dropout: [0.0]
attention_dropout: [0.0]
batch_type: sents
batch_size: 64
normalization: tokens
optim: adam
learning_rate: 0.001
max_grad_norm: 0
param_init: 0.1
"""


def onmt_rate(onmt_train: Path, config: Path, env: dict[str, str]) -> tuple[float, list[int]]:
    """OpenNMT-py's target tokens/s: the mean of its report windows after the first."""
    out = subprocess.run(
        [str(onmt_train), "-config", str(config)], env=env, capture_output=True, text=True
    )
    log = out.stdout + out.stderr
    if out.returncode != 0:
        raise click.ClickException(f"onmt_train failed:\n{log[-3000:]}")
    rates = [int(m.group(3)) for m in STEP.finditer(log)]
    if len(rates) < 2:
        raise click.ClickException(f"no report windows in onmt_train's log:\n{log[-3000:]}")
    return float(np.mean(rates[1:])), rates


@click.command()
@click.option("--onmt-train", type=click.Path(exists=True, path_type=Path), required=True,
              help="OpenNMT-py's onmt_train, in a venv of its own.")  # fmt: skip
@click.option("--avx2", is_flag=True, help="Cap PyTorch, oneDNN and MKL at AVX2 for both.")
@click.option("--steps", type=click.IntRange(min=100), default=400, show_default=True)
@click.option("--report-every", type=click.IntRange(min=10), default=100, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="OpenNMT-py's data-loader processes.")  # fmt: skip
def main(onmt_train: Path, avx2: bool, steps: int, report_every: int, workers: int) -> None:
    """Target tokens/s of our batched trainer and of OpenNMT-py, same task and sizes."""
    print_machine(2)
    env = {k: v for k, v in os.environ.items() if k not in AVX2_ONLY}
    env |= AVX2_ONLY if avx2 else {}
    shown = [f"{k}={env[k]}" for k in (*AVX2_ONLY, *OPENMP_VARIABLES) if k in env]
    click.echo(f"environment for both: {', '.join(shown) or 'as given'}")
    for line in isa_report(env):
        click.echo(f"  {line}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_corpus(folder)
        config = folder / "onmt.yaml"
        config.write_text(onmt_config(paths, folder, steps, report_every, workers))
        onmt, windows = onmt_rate(onmt_train, config, {**env, "OMP_NUM_THREADS": "2"})
        click.echo(f"OpenNMT-py: {onmt:,.0f} target tok/s (per {report_every} steps: {windows})")
        data_file = folder / "data.pkl"
        data_file.write_bytes(pickle.dumps(load_data()))
        ours_env = {k: env[k] for k in (*AVX2_ONLY, *OPENMP_VARIABLES) if k in env}
        ours = measure(data_file, 2, ours_env, steps, 1)
        click.echo(f"nmt (batched trainer, {steps} batches): {ours:,.0f} target tok/s")
    click.echo(f"nmt / OpenNMT-py: {ours / onmt:.2f}x")


if __name__ == "__main__":
    main()
