"""The device agent's HTTP service: receive ONNX models, time them, report the device.

Endpoints (every one needs ``Authorization: Bearer TOKEN`` unless the agent runs without a token
on loopback; bodies are JSON unless stated):

* ``GET /v1/info``: the device fingerprint, the runtime, the limits and the counters (models
  received, measurements served, requests refused and refusals by reason).
* ``GET /v1/models/{sha256}``: 200 with the model's summary if the agent holds it, else 404.
* ``PUT /v1/models/{sha256}``: the raw ONNX bytes (``Content-Length`` required). The agent hashes
  the body while storing it and refuses it if the hash differs from the URL, then validates it in
  a worker process with time and memory limits (:mod:`hsconas.agent.validate`) and keeps it in its
  cache under its hash. 201 with the summary (200 if it was held already).
* ``POST /v1/measure``: ``{"model": SHA256, "threads": 1, "clock": "wall", "timing": {...},
  "reference": {"model": SHA256, "base_ms": ms} | null}``: times the model with the protocol of
  :mod:`hsconas.hardware.timing` (against the reference network if given, as
  :mod:`hsconas.hardware.reference` does locally) and returns the timing result, the runtime's
  settings and the fingerprint. Measurements run one at a time, so two never disturb each other.

Every request passes :class:`Guard` first, which checks the token in constant time
(``hmac.compare_digest``), refuses a body larger than its route's limit from its
``Content-Length`` before reading it and stops a body that streams past the limit, and limits the
requests in flight per client address. Every refusal is logged with its reason and counted.
PyTorch is never imported.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from hsconas.agent.validate import ModelLimits, ValidationError, validate_in_worker
from hsconas.hardware.fingerprint import fingerprint
from hsconas.hardware.reference import paired_time_runs
from hsconas.hardware.runtimes import make_runner, runtime_settings
from hsconas.hardware.timing import (
    TimingConfig,
    TimingResult,
    thread_cpu_ms,
    time_runs,
    wall_clock_ms,
)

__all__ = ["AgentConfig", "AgentState", "Guard", "create_app"]

logger = logging.getLogger("hsconas.agent")

_SHA = re.compile(r"^[0-9a-f]{64}$")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class AgentConfig:
    """How the agent runs.

    Attributes:
        token: the bearer token clients must send (``None``: no authentication, loopback only).
        cache_dir: where received models are kept (``<sha256>.onnx`` and ``<sha256>.json``).
        runtime: ``onnxruntime`` or ``openvino``.
        max_model_bytes: largest model upload, bytes.
        max_json_bytes: largest JSON request body, bytes.
        per_client: most requests in flight per client address.
        max_measure_s: the longest timed phase a client may ask for (``timing.max_time_s``), s.
        upload_timeout_s: the longest an upload may take to arrive, seconds.
        limits: what a model may contain and the validation worker's limits.
    """

    token: str | None
    cache_dir: Path
    runtime: str = "onnxruntime"
    max_model_bytes: int = 256 << 20
    max_json_bytes: int = 64 << 10
    per_client: int = 4
    max_measure_s: float = 60.0
    upload_timeout_s: float = 120.0
    limits: ModelLimits = field(default_factory=ModelLimits)


class AgentState:
    """Counters, the model cache and the measurement lock of one agent."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        (config.cache_dir / "incoming").mkdir(exist_ok=True)
        self.counters: Counter[str] = Counter(
            models_received=0, measurements_served=0, requests_refused=0
        )
        self.refusals: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.measure_lock = threading.Lock()  # one measurement at a time on this device
        self.validate_lock = threading.Lock()  # one validation worker at a time (memory)
        self._runners: OrderedDict[tuple[str, int], Callable[[], object]] = OrderedDict()
        self.started = time.time()

    def refuse(self, client: str, method: str, path: str, status: int, reason: str) -> None:
        """Count and log one refused request."""
        self.counters["requests_refused"] += 1
        kind = reason.split(":")[0][:60]
        self.refusals[f"{status} {kind}"] += 1
        logger.warning("refused %s %s from %s (%d): %s", method, path, client, status, reason)

    def model_path(self, sha: str) -> Path:
        """The cache file of a model (``sha`` is checked to be 64 hex digits)."""
        if not _SHA.match(sha):
            raise ValueError("not a sha256")
        return self.config.cache_dir / f"{sha}.onnx"

    def summary(self, sha: str) -> dict[str, Any] | None:
        """The stored summary of a validated model, or ``None`` if the agent does not hold it."""
        meta = self.config.cache_dir / f"{sha}.json"
        if not _SHA.match(sha) or not meta.is_file() or not self.model_path(sha).is_file():
            return None
        doc: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))
        return doc

    def runner(self, sha: str, threads: int) -> Callable[[], object]:
        """A function running model ``sha`` once on a fixed random input (cached, 8 kept)."""
        key = (sha, threads)
        if key in self._runners:
            self._runners.move_to_end(key)
            return self._runners[key]
        summary = self.summary(sha)
        if summary is None:
            raise KeyError(sha)
        x = np.random.default_rng(0).standard_normal(summary["input_shape"]).astype(np.float32)
        run = make_runner(self.config.runtime, self.model_path(sha).read_bytes(), x, threads)
        self._runners[key] = run
        while len(self._runners) > 8:
            self._runners.popitem(last=False)
        return run

    def settings(self, threads: int, clock: str = "wall") -> dict[str, Any]:
        """The runtime settings of a measurement (as a local backend reports them)."""
        base = runtime_settings(self.config.runtime, threads)
        return base if clock == "wall" else {**base, "clock": clock}

    def info(self) -> dict[str, Any]:
        """The document of ``GET /v1/info``."""
        from hsconas import __version__

        return {
            "agent": "hsconas",
            "version": __version__,
            "runtime": self.config.runtime,
            "backends": [self.config.runtime],
            "cpu_count": os.cpu_count(),
            "fingerprint": fingerprint(self.config.runtime, self.settings(1)),
            "counters": dict(self.counters),
            "refusals": dict(self.refusals),
            "limits": {
                "max_model_bytes": self.config.max_model_bytes,
                "max_json_bytes": self.config.max_json_bytes,
                "per_client": self.config.per_client,
                "max_measure_s": self.config.max_measure_s,
                **asdict(self.config.limits),
            },
            "uptime_s": round(time.time() - self.started, 1),
        }


