"""Property tests of translation on hostile input: random bytes and random Unicode.

Whatever comes in — bytes that are not UTF-8, lone surrogates, control characters,
combining marks, right-to-left text, emoji, long runs of one character — normalising,
tokenising and translating (with a tiny untrained sentencepiece model) gives exactly one
output line per input line, raises nothing, and takes a bounded time per line. The
examples are derandomised (the same every run, as CI needs) and few enough to run in
about 10 seconds.
"""

from __future__ import annotations

import operator
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmt.cli import cli
from nmt.inference.search import SearchSettings
from nmt.inference.translate import Translator
from test_translate import make_checkpoint

CAP = 32  # the checkpoint's longest training source, in pieces
# Generous: a capped line takes some 0.05 s here; the bound is for a loaded CI machine.
SECONDS_PER_LINE = 2.0

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,  # time is asserted per line, with room for a loaded machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_ODD = st.characters(categories=("Cc", "Cf", "Cs", "Co", "Mn", "Me", "Zl", "Zp", "Zs"))
_RTL = st.characters(min_codepoint=0x0590, max_codepoint=0x08FF)  # Hebrew, Arabic, Syriac…
_EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
_WORDS = st.sampled_from(["le", "chat", "est", "noir", ".", ",", "Café", "\u202e", "e\u0301"])
TEXTS = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(_ODD, _RTL, _EMOJI, _WORDS), max_size=60).map("".join),
    st.builds(operator.mul, st.characters(), st.integers(100, 20_000)),  # one long run
    st.lists(_WORDS, max_size=3_000).map(" ".join),  # a long line of real words
    st.binary(max_size=80).map(lambda b: b.decode("utf-8", "surrogateescape")),
)
LINE_BYTES = st.one_of(
    st.binary(max_size=60),
    TEXTS.map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "m"
    make_checkpoint(path / "best.pt", subword=True, train_max_src_tokens=CAP)
    return path


@pytest.fixture(scope="module")
def translator(model_dir: Path) -> Translator:
    return Translator.from_checkpoint(
        model_dir, torch.device("cpu"), batch_size=4, max_source_tokens="train"
    )


@settings(FUZZ, max_examples=150)
@given(texts=st.lists(TEXTS, min_size=1, max_size=6), beam=st.sampled_from([1, 2]))
def test_any_text_gives_one_line_per_line(translator, one_thread, texts, beam):
    start = time.perf_counter()
    out = list(translator.translate_stream(texts, SearchSettings(beam_size=beam), chunk_size=3))
    elapsed = time.perf_counter() - start
    assert len(out) == len(texts)
    assert all(isinstance(o, str) for o in out)
    assert elapsed < SECONDS_PER_LINE * len(texts)


@settings(FUZZ, max_examples=60)
@given(lines=st.lists(LINE_BYTES, max_size=6), end=st.sampled_from([b"", b"\n", b"\r\n"]))
def test_any_bytes_on_stdin_give_one_line_per_line(model_dir, one_thread, lines, end):
    data = b"\n".join(line.replace(b"\n", b" ") for line in lines) + (end if lines else b"")
    # a line ends at "\n", or at the end of the data when that does not end with "\n"
    count = data.count(b"\n") + (not data.endswith(b"\n") and data != b"")
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["translate", "--model", str(model_dir)], input=data)
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == count
    assert all(w.startswith("warning: line ") for w in result.stderr.splitlines())
    assert elapsed < SECONDS_PER_LINE * (count + 1)  # + 1: loading the checkpoint
