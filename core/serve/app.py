"""The HTTP API (FastAPI reads the route signatures at run time: no postponed annotations here): OpenAI's ``POST /v1/audio/speech`` over the voice library, ``GET /v1/models``,
``GET /v1/audio/voices``, ``GET /health`` and the web page at ``GET /``.

Errors come in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with their status:
400 bad input, 401 bad key, 404 unknown voice, 429 queue full; never a bare 500 for bad input.
"""

import asyncio
import base64
import json
import os
import threading
from pathlib import Path
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from tts_host.errors import TTSHostError
from tts_host.serve.audio import FORMATS, MEDIA_TYPES, encode

if TYPE_CHECKING:
    from tts_host.contract import Speech
    from tts_host.serve.service import SpeechService

MAX_INPUT = 4096
STREAMED = ("pcm", "mp3", "aac")
"""Formats sent as they are made (raw samples, or frames a player reads back to back); wav, flac and opus
(one Ogg stream) come whole."""
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
"""Model names OpenAI clients send: each means "the voice's own model"."""


class ApiError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def create_app(service: "SpeechService", api_key: str | None = None) -> FastAPI:
    """The FastAPI application serving ``service``; requests need ``api_key`` (a bearer token) when it is set."""
    from tts_host.serve.page import PAGE

    app = FastAPI(title="tts-host", docs_url=None, redoc_url=None)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return JSONResponse(ApiError(400, f"{param or 'body'}: {first.get('msg', 'invalid request')}", param=param,
                                     code="invalid_value").body(), status_code=400)

    @app.middleware("http")
    async def authorise(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if api_key and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if given != f"Bearer {api_key}":
                error = ApiError(401, "Incorrect API key provided." if given else "Missing API key: send "
                                 "'Authorization: Bearer KEY'.", code="invalid_api_key")
                return JSONResponse(error.body(), status_code=401)
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "voices": len(await asyncio.to_thread(service.voices)),
                "loaded_models": len(service.models), "workers": service.workers, "queue": service.queue,
                "stopped": service.stopped}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        names = [r.name for r in service.host.backends()] + list(OPENAI_MODELS)
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "tts-host"}
                                           for n in names]}

    @app.get("/v1/audio/voices")
    async def voices() -> dict[str, Any]:
        listed = await asyncio.to_thread(service.voices)
        return {"object": "list", "data": [{"id": v["name"], "object": "voice", **v} for v in listed]}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    @app.post("/v1/audio/speech", response_model=None)
    async def speech(request: Request) -> Response:
        body = await _json(request)
        spoken = _speech_request(body, await asyncio.to_thread(service.voices))
        cancelled = threading.Event()
        if spoken["stream_format"] == "sse" or spoken["format"] in STREAMED:
            return StreamingResponse(_stream(service, spoken, cancelled, request),
                                     media_type="text/event-stream" if spoken["stream_format"] == "sse"
                                     else MEDIA_TYPES[spoken["format"]])
        try:
            result = await asyncio.wrap_future(_submit(service, spoken, cancelled))
        except asyncio.CancelledError:
            cancelled.set()
            raise
        audio = _stretch(result.audio, spoken["stretch"])
        data = await asyncio.to_thread(encode, audio, result.sample_rate, spoken["format"])
        return Response(data, media_type=MEDIA_TYPES[spoken["format"]])

    return app


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not JSON ({exc})", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    return body


