"""Micro-batching: sentences of concurrent requests decoded together.

Each request is a :class:`Job` (its texts and how to decode them). The batcher takes the
first job that is waiting, then keeps gathering for up to ``max_wait`` seconds or until
``max_batch`` sentences are in hand, and decodes the jobs that share settings in one call
of the decode function, which runs in one worker thread (the model is never used by two
threads at once, and the event loop stays free to accept requests meanwhile).

A job whose request was cancelled or timed out before its batch started is dropped, and
its sentences leave the count of pending ones at once (:meth:`MicroBatcher.submit`), so it
never holds a slot that another request could use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Busy", "Job", "MicroBatcher"]

# decode(texts, key) -> one result per text; key: what the jobs of one call share
DecodeFn = Callable[[list[str], Hashable], Sequence[Any]]


class Busy(RuntimeError):
    """More sentences are pending than the batcher accepts."""


@dataclass
class Job:
    texts: list[str]
    key: Hashable
    future: asyncio.Future[list[Any]] = field(repr=False)


class MicroBatcher:
    """Gather :class:`Job` s into batches of at most ``max_batch`` sentences.

    ``max_pending`` bounds the sentences waiting or being decoded; :meth:`submit` raises
    :class:`Busy` past it. A job larger than ``max_batch`` is decoded alone.
    """

    def __init__(
        self,
        decode: DecodeFn,
        max_batch: int = 64,
        max_wait: float = 0.005,
        max_pending: int = 1024,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0, got {max_wait}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self.decode = decode
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_pending = max_pending
        self.pending = 0  # sentences submitted and not yet answered, dropped or failed
        self.batches = 0  # decode calls made (for tests and the benchmark)
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._held: Job | None = None  # gathered but did not fit: first of the next batch
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nmt-decode")

    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="nmt-batcher")

    async def stop(self) -> None:
        """Stop gathering; jobs still queued fail with ``RuntimeError``."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        left = [self._held] if self._held else []
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        self._held = None
        for job in left:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(
        self, texts: list[str], key: Hashable, timeout: float | None = None
    ) -> list[Any]:
        """The results of ``texts`` decoded under ``key``; raises :class:`Busy`, or
        ``TimeoutError`` after ``timeout`` seconds. Cancelling the caller drops the job."""
        if self.pending + len(texts) > self.max_pending:
            raise Busy(f"{self.pending} sentences pending; at most {self.max_pending}")
        if self._worker is None:
            raise RuntimeError("the batcher is not running")
        loop = asyncio.get_running_loop()
        job = Job(list(texts), key, loop.create_future())
        self.pending += len(texts)
        self._queue.put_nowait(job)
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout)
        finally:
            if not job.future.done():  # timed out or cancelled: never decode it
                job.future.cancel()
            self.pending -= len(texts)

    async def _gather(self) -> list[Job]:
        if self._held is not None:
            jobs, self._held = [self._held], None
        else:
            jobs = [await self._queue.get()]
        size = len(jobs[0].texts)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            if self._queue.empty():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if size + len(job.texts) > self.max_batch:
                self._held = job  # a job is never split: it opens the next batch
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [j for j in await self._gather() if not j.future.done()]
            groups: dict[Hashable, list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for key, group in groups.items():
                group = [j for j in group if not j.future.done()]
                if not group:
                    continue
                texts = [t for j in group for t in j.texts]
                self.batches += 1
                try:
                    results = await loop.run_in_executor(self._executor, self.decode, texts, key)
                except Exception as err:  # one bad batch fails its jobs, not the server
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(err)
                    continue
                start = 0
                for job in group:
                    end = start + len(job.texts)
                    if not job.future.done():
                        job.future.set_result(list(results[start:end]))
                    start = end
