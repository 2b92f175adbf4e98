"""``nmt serve``: a trained model behind an HTTP JSON API, with a page to try it.

Routes:

* ``POST /translate``: ``{"text": "..." | ["...", ...], "beam": k, "attention": bool}``
  -> ``{"translation": "..."}`` for one text, ``{"translations": [...]}`` for a list; with
  ``attention``, also ``"attention"``: per text, the source and target pieces and weights
  of the greedy search (as the evaluate stage's heatmaps), or null for a model without
  attention.
* ``GET /health``: ``{"status": "ok"}``. ``GET /model``: the model, its settings, its
  checkpoint's record and its model card, if its folder has one.
* ``GET /``: the page (its assets ship with the package: no network needed).

Texts are translated by :class:`~nmt.inference.translate.Translator`, so an answer is what
``nmt translate`` prints for the same text and options. Concurrent requests are gathered
into batches (:class:`~nmt.serving.batcher.MicroBatcher`). Every error is JSON,
``{"error": "..."}``: 400 for a body that is not UTF-8 or not JSON, 413 for too many
sentences or characters, 422 for wrong fields, types or values, 503 when too many
sentences are pending, 504 past the request timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Hashable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from nmt.inference.search import SearchSettings
from nmt.inference.translate import Translator
from nmt.serving.batcher import Busy, MicroBatcher

log = logging.getLogger(__name__)

__all__ = ["ServeSettings", "TranslateRequest", "create_app", "model_info"]

MODEL_CARD = "model_card.md"


@dataclass(frozen=True)
class ServeSettings:
    """Limits and defaults of one server (``nmt serve``'s options)."""

    beam_size: int = 5
    length_penalty: float = 1.0
    max_length_ratio: float = 2.0
    max_beam: int = 16
    max_sentences: int = 64  # per request
    max_chars: int = 1000  # per sentence
    max_batch: int = 64  # sentences decoded together
    max_wait_ms: float = 5.0  # how long a batch waits for more requests
    max_pending: int = 1024  # sentences waiting or being decoded
    timeout_s: float = 60.0  # per request, waiting included

    def __post_init__(self) -> None:
        if not 1 <= self.beam_size <= self.max_beam:
            raise ValueError(f"beam_size must be 1..{self.max_beam}, got {self.beam_size}")
        for name in ("max_sentences", "max_chars", "max_batch", "max_pending"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.timeout_s <= 0:
            raise ValueError("max_wait_ms must be >= 0 and timeout_s > 0")

    @property
    def max_body_bytes(self) -> int:
        # room for JSON escapes (\uXXXX is 6 bytes a character) and the other fields
        return 6 * self.max_sentences * self.max_chars + 4096


class TranslateRequest(BaseModel):
    """The body of ``POST /translate``; types are strict (no ``1`` for ``"1"``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | list[str]
    beam: int | None = None
    attention: bool = False


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _where(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(dict.fromkeys(parts))


def parse_request(body: bytes, settings: ServeSettings) -> tuple[list[str], bool, int, bool]:
    """(texts, whether one text was sent, beam, attention), or :class:`_Refused`."""
    if len(body) > settings.max_body_bytes:
        raise _Refused(413, f"request body over {settings.max_body_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Refused(400, f"request body is not valid UTF-8 (byte {err.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise _Refused(400, f"request body is not JSON ({err})") from None
    try:
        req = TranslateRequest.model_validate(data)
    except ValidationError as err:
        raise _Refused(422, _where(err)) from None
    single = isinstance(req.text, str)
    texts = [req.text] if isinstance(req.text, str) else req.text
    if not texts:
        raise _Refused(422, "text: an empty list; send at least one sentence")
    if len(texts) > settings.max_sentences:
        raise _Refused(
            413, f"text: {len(texts)} sentences; at most {settings.max_sentences} per request"
        )
    for i, t in enumerate(texts):
        if len(t) > settings.max_chars:
            where = "text" if single else f"text.{i}"
            raise _Refused(413, f"{where}: {len(t)} characters; at most {settings.max_chars}")
    beam = settings.beam_size if req.beam is None else req.beam
    if not 1 <= beam <= settings.max_beam:
        raise _Refused(422, f"beam: must be 1..{settings.max_beam}, got {beam}")
    return texts, single, beam, req.attention


def model_info(translator: Translator, model_path: Path, settings: ServeSettings) -> dict[str, Any]:
    """What ``GET /model`` answers: the model, its search settings, its checkpoint's
    record (without weights) and its model card's text, or null."""
    loaded = translator.loaded
    folder = model_path if model_path.is_dir() else model_path.parent
    card = folder / MODEL_CARD
    meta = {k: v for k, v in loaded.meta.items() if k not in ("model_params", "normalize")}
    return {
        "name": folder.name,
        "path": str(model_path),
        "src_lang": loaded.src_lang,
        "tgt_lang": loaded.tgt_lang,
        "params": loaded.meta.get("model_params"),
        "normalize": loaded.normalize.model_dump(),
        "parameters": sum(p.numel() for p in translator.model.parameters()),
        "vocab_sizes": {"src": len(loaded.src_tokenizer), "tgt": len(loaded.tgt_tokenizer)},
        "has_attention": translator.has_attention,
        "device": str(translator.device),
        "max_source_tokens": translator.max_source_tokens,
        "serve": asdict(settings),
        "checkpoint": _plain(meta),
        "card": card.read_text(encoding="utf-8") if card.is_file() else None,
    }


def _plain(value: Any) -> Any:
    """``value`` with only what JSON can hold (tensors and the like as their repr)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def make_decoder(translator: Translator, settings: ServeSettings):  # type: ignore[no-untyped-def]
    """The batcher's decode function: key ``(beam, attention)``."""

    def decode(texts: list[str], key: Hashable) -> list[Any]:
        beam, attention = key  # type: ignore[misc]
        search = SearchSettings(
            beam_size=beam,
            length_penalty=settings.length_penalty,
            max_length_ratio=settings.max_length_ratio,
        )
        out = translator.translate(texts, search)
        if not attention:
            return out
        maps = translator.attention(texts, search) if translator.has_attention else None
        return [(t, None if maps is None else _attention_json(maps[i])) for i, t in enumerate(out)]

    return decode


def _attention_json(amap: Any) -> dict[str, Any]:
    return {
        "source": amap.source,
        "target": amap.target,
        "weights": [[round(float(w), 4) for w in row] for row in amap.weights.tolist()],
    }


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read by then)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def create_app(translator: Translator, model_path: Path, settings: ServeSettings) -> Starlette:
    """The ASGI app; the batcher runs from its startup to its shutdown."""
    batcher = MicroBatcher(
        make_decoder(translator, settings),
        max_batch=settings.max_batch,
        max_wait=settings.max_wait_ms / 1000,
        max_pending=settings.max_pending,
    )
    info = model_info(translator, model_path, settings)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    async def translate(request: Request) -> Response:
        try:
            texts, single, beam, attention = parse_request(await request.body(), settings)
        except _Refused as err:
            return _error(err.status, err.message)
        job = asyncio.ensure_future(batcher.submit(texts, (beam, attention), settings.timeout_s))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not job.done():  # the client left: drop its sentences
            job.cancel()
            return _error(499, "client closed the request")
        try:
            results = job.result()
        except Busy as err:
            return _error(503, f"server busy: {err}", {"Retry-After": "1"})
        except TimeoutError:
            return _error(504, f"not translated within {settings.timeout_s:g} s")
        except Exception as err:
            log.exception("translation failed")
            return _error(500, f"translation failed: {type(err).__name__}: {err}")
        if attention:
            translations = [t for t, _ in results]
            maps = [m for _, m in results] if translator.has_attention else None
        else:
            translations, maps = results, None
        body: dict[str, Any] = (
            {"translation": translations[0]} if single else {"translations": translations}
        )
        if attention:
            body["attention"] = (maps[0] if single else maps) if maps is not None else None
        return JSONResponse(body)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "pending": batcher.pending})

    async def model(request: Request) -> Response:
        return JSONResponse(info)

    index = resources.files("nmt.serving").joinpath("static/index.html").read_text("utf-8")

    async def page(request: Request) -> Response:
        return HTMLResponse(index)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, exc.detail)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/model", model, methods=["GET"]),
        Route("/translate", translate, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("nmt.serving", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.batcher = batcher
    return app
