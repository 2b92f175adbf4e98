"""Benchmark ``nmt serve``: requests/s and latency, micro-batched vs one request at a time.

    python benchmarks/bench_serve.py                          # models/attention, beam 5
    python benchmarks/bench_serve.py --requests 64 --clients 1,8 --beam 1

For each way of serving (micro-batched: ``--max-batch`` sentences gathered for up to
``--max-wait-ms``; one at a time: ``--max-batch 1``, no wait) it starts ``nmt serve`` on a
free port of 127.0.0.1, sends one warm-up request, then, for each number of concurrent
clients, ``--requests`` requests of one sentence each (the first sentences of
``data/prepared/test.parquet``, in turn) over keep-alive connections, and prints
requests/s, p50 and p99 latency, and the batched / one-at-a-time ratio of requests/s for
the same clients. Each level stops early after ``--time-limit`` seconds (the figures then
count what was answered). Loopback only; no asserts on time.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import pyarrow.parquet as pq

from machine import print_machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model: Path, port: int, beam: int, max_batch: int, max_wait_ms: float):
    cmd = [
        sys.executable,
        "-m",
        "nmt.cli",
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
        "--beam",
        str(beam),
        "--max-batch",
        str(max_batch),
        "--max-wait-ms",
        str(max_wait_ms),
        "--max-pending",
        "100000",
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nmt serve exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("nmt serve did not start within 120 s")


def _post(conn: http.client.HTTPConnection, text: str) -> float:
    body = json.dumps({"text": text}).encode()
    start = time.perf_counter()
    conn.request("POST", "/translate", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}: {data[:200]!r}")
    return time.perf_counter() - start


def _level(port: int, texts: list[str], clients: int, requests: int, limit: float):
    """(requests answered, seconds, latencies) for ``clients`` threads sharing the work."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + limit

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                took = _post(conn, texts[i % len(texts)])
                with lock:
                    latencies.append(took)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies), time.perf_counter() - start, latencies


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


@click.command()
@click.option("--model", type=click.Path(path_type=Path), default=Path("models/attention"))
@click.option("--test", type=click.Path(path_type=Path), default=Path("data/prepared/test.parquet"))
@click.option("--requests", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--clients", default="1,8,32", show_default=True)
@click.option("--beam", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=2), default=64, show_default=True)
@click.option("--max-wait-ms", type=float, default=5.0, show_default=True)
@click.option(
    "--time-limit", type=float, default=60.0, show_default=True, help="Seconds per level at most."
)
def main(
    model: Path,
    test: Path,
    requests: int,
    clients: str,
    beam: int,
    max_batch: int,
    max_wait_ms: float,
    time_limit: float,
) -> None:
    levels = [int(c) for c in clients.split(",")]
    texts = pq.read_table(test, columns=["src"]).column("src").to_pylist()[:1000]
    print_machine()
    print(f"model {model}, beam {beam}")
    print(f"{requests} requests of one sentence per level (of {len(texts)} test sentences)")
    results: dict[tuple[str, int], float] = {}
    for mode, batch, wait in (("batched", max_batch, max_wait_ms), ("one-at-a-time", 1, 0.0)):
        port = _free_port()
        proc = _start(model, port, beam, batch, wait)
        try:
            warm = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            _post(warm, texts[0])
            warm.close()
            label = f"max-batch {batch}, max-wait {wait:g} ms"
            for n in levels:
                done, seconds, lat = _level(port, texts, n, requests, time_limit)
                rps = done / seconds
                results[(mode, n)] = rps
                print(
                    f"{mode:14s} ({label}) {n:3d} clients: {rps:8.1f} req/s, "
                    f"p50 {1000 * statistics.median(lat):7.1f} ms, "
                    f"p99 {1000 * _pct(lat, 0.99):7.1f} ms ({done} answered)"
                )
        finally:
            proc.terminate()
            proc.wait(30)
    for n in levels:
        ratio = results[("batched", n)] / results[("one-at-a-time", n)]
        print(f"{n:3d} clients: batched / one-at-a-time = {ratio:.2f}x requests/s")


if __name__ == "__main__":
    main()
