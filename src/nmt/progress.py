"""Progress of a long loop: a live tqdm bar on a terminal, plain lines in a log.

A bar redraws itself with carriage returns, which a CI log or a file keeps as one endless
line; so away from a terminal :class:`Progress` writes a complete line at most every
``interval`` seconds and one more when it closes, e.g.
``train epoch 1: 1200/5000 batches (24%), 05:12 elapsed, 16:30 left, loss 3.214``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Literal, TextIO

from tqdm import tqdm

ProgressMode = Literal["auto", "bar", "lines", "off"]

_LINE = (
    "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%), "
    "{elapsed} elapsed, {remaining} left{postfix}"
)
_LINE_NO_TOTAL = "{desc}: {n_fmt} {unit}, {elapsed} elapsed{postfix}"


class Progress:
    """Counts of ``total`` steps (None: unknown) of ``unit``, shown as ``mode`` says.

    ``"bar"``: a tqdm bar on ``stream`` (default ``sys.stderr``), gone when closed;
    ``"lines"``: a line at most every ``interval`` seconds of ``clock``, and one on
    :meth:`close`; ``"off"``: nothing; ``"auto"``: a bar if ``stream`` is a terminal,
    else lines. Use as a context manager, calling :meth:`update` after each step.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str,
        mode: ProgressMode = "auto",
        interval: float = 60.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        self.mode = mode
        self.total, self.desc, self.unit = total, desc, unit
        self.interval = interval
        self.n = 0
        self.postfix: dict[str, str | float] = {}
        self._clock = clock
        self._start = self._last_line = clock()
        self._bar = None
        if mode == "bar":
            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=self.stream)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1, **postfix: str | float) -> None:
        """Count ``n`` more steps; ``postfix``: named figures shown after the counts, as
        given (format them first), replacing those of earlier calls with the same name."""
        self.n += n
        self.postfix.update(postfix)
        if self._bar is not None:
            if postfix:
                # drawn with the next refresh: tqdm's own rate limit holds for both
                self._bar.set_postfix(self.postfix, refresh=False)
            self._bar.update(n)
        elif self.mode == "lines":
            now = self._clock()
            if now - self._last_line >= self.interval:
                self._write_line(now)

    def close(self) -> None:
        """Remove the bar, or write the last line; once only."""
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "lines":
            self._write_line(self._clock())
        self.mode = "off"
        self._bar = None

    def _write_line(self, now: float) -> None:
        self._last_line = now
        figures = ", ".join(f"{name} {value}" for name, value in self.postfix.items())
        line = tqdm.format_meter(
            self.n,
            self.total,
            now - self._start,
            prefix=self.desc,
            unit=self.unit,
            postfix=figures,
            bar_format=_LINE if self.total else _LINE_NO_TOTAL,
        )
        self.stream.write(line + "\n")
        self.stream.flush()
