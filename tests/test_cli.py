import shlex
from pathlib import Path

import torch
from click.testing import CliRunner

from nmt.cli import cli
from nmt.decoding import SearchSettings
from nmt.translate import Translator
from test_translate import make_checkpoint


def translate(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["translate", *args], input=input)


def test_translate_arguments_and_stdin_agree_with_the_library(tmp_path: Path):
    make_checkpoint(tmp_path / "m/best.pt")
    texts = ["Le chat est noir.", "", "un grand chien , la maison"]
    want = Translator.from_checkpoint(tmp_path / "m", torch.device("cpu")).translate(
        texts, SearchSettings(beam_size=3)
    )
    by_args = translate("--model", str(tmp_path / "m"), "--beam", "3", "--device", "cpu", *texts)
    assert by_args.exit_code == 0, by_args.output
    assert by_args.output.split("\n")[:-1] == want
    by_stdin = translate(
        "--model", str(tmp_path / "m/best.pt"), "--beam", "3", "--batch-size", "1",
        input="\n".join(texts) + "\n",
    )  # fmt: skip
    assert by_stdin.exit_code == 0, by_stdin.output
    assert by_stdin.output.split("\n")[:-1] == want
    assert translate("--model", str(tmp_path / "m"), input="").output == ""


def test_translate_errors_are_clear(tmp_path: Path):
    missing = translate("--model", str(tmp_path / "nope.pt"), "bonjour")
    assert missing.exit_code == 1
    assert "no such checkpoint" in missing.output and "Traceback" not in missing.output
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    junk = translate("--model", str(tmp_path / "junk.pt"), "bonjour")
    assert junk.exit_code == 1 and "not a readable checkpoint" in junk.output
    torch.save({"format": 1, "model_state": {}}, tmp_path / "old.pt")
    old = translate("--model", str(tmp_path / "old.pt"), "bonjour")
    assert old.exit_code == 1 and "incompatible" in old.output
    ckpt = make_checkpoint(tmp_path / "ok.pt")
    payload = torch.load(ckpt, weights_only=True)
    payload["model_params"]["hidden_dim"] = 99  # weights no longer fit
    torch.save(payload, tmp_path / "bad.pt")
    bad = translate("--model", str(tmp_path / "bad.pt"), "bonjour")
    assert bad.exit_code == 1 and "bad.pt" in bad.output
    beam = translate("--model", str(ckpt), "--beam", "0", "x")
    assert beam.exit_code == 2


def _profiles(tmp_path):
    (tmp_path / "params.yaml").write_text(
        "seed: 1\nmodels:\n  gru: {hidden_dim: 8}\n  attention: {hidden_dim: 8}\n"
    )
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/small.yaml").write_text(
        "# Small models.\nmodels:\n  attention: null\n  gru: {hidden_dim: 4}\n"
    )
    (tmp_path / "profiles/bad.yaml").write_text("train: {epochs: 0}\n")


def test_profile_apply_args_and_list(tmp_path, monkeypatch):
    import yaml

    _profiles(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    listed = runner.invoke(cli, ["profile", "list"])
    assert listed.exit_code == 0 and "small" in listed.output and "Small models." in listed.output
    args = runner.invoke(cli, ["profile", "args", "small"])
    assert args.exit_code == 0
    assert shlex.split(args.output) == [
        "-S",
        "~models.attention",
        "-S",
        "++models.gru.hidden_dim=4",
    ]
    applied = runner.invoke(cli, ["profile", "apply", "small"])
    assert applied.exit_code == 0, applied.output
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["models"] == {
        "gru": {"hidden_dim": 4}
    }


def test_bad_profile_is_refused_naming_the_key(tmp_path, monkeypatch):
    _profiles(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = (tmp_path / "params.yaml").read_text()
    result = CliRunner().invoke(cli, ["profile", "apply", "bad"])
    assert result.exit_code == 1 and "train.epochs" in result.output
    assert (tmp_path / "params.yaml").read_text() == before
    missing = CliRunner().invoke(cli, ["profile", "apply", "nope"])
    assert missing.exit_code == 1 and "known: bad, small" in missing.output
