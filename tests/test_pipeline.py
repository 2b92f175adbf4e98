"""The real pipeline, end to end, on the tiny profile: every stage on the real corpora
(from NMT_DATA_MIRROR when set, else the network), then DVC's bookkeeping: a second
``dvc repro`` does nothing, and a training param re-runs only training and evaluation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.integration


def run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{out}"
    return out


def ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def copy_project(dest: Path) -> Path:
    """A git repository at ``dest`` holding the project's files, without its results."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("metrics/", "dvc.lock")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], dest)
    return dest


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tracked project with the tiny profile applied, reproduced once."""
    dest = copy_project(tmp_path_factory.mktemp("pipeline") / "repo")
    run([str(BIN / "nmt"), "profile", "apply", "tiny"], dest)
    out = run([str(BIN / "dvc"), "repro"], dest)
    expected = {"check_params", "download", "prepare", "vocab", "train@gru", "train@attention"}
    expected |= {"average@gru", "evaluate@gru", "card@gru", "compare@attention_vs_gru"}
    expected |= {"train@transformer", "evaluate@transformer"}  # the tiny profile adds it
    assert expected <= ran_stages(out)
    return dest


def test_every_stage_writes_its_outputs_and_metrics(repo: Path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    manifest = json.loads((repo / "data/raw/manifest.json").read_text())
    assert set(params["data"]["corpora"]) | set(params["data"]["test_sets"]) <= set(manifest)
    assert all(len(entry["sha256"]) == 64 for entry in manifest.values())
    for split in ("train", "valid", "test", *params["data"]["test_sets"]):
        assert (repo / f"data/prepared/{split}.parquet").is_file()

    data = json.loads((repo / "metrics/data.json").read_text())
    for name, cap in params["prepare"]["max_pairs"].items():
        counts = data["corpora"][name]
        assert counts["kept"] == cap and counts["read"] == counts["kept"] + counts["dropped"]
    assert data["test_sets"]["newstest2014"]["kept"] == 3003  # kept whole
    assert sum(data["splits"][s] for s in ("train", "valid", "test")) > 3000

    vocab = json.loads((repo / "metrics/vocab.json").read_text())
    assert vocab["kind"] == "subword" and vocab["src_vocab_size"] == params["vocab"]["vocab_size"]

    for model in params["models"]:
        delivered = torch.load(repo / f"models/{model}/model.pt", weights_only=True)
        assert delivered["delivered"] == {"epochs": [1], "average_last": 1}
        best = torch.load(repo / f"checkpoints/{model}/best.pt", weights_only=True)
        for name, weights in best["model_state"].items():
            assert torch.equal(weights, delivered["model_state"][name]), name
        card = (repo / f"models/{model}/model_card.md").read_text()
        assert f"# {model}: fr → en" in card and "BLEU signature: `nrefs:1|" in card
        assert "CC BY 2.0 FR" in card and "| europarl | " in card and "Koehn (2005)" in card
        train = json.loads((repo / f"metrics/train/{model}.json").read_text())
        assert train["best_epoch"] == 1 and train["parameters"] > 0
        assert {"valid_bleu", "valid_loss", "valid_loss_free"} <= set(train["best"])
        evaluation = json.loads((repo / f"metrics/eval/{model}.json").read_text())
        assert evaluation["newstest2014"]["sentences"] == params["evaluate"]["max_sentences"]
        assert evaluation["heldout"]["sentences"] == data["splits"]["test"]
        for test_set in ("heldout", "newstest2014"):
            assert set(evaluation[test_set]["beam"]) == {"bleu", "chrf"}
        assert evaluation["signatures"]["bleu"].startswith("nrefs:1|case:mixed")
        assert list((repo / f"metrics/eval/{model}/attention").glob("*.png"))
    compare = json.loads((repo / "metrics/eval/compare/attention_vs_gru.json").read_text())
    assert 0.0 <= compare["newstest2014"]["bleu"]["p_value"] <= 1.0

    shown = json.loads(run([str(BIN / "dvc"), "metrics", "show", "--json"], repo))
    files = next(iter(shown.values()))["data"]
    assert {"metrics/eval/gru.json", "metrics/eval/attention.json"} <= set(files)
    plots = json.loads(run([str(BIN / "dvc"), "plots", "show", "--json"], repo))["data"]
    assert {"Training loss (per target token)", "Validation BLEU (greedy)"} <= set(plots)
    assert "metrics/eval/attention/attention/heldout-0.png" in plots
    assert not any(p.get("errors") for entries in plots.values() for p in entries)
    report = run([str(BIN / "nmt"), "report"], repo)
    assert "| workspace | attention | newstest2014 | 200 |" in report
    assert "| workspace | transformer | newstest2014 | 200 |" in report


def test_a_model_is_an_artifact_that_dvc_fetches_from_a_remote(repo: Path, tmp_path: Path):
    remote = tmp_path / "remote"
    run([str(BIN / "dvc"), "remote", "add", "-d", "local", str(remote)], repo)
    run([str(BIN / "dvc"), "push"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"], repo)
    # a version of the artifact: the git tag `gto register attention` makes
    tag = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "tag", "-a", "attention@v1.0.0"]
    run([*tag, "-m", "Registering artifact attention version v1.0.0"], repo)
    listed = json.loads(run([str(BIN / "dvc"), "ls", "--json", str(repo), "models"], tmp_path))
    assert {"gru", "attention"} <= {entry["path"] for entry in listed}
    out = tmp_path / "fetched"
    run([str(BIN / "dvc"), "artifacts", "get", str(repo), "attention", "-o", str(out)], tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["model.pt", "model_card.md"]
    assert (out / "model.pt").read_bytes() == (repo / "models/attention/model.pt").read_bytes()
    translated = run([str(BIN / "nmt"), "translate", "--model", str(out), "Bonjour ."], tmp_path)
    assert translated.strip()


def test_second_repro_does_nothing(repo: Path):
    out = run([str(BIN / "dvc"), "repro"], repo)
    assert ran_stages(out) == set()
    assert "up to date" in out


def restored_stages(output: str) -> set[str]:
    marker = "' is cached - skipping run"
    return {line.split("'")[1] for line in output.splitlines() if marker in line}


def test_a_clone_pulls_the_results_from_a_shared_remote_instead_of_recomputing(
    repo: Path, tmp_path: Path
):
    """The README's shared remote: push the run's outputs and run cache from one clone;
    a fresh clone pulls them, is up to date, translates, and restores what it lacks."""
    dvc = str(BIN / "dvc")
    run([dvc, "remote", "add", "-d", "shared", str(tmp_path / "shared")], repo)
    run([dvc, "push", "--run-cache"], repo)
    run(["git", "add", "-A"], repo)
    commit = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--allow-empty"]
    run([*commit, "-qm", "run, with a shared remote"], repo)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run([dvc, "pull", "--run-cache"], clone)
    assert json.loads(run([dvc, "status", "--json"], clone)) == {}
    for path in ("checkpoints/attention/best.pt", "models/attention/model.pt"):
        assert (clone / path).read_bytes() == (repo / path).read_bytes(), path
    nmt = str(BIN / "nmt")
    translated = run([nmt, "translate", "--model", "models/attention", "Bonjour ."], clone)
    assert translated.strip()

    # Outputs lost from the workspace come back from the cache: no stage runs.
    for path in ("data/raw", "models"):
        shutil.rmtree(clone / path)
    out = run([dvc, "repro"], clone)
    assert ran_stages(out) == set(), out
    restored = {"download", "average@gru", "average@attention", "card@gru", "card@attention"}
    assert restored <= restored_stages(out)
    # Nothing was recomputed: the git-tracked metrics (timings included) are untouched.
    assert run(["git", "status", "--porcelain"], clone) == ""

    # Without dvc.lock, only the run cache pulled from the remote knows these runs.
    (clone / "dvc.lock").unlink()
    shutil.rmtree(clone / "data/raw")
    (clone / "models/attention/model.pt").unlink()
    out = run([dvc, "repro", "-s", "download", "average@attention"], clone)
    assert ran_stages(out) == set(), out
    assert restored_stages(out) == {"download", "average@attention"}
    for path in ("data/raw/manifest.json", "models/attention/model.pt"):
        assert (clone / path).read_bytes() == (repo / path).read_bytes(), path


def test_forced_training_trains_again_to_the_same_bytes(repo: Path):
    before = {p.name: p.read_bytes() for p in (repo / "checkpoints/gru").glob("*.pt")}
    out = run([str(BIN / "dvc"), "repro", "-f", "-s", "train@gru"], repo)
    assert "training from scratch" in out and "epoch 1: train" in out  # not resumed
    after = {p.name: p.read_bytes() for p in (repo / "checkpoints/gru").glob("*.pt")}
    assert set(before) == {"best.pt", "epoch-1.pt", "last.pt"} and after == before
    # the same weights: only the model card, which reports the new run's speed, is stale
    status = run([str(BIN / "dvc"), "status", "--json"], repo)
    assert set(json.loads(status)) == {"card@gru"}, status
    run([str(BIN / "dvc"), "repro"], repo)


def test_training_param_reruns_only_training_and_evaluation(repo: Path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["teacher_forcing"]["ratio"] = 0.5
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run([str(BIN / "dvc"), "repro"], repo)
    stages = ran_stages(out)
    assert stages, out
    rerun = ("check_params", "train@", "average@", "evaluate@", "card@", "compare")
    assert all(s.startswith(rerun) for s in stages)
    assert {"train@gru", "train@attention"} <= stages


def test_a_misspelt_section_stops_repro_naming_it(repo: Path):
    path = repo / "params.yaml"
    good = path.read_text()
    path.write_text(good + "trian: {epochs: 3}\n")
    try:
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        proc = subprocess.run(
            [str(BIN / "dvc"), "repro"], cwd=repo, env=env, capture_output=True, text=True
        )
    finally:
        path.write_text(good)
    assert proc.returncode != 0
    assert "trian: unknown key" in proc.stdout + proc.stderr
    assert ran_stages(proc.stdout) == {"check_params"}  # it runs first, and alone


def run_profile(tmp_path: Path, profile: str, model: str) -> Path:
    """Run ``profile`` by its documented command in a copy of the project; check that it
    ran its own model's stages alone and that ``nmt report`` lists it."""
    dest = copy_project(tmp_path / "repo")
    out = run([str(BIN / "nmt"), "profile", "run", profile], dest)
    assert {"download", "prepare", "vocab", f"train@{model}", f"evaluate@{model}"} <= ran_stages(
        out
    )
    assert not {"train@gru", "train@attention"} & ran_stages(out)
    report = run([str(BIN / "nmt"), "report"], dest)
    rows = [line.split("|")[1:-1] for line in report.splitlines() if profile in line]
    assert rows, report
    (name, row_model, test_set, sentences, *scores) = (cell.strip() for cell in rows[0])
    assert (name, row_model, test_set) == (profile, model, "heldout")
    assert int(sentences) > 0 and all(0.0 <= float(x) <= 100.0 for x in scores)
    return dest


