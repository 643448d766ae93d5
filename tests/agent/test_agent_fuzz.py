"""Fuzz a live agent on loopback with malformed, oversized, truncated, wrong-token and random
requests (seeded, bounded in time); it must still serve a valid measurement afterwards."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time

import httpx
from agent_helpers import LiveAgent, measure_body, sha, tiny_onnx

BUDGET_S = 6.0
"""Wall-time budget of the fuzzing loop, seconds (it stops early when the budget is spent)."""


def _send(agent: LiveAgent, data: bytes, *, shut: bool) -> None:
    """Write raw bytes, read whatever comes back within a short time, close."""
    with (
        contextlib.suppress(TimeoutError, ConnectionResetError, BrokenPipeError),
        socket.create_connection((agent.host, agent.port), timeout=2) as s,
    ):
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        s.recv(65536)


def _request(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: fuzz\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1", "replace") + b"\r\n" + body


def _case(rng: random.Random, agent: LiveAgent, valid_sha: str) -> tuple[bytes, bool]:
    """One hostile request: its bytes and whether to half-close after sending them."""
    auth = {"Authorization": f"Bearer {agent.token}"}
    kind = rng.randrange(10)
    junk = rng.randbytes(rng.randrange(1, 3000))
    if kind == 0:  # not HTTP at all
        return junk, rng.random() < 0.5
    if kind == 1:  # wrong or malformed tokens
        token = rng.choice(["", "Bearer", "Bearer " + "x" * 64, "Basic Zm9v", junk.hex()[:80]])
        return _request("GET", "/v1/info", {"Authorization": token}, b""), False
    if kind == 2:  # a body declared larger than the limit, never sent
        h = {**auth, "Content-Length": str(rng.randrange(5 << 20, 1 << 40))}
        return _request("PUT", f"/v1/models/{valid_sha}", h, b""), False
    if kind == 3:  # truncated upload
        h = {**auth, "Content-Length": str(len(junk) + 1000)}
        return _request("PUT", f"/v1/models/{sha(junk)}", h, junk), True
    if kind == 4:  # random JSON-ish measure bodies
        doc = rng.choice(
            [
                {"model": valid_sha, "threads": rng.randrange(-5, 5000)},
                {"model": valid_sha, "timing": {"max_time_s": rng.uniform(-1, 1e6)}},
                {"model": "../" * 10, "clock": junk.hex()[:20]},
                {"model": valid_sha, "reference": {"model": valid_sha, "base_ms": -1}},
                [1, 2, 3],
            ]
        )
        body = json.dumps(doc).encode() if rng.random() < 0.7 else junk
        h = {**auth, "Content-Type": "application/json", "Content-Length": str(len(body))}
        return _request("POST", "/v1/measure", h, body), False
    if kind == 5:  # random paths and methods
        path = rng.choice(["/", "/v1/models/" + "A" * 64, "/v1/../etc/passwd", "/" + junk.hex()])
        method = rng.choice(["GET", "DELETE", "PATCH", "OPTIONS", "TRACE", "PUT"])
        return _request(method, path[:2000], {**auth, "Content-Length": "0"}, b""), False
    if kind == 6:  # a wrong Content-Length header
        h = {**auth, "Content-Length": rng.choice(["-1", "abc", "1e9", " 12"])}
        return _request("POST", "/v1/measure", h, b"{}"), False
    if kind == 7:  # random bytes uploaded under their own hash: the validation worker refuses
        h = {**auth, "Content-Length": str(len(junk))}
        return _request("PUT", f"/v1/models/{sha(junk)}", h, junk), False
    if kind == 8:  # a JSON body larger than its limit
        body = b'{"model": "' + b"a" * (70 << 10) + b'"}'
        h = {**auth, "Content-Length": str(len(body))}
        return _request("POST", "/v1/measure", h, body), False
    # huge or many headers
    h = {**auth, **{f"X-{i}": "y" * rng.randrange(1, 5000) for i in range(rng.randrange(1, 60))}}
    return _request("GET", "/v1/info", h, b""), False


def test_agent_survives_fuzzing_and_still_measures(agent: LiveAgent) -> None:
    model = tiny_onnx(16, 32, seed=11)
    r = httpx.put(
        f"{agent.url}/v1/models/{sha(model)}", content=model, headers=agent.headers(), timeout=120
    )
    assert r.status_code == 201
    refused_before = agent.info()["counters"]["requests_refused"]
    rng = random.Random(2024)
    sent = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < BUDGET_S and sent < 400:
        data, shut = _case(rng, agent, sha(model))
        _send(agent, data, shut=shut)
        sent += 1
    assert sent >= 20  # the loop really ran
    assert agent.proc.poll() is None, "the agent died"
    r = httpx.post(
        f"{agent.url}/v1/measure", content=measure_body(sha(model)), timeout=120,
        headers={**agent.headers(), "Content-Type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert res["median_ms"] > 0 and res["n_runs"] >= 5
    info = agent.info()
    assert info["counters"]["requests_refused"] > refused_before + sent // 4
    assert info["counters"]["models_received"] == 1  # nothing hostile was kept