class _BodyTooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI wrapper of the agent's app: token, size limits and per-client concurrency.

    It runs before the app reads anything of the body, so a refused request costs its headers.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], state: AgentState):
        self.app = app
        self.state = state
        token = state.config.token
        self._token = None if token is None else token.encode()

    def _check(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """``(status, reason)`` of a refusal by token or declared size, or ``None``."""
        if self._token is not None:
            scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not given:
                return 401, "no bearer token"
            if not hmac.compare_digest(given.strip(), self._token):
                return 401, "wrong token"
        upload = scope["method"] == "PUT" and scope["path"].startswith("/v1/models/")
        cap = self.state.config.max_model_bytes if upload else self.state.config.max_json_bytes
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "bad Content-Length"
            if int(length) > cap:
                return 413, f"body too large: {int(length)} bytes, the limit is {cap}"
        elif upload:
            return 411, "Content-Length required for uploads"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # websockets and the like: closed without an answer
        state = self.state
        client = str((scope.get("client") or ("unknown", 0))[0])
        method, path = str(scope["method"]), str(scope["path"])
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        refusal = self._check(scope, headers)
        if refusal is not None:
            status, reason = refusal
            state.refuse(client, method, path, status, reason)
            await _send_json(send, status, {"error": reason})
            return
        if state.in_flight[client] >= state.config.per_client:
            reason = (
                f"too many requests in flight from this client (limit {state.config.per_client})"
            )
            state.refuse(client, method, path, 429, reason)
            await _send_json(send, 429, {"error": reason})
            return
        upload = method == "PUT" and path.startswith("/v1/models/")
        cap = state.config.max_model_bytes if upload else state.config.max_json_bytes
        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        state.in_flight[client] += 1
        try:
            await self.app(scope, capped_receive, watched_send)
        except _BodyTooLarge:
            reason = f"body too large: more than {cap} bytes streamed"
            state.refuse(client, method, path, 413, reason)
            if not started:
                await _send_json(send, 413, {"error": reason})
        finally:
            state.in_flight[client] -= 1
            if state.in_flight[client] <= 0:
                del state.in_flight[client]


def _result_doc(result: TimingResult) -> dict[str, Any]:
    return {
        "median_ms": result.median_ms,
        "spread_ms": result.spread_ms,
        "ci_low_ms": result.ci_low_ms,
        "ci_high_ms": result.ci_high_ms,
        "n_runs": result.n_runs,
        "stable": result.stable,
        "warmup_runs": result.warmup_runs,
        "elapsed_s": result.elapsed_s,
        "stop_reason": result.stop_reason,
        "times_ms": list(result.times_ms),
    }


class TimingSpec(BaseModel):
    """The timing protocol a client asks for (:class:`hsconas.hardware.timing.TimingConfig`)."""

    warmup_runs: int = Field(default=3, ge=0, le=1000)
    warmup_time_s: float = Field(default=0.05, ge=0, le=10)
    min_runs: int = Field(default=10, ge=5, le=10000)
    max_runs: int = Field(default=500, ge=5, le=100000)
    max_time_s: float = Field(default=1.5, gt=0)
    target_rel_ci: float = Field(default=0.01, gt=0, lt=1)


class ReferenceSpec(BaseModel):
    """The reference network a measurement is paired with, and its calibrated latency (ms)."""

    model: str = Field(pattern=_SHA.pattern)
    base_ms: float = Field(gt=0)


class MeasureRequest(BaseModel):
    """The body of ``POST /v1/measure``."""

    model: str = Field(pattern=_SHA.pattern)
    threads: int = Field(default=1, ge=1, le=1024)
    clock: Literal["wall", "thread_cpu"] = "wall"
    timing: TimingSpec = Field(default_factory=TimingSpec)
    reference: ReferenceSpec | None = None


def create_app(config: AgentConfig) -> Guard:
    """The agent's ASGI application (the FastAPI app inside a :class:`Guard`)."""
    state = AgentState(config)
    app = FastAPI(title="hsconas device agent", docs_url=None, redoc_url=None, openapi_url=None)
    max_threads = os.cpu_count() or 1

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def refused(request: Request, status: int, reason: str) -> JSONResponse:
        state.refuse(client_of(request), request.method, request.url.path, status, reason)
        return JSONResponse({"error": reason}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return refused(request, 422, f"invalid request: {where}: {first.get('msg', 'invalid')}")

    @app.get("/v1/info")
    async def info() -> dict[str, Any]:
        return state.info()

    @app.get("/v1/models/{sha}")
    async def has_model(sha: str, request: Request) -> JSONResponse:
        if not _SHA.match(sha):
            return refused(request, 400, "bad model id: expected 64 lower-case hex digits")
        summary = state.summary(sha)
        if summary is None:
            return JSONResponse({"error": "unknown model"}, status_code=404)
        return JSONResponse({"sha256": sha, **summary})

    @app.put("/v1/models/{sha}")
    async def put_model(sha: str, request: Request) -> JSONResponse:
        if not _SHA.match(sha):
            return refused(request, 400, "bad model id: expected 64 lower-case hex digits")
        held = state.summary(sha)
        if held is not None:
            return JSONResponse({"sha256": sha, "cached": True, **held}, status_code=200)
        tmp = config.cache_dir / "incoming" / f"{sha}.{os.getpid()}.{time.monotonic_ns()}"
        digest = hashlib.sha256()
        try:
            with anyio.fail_after(config.upload_timeout_s), tmp.open("wb") as fh:
                async for chunk in request.stream():
                    digest.update(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != sha:
                return refused(request, 400, "sha256 mismatch: the body's hash is not the URL's")
            try:
                summary = await anyio.to_thread.run_sync(_validate, tmp)
            except ValidationError as exc:
                return refused(request, 422, f"model refused: {exc}")
            os.replace(tmp, state.model_path(sha))
            meta = config.cache_dir / f"{sha}.json"
            meta.write_text(json.dumps({**summary, "size": state.model_path(sha).stat().st_size}))
        except ClientDisconnect:
            return refused(request, 400, "upload truncated: the client disconnected")
        except TimeoutError:
            return refused(request, 408, f"upload slower than {config.upload_timeout_s:g} s")
        finally:
            tmp.unlink(missing_ok=True)
        state.counters["models_received"] += 1
        logger.info("model %s received (%s)", sha[:12], ", ".join(summary["ops"]))
        return JSONResponse({"sha256": sha, "cached": False, **summary}, status_code=201)

    def _validate(path: Path) -> dict[str, Any]:
        with state.validate_lock:
            return validate_in_worker(path, config.limits)

    @app.post("/v1/measure")
    async def measure(req: MeasureRequest, request: Request) -> JSONResponse:
        if req.threads > max_threads:
            return refused(request, 422, f"invalid request: threads above {max_threads} cores")
        if req.clock == "thread_cpu" and req.threads != 1:
            return refused(request, 422, "invalid request: clock thread_cpu needs threads 1")
        if req.timing.max_time_s > config.max_measure_s:
            return refused(
                request, 422,
                f"invalid request: timing.max_time_s above this agent's {config.max_measure_s:g} s",
            )  # fmt: skip
        try:
            timing = TimingConfig(**req.timing.model_dump())
        except ValueError as exc:
            return refused(request, 422, f"invalid request: timing: {exc}")
        needed = [req.model] + ([req.reference.model] if req.reference else [])
        for sha in needed:
            if state.summary(sha) is None:
                return refused(request, 404, f"unknown model: {sha[:12]}... (upload it first)")

        def run() -> dict[str, Any]:
            with state.measure_lock:
                timer = wall_clock_ms if req.clock == "wall" else thread_cpu_ms
                target = timer(state.runner(req.model, req.threads))
                if req.reference is None:
                    result = time_runs(target, timing)
                else:
                    ref = timer(state.runner(req.reference.model, req.threads))
                    result = paired_time_runs(target, ref, req.reference.base_ms, timing)
                settings = state.settings(req.threads, req.clock)
                return {
                    "result": _result_doc(result),
                    "settings": settings,
                    "fingerprint": fingerprint(config.runtime, settings),
                }

        doc = await anyio.to_thread.run_sync(run)
        state.counters["measurements_served"] += 1
        return JSONResponse(doc)

    return Guard(app, state)