def translate(dest: Path, model: str, texts: list[str]) -> list[str]:
    out = subprocess.run(
        [str(BIN / "nmt"), "translate", "--model", f"models/{model}", "--beam", "1", *texts],
        cwd=dest, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.splitlines()


def test_the_antonym_writeup_system_memorises_its_six_pairs(tmp_path: Path):
    """writeups/002 (a): trained on its six pairs, the character RNN gives back each one's
    antonym, as written ('women' included), and its loss falls to near zero."""
    dest = run_profile(tmp_path, "ref-antonyms-char-rnn", "char_rnn")
    words = ["man", "black", "king", "girl", "up", "high"]
    assert translate(dest, "char_rnn", words) == ["women", "white", "queen", "boy", "down", "low"]
    curve = (dest / "metrics/train/char_rnn/steps/plots/metrics/train_loss.tsv").read_text()
    losses = [float(line.split("\t")[1]) for line in curve.splitlines()[1:]]
    assert len(losses) == 5 and losses[-1] < 0.01 < losses[0]


def test_the_keras_writeup_system_learns_its_hundred_lines(tmp_path: Path):
    """writeups/002 (b): on the first 100 lines of fra.txt the LSTM's training loss falls
    from the uniform guess's to under a fifth of it within its 300 epochs."""
    dest = run_profile(tmp_path, "ref-en-fr-lstm", "lstm")
    curve = (dest / "metrics/train/lstm/plots/metrics/train_loss.tsv").read_text()
    losses = [float(line.split("\t")[-1]) for line in curve.splitlines()[1:]]
    assert len(losses) == 300 and losses[-1] < losses[0] / 5
    assert translate(dest, "lstm", ["run"])[0] in {"cours", "courez"}