def _speech_request(body: dict[str, Any], voices: list[dict[str, Any]]) -> dict[str, Any]:
    """The checked fields of a speech request (each bad field a 400 naming it; an unknown voice a 404)."""
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "input: give the text to speak (a non-empty string)", param="input", code="invalid_value")
    if len(text) > MAX_INPUT:
        raise ApiError(400, f"input: {len(text)} characters; at most {MAX_INPUT}", param="input",
                       code="string_above_max_length")
    voice = body.get("voice")
    if isinstance(voice, dict):
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice:
        raise ApiError(400, "voice: name a library voice (GET /v1/audio/voices)", param="voice", code="invalid_value")
    known = {v["name"]: v for v in voices}
    if voice not in known:
        raise ApiError(404, f"voice '{voice}' is not in the library (GET /v1/audio/voices lists them)", param="voice",
                       code="voice_not_found")
    model = body.get("model")
    if model not in (known[voice]["backend"], voice, *OPENAI_MODELS):
        raise ApiError(400, f"model: '{model}' is not voice '{voice}''s backend ({known[voice]['backend']}), its name "
                       f"or one of {', '.join(OPENAI_MODELS)}", param="model", code="model_not_found")
    fmt = body.get("response_format", "mp3")
    if fmt not in FORMATS:
        raise ApiError(400, f"response_format: '{fmt}' is not one of {', '.join(FORMATS)}", param="response_format",
                       code="invalid_value")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.25 <= float(speed) <= 4.0:
        raise ApiError(400, f"speed: {speed!r} is not a number from 0.25 to 4.0", param="speed", code="invalid_value")
    stream_format = body.get("stream_format", "audio")
    if stream_format not in ("audio", "sse"):
        raise ApiError(400, f"stream_format: '{stream_format}' is not 'audio' or 'sse'", param="stream_format",
                       code="invalid_value")
    return {"text": text, "voice": voice, "backend": known[voice]["backend"], "format": fmt, "speed": float(speed),
            "stretch": float(speed), "stream_format": stream_format}


def _submit(service: "SpeechService", spoken: dict[str, Any], cancelled: threading.Event,
            on_chunk: Callable[[np.ndarray, int], None] | None = None) -> "Future[Speech]":
    """The request queued (busy: 429); bad requests the workflow refuses become 400s when they finish."""
    from tts_host.contract import SpeakRequest
    from tts_host.serve.service import Busy

    native = service.backend(spoken["backend"]).speeds
    spoken["stretch"] = 1.0 if native else spoken["speed"]
    try:
        request = SpeakRequest(spoken["voice"], spoken["text"], out=Path(os.devnull),  # the server writes no file
                               speed=spoken["speed"] if native else 1.0)
        return _refusals_as_400(service.submit(request, cancelled, on_chunk))
    except Busy as exc:
        raise ApiError(429, str(exc), code="server_busy", kind="rate_limit_error") from None
    except TTSHostError as exc:
        raise ApiError(400, str(exc), code="invalid_value") from None


def _refusals_as_400(future: "Future[Speech]") -> "Future[Speech]":
    """A future whose :class:`TTSHostError` (the workflow refusing the request) becomes an :class:`ApiError` 400."""
    from tts_host.serve.service import Cancelled

    wrapped: Future[Speech] = Future()

    def done(source: Future) -> None:
        exc = source.exception()
        if exc is None:
            wrapped.set_result(source.result())
        elif isinstance(exc, TTSHostError) and not isinstance(exc, Cancelled):
            wrapped.set_exception(ApiError(400, str(exc), code="invalid_value"))
        else:
            wrapped.set_exception(exc)

    future.add_done_callback(done)
    return wrapped


def _stretch(audio: np.ndarray, speed: float) -> np.ndarray:
    """``audio`` played ``speed`` times as fast without a pitch change (for backends without their own speed)."""
    if speed == 1.0 or audio.size < 2048:
        return audio
    import librosa

    return librosa.effects.time_stretch(np.asarray(audio, dtype=np.float32), rate=speed)


async def _stream(service: "SpeechService", spoken: dict[str, Any], cancelled: threading.Event,
                  request: Request) -> AsyncIterator[bytes]:
    """Audio bytes (or SSE events) as the synthesis makes them; a client that goes away stops it."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue = asyncio.Queue()

    def on_chunk(audio: np.ndarray, rate: int) -> None:
        loop.call_soon_threadsafe(chunks.put_nowait, (audio, rate))

    future = _submit(service, spoken, cancelled, on_chunk)
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(chunks.put_nowait, None))
    sse = spoken["stream_format"] == "sse"
    try:
        while True:
            item = await chunks.get()
            if item is None:
                break
            audio, rate = item
            data = await asyncio.to_thread(encode, _stretch(audio, spoken["stretch"]), rate, spoken["format"])
            if await request.is_disconnected():
                cancelled.set()
                return
            if sse:
                event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}
                yield f"data: {json.dumps(event)}\n\n".encode()
            else:
                yield data
        exc = future.exception()
        if exc is not None:
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            if sse:
                yield f"data: {json.dumps({'type': 'error', 'error': {'message': message}})}\n\n".encode()
            return
        if sse:
            yield f"data: {json.dumps({'type': 'speech.audio.done'})}\n\n".encode()
    finally:
        if not future.done():
            cancelled.set()
