import asyncio
import threading

import pytest

from nmt.serving.batcher import Busy, MicroBatcher


class Recorder:
    """A decode function that upper-cases texts and records each call's texts and key."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[list[str], object]] = []
        self.gate = gate

    def __call__(self, texts, key):
        if self.gate is not None:
            self.gate.wait(5)
        self.calls.append((list(texts), key))
        return [f"{t.upper()}/{key}" for t in texts]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def _with(batcher, body):
    await batcher.start()
    try:
        return await body()
    finally:
        await batcher.stop()


def test_concurrent_jobs_share_one_call_and_get_their_own_results():
    decode = Recorder()
    batcher = MicroBatcher(decode, max_batch=8, max_wait=0.2)

    async def body():
        return await asyncio.gather(
            batcher.submit(["a", "b"], 1), batcher.submit(["c"], 1), batcher.submit(["d"], 1)
        )

    assert run(_with(batcher, body)) == [["A/1", "B/1"], ["C/1"], ["D/1"]]
    assert decode.calls == [(["a", "b", "c", "d"], 1)]
    assert batcher.pending == 0


def test_jobs_with_other_settings_are_decoded_apart():
    decode = Recorder()
    batcher = MicroBatcher(decode, max_batch=8, max_wait=0.2)

    async def body():
        return await asyncio.gather(
            batcher.submit(["a"], (1, False)),
            batcher.submit(["b"], (5, False)),
            batcher.submit(["c"], (1, False)),
        )

    out = run(_with(batcher, body))
    assert out == [["A/(1, False)"], ["B/(5, False)"], ["C/(1, False)"]]
    assert sorted(decode.calls) == [(["a", "c"], (1, False)), (["b"], (5, False))]


def test_a_batch_holds_at_most_max_batch_sentences_and_never_splits_a_job():
    decode = Recorder()
    batcher = MicroBatcher(decode, max_batch=3, max_wait=0.2)

    async def body():
        return await asyncio.gather(
            batcher.submit(["a", "b"], 0),
            batcher.submit(["c", "d"], 0),
            batcher.submit(["e"], 0),
            batcher.submit(["f", "g", "h", "i"], 0),
        )

    out = run(_with(batcher, body))
    assert out == [["A/0", "B/0"], ["C/0", "D/0"], ["E/0"], ["F/0", "G/0", "H/0", "I/0"]]
    # in order; a job that does not fit opens the next batch; a big one goes alone
    assert [c[0] for c in decode.calls] == [["a", "b"], ["c", "d", "e"], ["f", "g", "h", "i"]]


def test_no_wait_decodes_what_is_there():
    decode = Recorder()
    batcher = MicroBatcher(decode, max_batch=8, max_wait=0.0)

    async def body():
        return [await batcher.submit([t], 0) for t in "abc"]

    assert run(_with(batcher, body)) == [["A/0"], ["B/0"], ["C/0"]]
    assert len(decode.calls) == 3


def test_a_timed_out_job_frees_its_slot_and_is_never_decoded():
    gate = threading.Event()
    decode = Recorder(gate)
    batcher = MicroBatcher(decode, max_batch=1, max_wait=0.0, max_pending=2)

    async def body():
        first = asyncio.ensure_future(batcher.submit(["slow"], 0))  # holds the worker
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            await batcher.submit(["late"], 0, timeout=0.05)
        assert batcher.pending == 1  # only the first is still counted
        second = asyncio.ensure_future(batcher.submit(["next"], 0))
        await asyncio.sleep(0.01)
        gate.set()
        return await first, await second

    assert run(_with(batcher, body)) == (["SLOW/0"], ["NEXT/0"])
    assert [c[0] for c in decode.calls] == [["slow"], ["next"]]
    assert batcher.pending == 0


def test_a_cancelled_request_is_dropped():
    gate = threading.Event()
    decode = Recorder(gate)
    batcher = MicroBatcher(decode, max_batch=1, max_wait=0.0)

    async def body():
        first = asyncio.ensure_future(batcher.submit(["slow"], 0))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(batcher.submit(["gone"], 0))
        await asyncio.sleep(0.01)
        gone.cancel()
        await asyncio.sleep(0.01)
        assert batcher.pending == 1
        gate.set()
        return await first

    assert run(_with(batcher, body)) == ["SLOW/0"]
    assert [c[0] for c in decode.calls] == [["slow"]]


def test_past_max_pending_submit_says_busy():
    gate = threading.Event()
    batcher = MicroBatcher(Recorder(gate), max_batch=4, max_wait=0.0, max_pending=3)

    async def body():
        first = asyncio.ensure_future(batcher.submit(["a", "b"], 0))
        await asyncio.sleep(0.02)
        with pytest.raises(Busy, match="2 sentences pending; at most 3"):
            await batcher.submit(["c", "d"], 0)
        gate.set()
        return await first

    assert run(_with(batcher, body)) == ["A/0", "B/0"]


def test_a_failing_batch_fails_its_jobs_and_the_batcher_goes_on():
    def decode(texts, key):
        if key == "bad":
            raise ValueError("no good")
        return texts

    batcher = MicroBatcher(decode, max_batch=8, max_wait=0.1)

    async def body():
        bad, good = await asyncio.gather(
            batcher.submit(["x"], "bad"), batcher.submit(["y"], "good"), return_exceptions=True
        )
        assert isinstance(bad, ValueError) and good == ["y"]
        return await batcher.submit(["z"], "good")

    assert run(_with(batcher, body)) == ["z"]
    assert batcher.pending == 0


def test_bad_settings_and_submit_before_start():
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(Recorder(), max_batch=0)
    with pytest.raises(ValueError, match="max_wait"):
        MicroBatcher(Recorder(), max_wait=-1)
    with pytest.raises(RuntimeError, match="not running"):
        run(MicroBatcher(Recorder()).submit(["a"], 0))
