"""nmt serve over real HTTP on 127.0.0.1: answers, batching, refusals, shutdown."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import uvicorn

from nmt.inference.search import SearchSettings
from nmt.inference.translate import Translator
from nmt.serving.app import ServeSettings, create_app
from test_translate import make_checkpoint

CPU = torch.device("cpu")
TEXTS = ["Le chat est noir.", "Un grand chien.", "la maison", "", "zèbre inconnu", "le chien"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body: bytes | None = None, timeout: float = 30):
    """(status, decoded JSON body) of one request."""
    req = urllib.request.Request(base + path, data=body, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def post(base: str, payload) -> tuple[int, dict]:
    return call(base, "POST", "/translate", json.dumps(payload).encode())


class Server:
    """create_app under uvicorn in a thread, on a free port; stopped on exit."""

    def __init__(self, model_dir: Path, **settings) -> None:
        self.translator = Translator.from_checkpoint(model_dir, CPU, max_source_tokens="train")
        self.settings = ServeSettings(**settings)
        self.app = create_app(self.translator, model_dir, self.settings)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    def expected(self, texts, beam: int) -> list[str]:
        """What `nmt translate` gives: the same translator, options and search."""
        search = SearchSettings(
            beam_size=beam,
            length_penalty=self.settings.length_penalty,
            max_length_ratio=self.settings.max_length_ratio,
        )
        return self.translator.translate(texts, search)


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "attention"
    folder.mkdir()
    make_checkpoint(folder / "best.pt", train_max_src_tokens=8)
    return folder


@pytest.fixture
def server(model_dir):
    with Server(model_dir, max_wait_ms=20, max_sentences=8, max_chars=50, max_beam=6) as s:
        yield s


def test_health_and_model(server, model_dir):
    assert call(server.base, "GET", "/health") == (200, {"status": "ok", "pending": 0})
    status, info = call(server.base, "GET", "/model")
    assert status == 200
    assert info["name"] == "attention" and info["src_lang"] == "fr" and info["tgt_lang"] == "en"
    assert info["params"]["attention"] == "bahdanau" and info["has_attention"] is True
    assert info["parameters"] == sum(p.numel() for p in server.translator.model.parameters())
    assert info["max_source_tokens"] == 8
    assert info["serve"]["max_beam"] == 6 and info["card"] is None
    (model_dir / "model_card.md").write_text("# attention\n")
    with Server(model_dir) as other:
        assert call(other.base, "GET", "/model")[1]["card"] == "# attention\n"


def test_one_text_or_a_list_answer_as_nmt_translate(server):
    status, body = post(server.base, {"text": TEXTS[0]})
    assert status == 200 and body == {"translation": server.expected(TEXTS[:1], 5)[0]}
    for beam in (1, 3):
        status, body = post(server.base, {"text": TEXTS, "beam": beam})
        assert status == 200 and body == {"translations": server.expected(TEXTS, beam)}


def test_attention_of_the_greedy_search(server):
    status, body = post(server.base, {"text": ["le chat", "la maison"], "attention": True})
    assert status == 200 and len(body["attention"]) == 2
    first = body["attention"][0]
    assert first["source"] == ["le", "chat"]
    assert len(first["weights"]) == len(first["target"])
    for row in first["weights"]:
        assert len(row) == 2 and abs(sum(row) - 1) < 1e-3
    status, body = post(server.base, {"text": "le chat", "attention": True})
    assert status == 200 and body["attention"]["source"] == ["le", "chat"]


def test_a_model_without_attention_answers_null(tmp_path):
    make_checkpoint(tmp_path / "best.pt", attention="none")
    with Server(tmp_path) as s:
        status, body = post(s.base, {"text": ["le chat"], "attention": True})
        assert status == 200 and body["attention"] is None
        assert body["translations"] == s.expected(["le chat"], 5)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not JSON"),
        (b'{"text": "caf\xe9"}', 400, "not valid UTF-8 (byte 13)"),
        (b'["le chat"]', 422, "body: Input should be"),
        (b'{"text": 3}', 422, "text"),
        (b'{"text": ["le", 3]}', 422, "text"),
        (b'{"texts": ["le"]}', 422, "texts: Extra inputs are not permitted"),
        (b'{"text": "le", "beam": "2"}', 422, "beam"),
        (b'{"text": "le", "beam": true}', 422, "beam"),
        (b'{"text": "le", "attention": 1}', 422, "attention"),
        (b'{"text": []}', 422, "an empty list"),
        (b'{"text": "le", "beam": 0}', 422, "beam: must be 1..6, got 0"),
        (b'{"text": "le", "beam": 1000}', 422, "beam: must be 1..6, got 1000"),
        (json.dumps({"text": ["le"] * 9}).encode(), 413, "9 sentences; at most 8"),
        (json.dumps({"text": ["le", "x" * 51]}).encode(), 413, "text.1: 51 characters"),
        (b"x" * 100_000, 413, "request body over"),
    ],
)
def test_bad_requests_get_a_json_4xx(server, body, status, message):
    got_status, got = call(server.base, "POST", "/translate", body)
    assert got_status == status
    assert message in got["error"]
    assert call(server.base, "GET", "/health")[0] == 200  # and the server goes on


def test_unknown_routes_and_methods_answer_json(server):
    assert call(server.base, "GET", "/nowhere")[0] == 404
    status, body = call(server.base, "GET", "/translate")
    assert status == 405 and "error" in body


def test_concurrent_clients_are_batched_and_each_gets_its_own_answer(server):
    expected = server.expected(TEXTS, 2)
    batches_before = server.app.state.batcher.batches

    def client(i: int):
        return post(server.base, {"text": TEXTS[i % len(TEXTS)], "beam": 2})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(client, range(48)))
    for i, (status, body) in enumerate(answers):
        assert status == 200
        assert body["translation"] == expected[i % len(TEXTS)]
    # 48 requests of one sentence, gathered for 20 ms up to 64 sentences
    assert server.app.state.batcher.batches - batches_before < 48
    assert server.app.state.batcher.pending == 0


def test_a_request_past_its_timeout_gets_504_and_frees_its_slot(model_dir):
    with Server(model_dir, max_wait_ms=500, timeout_s=0.1) as s:
        status, body = post(s.base, {"text": "le chat"})
        assert status == 504 and "within 0.1 s" in body["error"]
        assert call(s.base, "GET", "/health")[1]["pending"] == 0


def test_too_many_pending_sentences_get_503(model_dir):
    with Server(model_dir, max_wait_ms=400, max_pending=2) as s, ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, s.base, {"text": ["le", "la"]})
        deadline = time.monotonic() + 10
        while call(s.base, "GET", "/health")[1]["pending"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        status, body = post(s.base, {"text": "le chat"})
        assert status == 503 and "server busy" in body["error"]
        assert first.result()[0] == 200


def test_a_client_that_leaves_frees_its_slot(model_dir):
    with Server(model_dir, max_wait_ms=600) as s:
        payload = json.dumps({"text": "le chat"}).encode()
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            sock.sendall(
                b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            deadline = time.monotonic() + 10
            while call(s.base, "GET", "/health")[1]["pending"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        # the socket is closed before the batch is decoded: the slot frees without waiting
        deadline = time.monotonic() + 0.5
        while call(s.base, "GET", "/health")[1]["pending"] > 0:
            assert time.monotonic() < deadline, "the slot of a gone client was kept"
            time.sleep(0.01)
        assert s.app.state.batcher.batches == 0


def test_sigterm_finishes_the_requests_in_flight(model_dir):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "nmt.cli",
        "serve",
        "--model",
        str(model_dir),
        "--port",
        str(port),
        "--max-wait-ms",
        "1500",
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(base, "GET", "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.1)
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(post, base, {"text": ["le chat", "la maison"], "beam": 1})
            while call(base, "GET", "/health")[1]["pending"] < 2:
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)  # while the request waits for its batch
            status, body = answer.result(timeout=30)
        assert status == 200 and len(body["translations"]) == 2
        # uvicorn re-raises the signal once it has drained: the exit is SIGTERM's
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.stdout.read().decode() if proc.stdout else ""
    assert "Shutting down" in out


def test_serve_refuses_a_missing_model(tmp_path):
    from click.testing import CliRunner

    from nmt.cli import cli

    result = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path / "nope")])
    assert result.exit_code != 0 and "no such checkpoint" in result.output
