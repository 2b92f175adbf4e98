import io
import os
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nmt.cli import _chunk_size, cli
from nmt.inference.search import SearchSettings
from nmt.inference.translate import DEFAULT_MAX_SOURCE_TOKENS, Translator
from test_translate import SRC_WORDS, make_checkpoint

ROOT = Path(__file__).resolve().parents[1]


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
    for bad in ("0", "two"):
        threads = translate("--model", str(ckpt), "--threads", bad, "x")
        assert threads.exit_code == 2 and "--threads" in threads.output


def test_translate_computes_with_the_threads_asked_for(tmp_path: Path, one_thread):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    result = translate("--model", str(ckpt), "--threads", "2", "le chat")
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 2


def test_long_lines_are_truncated_with_a_warning(tmp_path: Path):
    make_checkpoint(tmp_path / "m/best.pt", train_max_src_tokens=12)
    long = " ".join(["le chat est noir ."] * 1000)  # 5,000 pieces
    start = time.perf_counter()
    by_default = translate("--model", str(tmp_path / "m"), "--beam", "5", "le chat", long)
    elapsed = time.perf_counter() - start
    assert by_default.exit_code == 0, by_default.output
    assert len(by_default.stdout.split("\n")) == 3
    assert by_default.stderr == "warning: line 2: 5000 source pieces, truncated to the first 12\n"
    assert elapsed < 30  # well under a second; without the cap, 10,010 steps of beam 5
    head = " ".join(long.split()[:5])
    capped = translate("--model", str(tmp_path / "m"), "--max-source-tokens", "5", input=long)
    assert capped.exit_code == 0, capped.output
    assert capped.stdout == translate("--model", str(tmp_path / "m"), head).stdout
    assert "line 1: 5000 source pieces, truncated to the first 5" in capped.stderr
    assert translate("--model", str(tmp_path / "m"), "--max-source-tokens", "0", "x").exit_code == 2
    # the help names the fixed default that the library applies to older checkpoints
    help_text = " ".join(translate("--help").output.split())
    assert f"else {DEFAULT_MAX_SOURCE_TOKENS}." in help_text


def test_undecodable_bytes_on_stdin_affect_only_their_line(tmp_path: Path):
    make_checkpoint(tmp_path / "m/best.pt", subword=True)
    model = str(tmp_path / "m")
    result = translate("--model", model, input=b"Bonjour.\nCaf\xc3 au lait.\n\nle chat\n\xff")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert len(lines) == 6 and lines[-1] == "" and lines[2] == ""
    assert result.stderr.splitlines() == [
        "warning: line 2: bytes that are not UTF-8 replaced with U+FFFD",
        "warning: line 5: bytes that are not UTF-8 replaced with U+FFFD",
    ]
    clean = translate("--model", model, "Bonjour.", "Caf\ufffd au lait.", "", "le chat", "\ufffd")
    assert clean.stdout == result.stdout and clean.stderr == ""


def test_undecodable_arguments_affect_only_their_line(tmp_path: Path):
    make_checkpoint(tmp_path / "m/best.pt", subword=True)
    # click hands over argv bytes that are not UTF-8 as surrogate escapes
    args = ["Bonjour.", os.fsdecode(b"Caf\xc3 au lait."), "le chat"]
    result = translate("--model", str(tmp_path / "m"), "--beam", "2", *args)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split("\n")) == 4
    assert result.stderr == "warning: line 2: bytes that are not UTF-8 replaced with U+FFFD\n"


def test_lines_typed_at_a_terminal_are_translated_one_at_a_time(tmp_path: Path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert _chunk_size((), Terminal()) == 1
    assert _chunk_size(("le chat",), Terminal()) is None
    assert _chunk_size((), io.StringIO()) is None
    make_checkpoint(tmp_path / "m/best.pt")
    chunks = []
    real = Translator.translate_stream

    def spy(self, texts, settings, normalized=False, chunk_size=None):
        chunks.append(chunk_size)
        return real(self, texts, settings, normalized, chunk_size)

    monkeypatch.setattr(Translator, "translate_stream", spy)
    assert translate("--model", str(tmp_path / "m"), input="le chat\n").exit_code == 0
    assert chunks == [None]


def _read_lines(fd: int, n: int, deadline: float) -> list[str]:
    """The first ``n`` lines from the pipe ``fd``, or fewer if they have not come by
    ``deadline`` (read unbuffered: a buffered reader hides what it holds from select)."""
    data = b""
    while data.count(b"\n") < n:
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        if not (more := os.read(fd, 65536)):
            break
        data += more
    return data.decode().split("\n")[:n]


def test_output_of_a_chunk_comes_while_stdin_is_still_open(tmp_path: Path):
    make_checkpoint(tmp_path / "m/best.pt")
    texts = [" ".join(SRC_WORDS[: 1 + i % 7]) for i in range(12)]
    want = translate("--model", str(tmp_path / "m"), *texts).stdout.splitlines()
    # --batch-size 1: chunks of translate.CHUNK_BATCHES (8) lines
    cmd = [sys.executable, "-m", "nmt.cli", "translate", "--model", str(tmp_path / "m")]
    cmd += ["--device", "cpu", "--batch-size", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("".join(t + "\n" for t in texts[:9]).encode())
        proc.stdin.flush()
        deadline = time.monotonic() + 120  # start-up (torch) is slow on a loaded machine
        first = _read_lines(proc.stdout.fileno(), 8, deadline)
        still_open = proc.poll() is None
        proc.stdin.write("".join(t + "\n" for t in texts[9:]).encode())
        proc.stdin.close()
        rest = _read_lines(proc.stdout.fileno(), 5, time.monotonic() + 120)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, stderr
    assert first == want[:8] and still_open
    assert rest == [*want[8:], ""]


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


@pytest.mark.parametrize("args", [["profile", "list"], ["report", "--repo", "."]])
def test_report_and_profile_do_not_import_torch(args, tmp_path: Path):
    # `nmt report` fails here (no DVC project in tmp_path); what it imported is the point
    cmd = [sys.executable, "-X", "importtime", "-m", "nmt.cli", *args]
    cwd = ROOT if args[0] == "profile" else tmp_path
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "nmt.config" in imported
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}
