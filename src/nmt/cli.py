"""The ``nmt`` command line (console script ``nmt = nmt.cli:main``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from nmt.config.evaluate import EvaluateParams

if TYPE_CHECKING:
    from nmt.progress import Progress, ProgressMode

EVALUATE = EvaluateParams()  # `nmt translate` decodes as the evaluate stage does by default


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Neural machine translation: train, evaluate and use seq2seq models."""


def _inputs(texts: tuple[str, ...]) -> Iterable[str]:
    """TEXTS, or the lines of standard input, read as bytes and lazily.

    Undecodable bytes reach the translator as surrogate escapes (click's argv does the
    same), which it replaces with U+FFFD and a warning naming the line.
    """
    if texts:
        return texts
    from nmt.inference.translate import read_lines

    return read_lines(sys.stdin.buffer)


def _chunk_size(texts: tuple[str, ...], stdin: IO[str]) -> int | None:
    """1 for lines typed at a terminal (each translated as it comes), else None: the
    translator's chunks of several batches."""
    return 1 if not texts and stdin.isatty() else None


class _EchoWarnings(logging.Handler):
    """Warnings of the library's loggers on stderr, as ``warning: <message>``."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


@contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    logger = logging.getLogger("nmt")
    handler = _EchoWarnings(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _write_lines(lines: Iterable[str]) -> None:
    """One line of UTF-8 per item on stdout, flushed as each comes (the input may be a
    pipe that is still being written to)."""
    out = sys.stdout.buffer
    for line in lines:
        # a translation holds no line break (the normaliser collapses whitespace); the
        # guard keeps one output line per input line whatever the vocabulary holds
        line = line.replace("\r", " ").replace("\n", " ")
        out.write(line.encode("utf-8", "replace") + b"\n")
        out.flush()


def _counted(items: Iterable[str], progress: Progress) -> Iterator[str]:
    """``items``, each counted by ``progress`` once it has been handled."""
    for item in items:
        yield item
        progress.update()


# Options that `nmt translate` and `nmt serve` share.
_MODEL = click.option(
    "--model",
    "checkpoint",
    type=click.Path(path_type=Path),
    required=True,
    help="A checkpoint file, or a model folder (its model.pt).",
)
_LENGTH_PENALTY = click.option(
    "--length-penalty",
    type=click.FloatRange(min=0.0),
    default=EVALUATE.length_penalty,
    show_default=True,
    help="GNMT length-penalty alpha (beam search).",
)
_MAX_LENGTH_RATIO = click.option(
    "--max-length-ratio",
    type=click.FloatRange(min=0.0, min_open=True),
    default=EVALUATE.max_length_ratio,
    show_default=True,
    help=f"Output cap: ratio x source tokens + {EVALUATE.max_length_extra}.",
)
_DEVICE = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)


class _ThreadsType(click.ParamType):
    """``auto`` or a whole number >= 1."""

    name = "auto|N"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):  # type: ignore[no-untyped-def]
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
            number = value
        elif isinstance(value, str) and value.isdigit():
            number = int(value)
        else:
            self.fail(f"{value!r} is not 'auto' or a whole number", param, ctx)
        if number != "auto" and number < 1:
            self.fail(f"{value!r} is below 1", param, ctx)
        return number


_THREADS = click.option(
    "--threads",
    type=_ThreadsType(),
    default="auto",
    show_default=True,
    help="torch's CPU threads; auto: the CPUs this process may use (affinity, cgroup quota).",
)


def _translator(
    checkpoint: Path,
    device: str,
    threads: str | int,
    batch_size: int,
    max_tokens: int,
    max_source_tokens: int | None,
):  # type: ignore[no-untyped-def]
    """The Translator of ``checkpoint``, or a ClickException naming what is wrong."""
    # torch and the model code load only here: `nmt report` and `nmt profile` need neither
    from nmt.device import DeviceError, resolve_device
    from nmt.inference.translate import Translator
    from nmt.threads import use_threads
    from nmt.training.checkpoint import CheckpointError

    use_threads(threads, "--threads")
    try:
        return Translator.from_checkpoint(
            checkpoint, resolve_device(device), batch_size, max_tokens, max_source_tokens or "train"
        )
    except (CheckpointError, DeviceError) as err:
        raise click.ClickException(str(err)) from None


@cli.command()
@_MODEL
@click.argument("texts", nargs=-1)
@click.option(
    "--beam",
    type=click.IntRange(min=1),
    default=EVALUATE.beam_size,
    show_default=True,
    help="Beam size; 1 is greedy search.",
)
@_LENGTH_PENALTY
@_MAX_LENGTH_RATIO
@_DEVICE
@_THREADS
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=EVALUATE.batch_size,
    show_default=True,
    help="Hypotheses searched together (beam search: a beam of K counts K per sentence).",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=EVALUATE.max_tokens,
    show_default=True,
    help="And at most this many source tokens per batch of hypotheses, padding included.",
)
@click.option(
    "--max-source-tokens",
    type=click.IntRange(min=1),
    default=None,
    # 256: nmt.inference.translate.DEFAULT_MAX_SOURCE_TOKENS (not imported here: it brings in torch)
    help="Truncate longer sources to this many pieces, with a warning. Default: the "
    "training data's longest source as the checkpoint records it, else 256.",
)
def translate(
    checkpoint: Path,
    texts: tuple[str, ...],
    beam: int,
    length_penalty: float,
    max_length_ratio: float,
    device: str,
    threads: str | int,
    batch_size: int,
    max_tokens: int,
    max_source_tokens: int | None,
) -> None:
    """Translate TEXTS, or standard input (one sentence per line) when none are given.

    Input is normalised and tokenised as in training; each translation is printed on its
    own line, in input order, one line out per line in. Standard input is read and
    translated in chunks of several batches, each chunk's lines printed as it finishes.
    Sources longer than --max-source-tokens are truncated, and bytes that are not UTF-8
    replaced with U+FFFD, with a warning on stderr naming the line.
    """
    from nmt.inference.search import SearchSettings
    from nmt.progress import Progress

    translator = _translator(checkpoint, device, threads, batch_size, max_tokens, max_source_tokens)
    settings = SearchSettings(
        beam_size=beam, length_penalty=length_penalty, max_length_ratio=max_length_ratio
    )
    # a count of lines done, where it does not mix with the translations on a terminal
    mode: ProgressMode = "bar" if sys.stderr.isatty() and not sys.stdout.isatty() else "off"
    chunk_size = _chunk_size(texts, sys.stdin)
    with _warnings_on_stderr(), Progress(None, "translate", "sentences", mode) as progress:
        outputs = translator.translate_stream(_inputs(texts), settings, chunk_size=chunk_size)
        _write_lines(_counted(outputs, progress))


@cli.command()
@_MODEL
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--beam",
    type=click.IntRange(min=1),
    default=EVALUATE.beam_size,
    show_default=True,
    help="Beam size of a request that names none.",
)
@_LENGTH_PENALTY
@_MAX_LENGTH_RATIO
@_DEVICE
@_THREADS
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Sentences of concurrent requests decoded together.",
)
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(min=0.0),
    default=5.0,
    show_default=True,
    help="How long a batch waits for more requests.",
)
@click.option(
    "--max-sentences",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Sentences per request.",
)
@click.option(
    "--max-chars",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Characters per sentence.",
)
@click.option("--max-beam", type=click.IntRange(min=1), default=16, show_default=True)
@click.option(
    "--max-pending",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Sentences waiting or being decoded; past it requests get 503.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds per request, waiting included; then 504.",
)
def serve(
    checkpoint: Path,
    host: str,
    port: int,
    beam: int,
    length_penalty: float,
    max_length_ratio: float,
    device: str,
    threads: str | int,
    max_batch: int,
    max_wait_ms: float,
    max_sentences: int,
    max_chars: int,
    max_beam: int,
    max_pending: int,
    timeout: float,
) -> None:
    """Serve a model over HTTP: POST /translate, GET /health, GET /model, and a page at /.

    Answers equal `nmt translate`'s for the same options. SIGTERM or Ctrl-C stops taking
    requests and finishes those in flight.
    """
    import uvicorn

    from nmt.serving.app import ServeSettings, create_app

    try:
        settings = ServeSettings(
            beam_size=beam,
            length_penalty=length_penalty,
            max_length_ratio=max_length_ratio,
            max_beam=max_beam,
            max_sentences=max_sentences,
            max_chars=max_chars,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            max_pending=max_pending,
            timeout_s=timeout,
        )
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    translator = _translator(
        checkpoint, device, threads, EVALUATE.batch_size, EVALUATE.max_tokens, None
    )
    app = create_app(translator, checkpoint, settings)
    with _warnings_on_stderr():
        uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=timeout)


@cli.command()
@click.option("--repo", default=".", show_default=True, help="The DVC project.")
@click.option("--all-commits", is_flag=True, help="Experiments of every commit, not HEAD's.")
def report(repo: str, all_commits: bool) -> None:
    """Print a Markdown table of BLEU/chrF per experiment, model and test set."""
    from nmt.evaluation.report import ReportError, exp_show_json, markdown_table, rows_from_exp_show

    try:
        rows = rows_from_exp_show(exp_show_json(repo, all_commits))
    except ReportError as err:
        raise click.ClickException(str(err)) from None
    if not rows:
        raise click.ClickException("no evaluation metrics yet: run `dvc repro` first")
    click.echo(markdown_table(rows))


@cli.group()
def profile() -> None:
    """Named parameter sets under profiles/ (reference systems, CI's tiny run)."""


_PROFILE_OPTIONS = [
    click.argument("name"),
    click.option("--params", "params_path", default="params.yaml", show_default=True),
    click.option("--profiles", "profiles_dir", default="profiles", show_default=True),
]


def _profile_options(func):  # type: ignore[no-untyped-def]
    for option in reversed(_PROFILE_OPTIONS):
        func = option(func)
    return func


def _load_profile(name: str, params_path: str, profiles_dir: str) -> tuple[dict, dict, str]:
    from nmt.profiles import ProfileError, apply_profile, profile_path, read_yaml

    try:
        path = profile_path(name, profiles_dir)
        base, overrides = read_yaml(params_path), read_yaml(path)
        merged = apply_profile(base, overrides, str(path))
    except (ProfileError, OSError) as err:
        raise click.ClickException(str(err)) from None
    return base, overrides, merged


@profile.command("apply")
@_profile_options
def profile_apply(name: str, params_path: str, profiles_dir: str) -> None:
    """Write params.yaml with profile NAME layered over it."""
    from nmt.profiles import write_params

    _, _, merged = _load_profile(name, params_path, profiles_dir)
    write_params(params_path, merged)
    click.echo(f"{params_path}: profile {name!r} applied", err=True)


@profile.command("args")
@_profile_options
def profile_args(name: str, params_path: str, profiles_dir: str) -> None:
    """Print the `dvc exp run -S ...` arguments that apply profile NAME.

    Use as: dvc exp run -n NAME $(nmt profile args NAME)
    """
    import shlex

    from nmt.profiles import set_args

    base, overrides, _ = _load_profile(name, params_path, profiles_dir)
    click.echo(" ".join(shlex.quote(a) for a in set_args(base, overrides)))


@profile.command("run", context_settings={"ignore_unknown_options": True})
@_profile_options
@click.argument("dvc_args", nargs=-1, type=click.UNPROCESSED)
def profile_run(name: str, params_path: str, profiles_dir: str, dvc_args: tuple[str, ...]) -> None:
    """Run profile NAME as the DVC experiment NAME: `dvc exp run -n NAME -S ...`.

    Further arguments go to `dvc exp run` (e.g. --queue, then `dvc exp run --run-all`).
    params.yaml is left as it is; the experiment records the changed params.
    """
    import shlex
    import subprocess

    from nmt.profiles import set_args

    base, overrides, _ = _load_profile(name, params_path, profiles_dir)
    cmd = [sys.executable, "-m", "dvc", "exp", "run", "-n", name, *set_args(base, overrides)]
    cmd += dvc_args
    click.echo("+ dvc " + " ".join(shlex.quote(a) for a in cmd[3:]), err=True)
    sys.exit(subprocess.call(cmd))


@profile.command("list")
@click.option("--profiles", "profiles_dir", default="profiles", show_default=True)
def profile_list(profiles_dir: str) -> None:
    """List the profiles and the first line of each one's description."""
    for path in sorted(Path(profiles_dir).glob("*.yaml")):
        first = next((ln for ln in path.read_text().splitlines() if ln.startswith("#")), "#")
        click.echo(f"{path.stem:28s} {first.lstrip('# ').strip()}")


def main() -> None:
    """Entry point of the ``nmt`` console script."""
    cli()


if __name__ == "__main__":
    main()
