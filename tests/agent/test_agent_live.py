"""A live agent on loopback: authentication, size limits, uploads, validation, measurements,
per-client concurrency; every refusal counted and logged."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_helpers import LiveAgent, live_agent, measure_body, sha, tiny_onnx


def _raw(agent: LiveAgent, request: bytes, *, read_s: float = 10.0, shut: bool = False) -> bytes:
    """Send raw bytes to the agent; what it answers (until it closes or ``read_s`` passes)."""
    with socket.create_connection((agent.host, agent.port), timeout=read_s) as s:
        s.sendall(request)
        if shut:
            s.shutdown(socket.SHUT_WR)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
                head, sep, body = got.partition(b"\r\n\r\n")
                length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                if sep and length and len(body) >= int(length.group(1)):
                    break  # one whole answer
        except (TimeoutError, ConnectionResetError):
            pass
        return got


def _put(agent: LiveAgent, data: bytes, digest: str | None = None) -> httpx.Response:
    return httpx.put(
        f"{agent.url}/v1/models/{digest or sha(data)}", content=data, headers=agent.headers(),
        timeout=120,
    )  # fmt: skip


def _measure(agent: LiveAgent, body: str, token: str | None = "own") -> httpx.Response:
    return httpx.post(
        f"{agent.url}/v1/measure", content=body, timeout=120,
        headers={**agent.headers(token), "Content-Type": "application/json"},
    )  # fmt: skip


def test_requests_without_or_with_a_wrong_token_are_refused_and_counted(agent: LiveAgent) -> None:
    before = agent.info()["counters"]["requests_refused"]
    assert httpx.get(f"{agent.url}/v1/info", timeout=10).status_code == 401
    r = httpx.get(f"{agent.url}/v1/info", headers=agent.headers("x" * 40), timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "wrong token"
    r = httpx.get(f"{agent.url}/v1/info", headers={"Authorization": "Basic abc"}, timeout=10)
    assert r.status_code == 401
    info = agent.info()
    assert info["counters"]["requests_refused"] == before + 3
    assert info["refusals"]["401 wrong token"] >= 1
    assert "refused GET /v1/info from 127.0.0.1 (401): wrong token" in agent.log_text()
    assert info["fingerprint"]["backend"] == "onnxruntime" and info["fingerprint"]["cpu_model"]


def test_upload_is_content_addressed_validated_and_cached(agent: LiveAgent) -> None:
    data = tiny_onnx(8, 16, seed=1)
    r = _put(agent, data)
    assert r.status_code == 201, r.text
    assert r.json()["input_shape"] == [1, 3, 16, 16] and r.json()["cached"] is False
    assert _put(agent, data).json()["cached"] is True
    got = httpx.get(f"{agent.url}/v1/models/{sha(data)}", headers=agent.headers(), timeout=10)
    assert got.status_code == 200 and got.json()["ops"] == ["Conv", "GlobalAveragePool", "Relu"]


def test_a_body_whose_hash_is_not_the_url_is_refused(agent: LiveAgent) -> None:
    data = tiny_onnx(8, 16, seed=2)
    other = "0" * 64
    r = _put(agent, data, other)
    assert r.status_code == 400 and "sha256 mismatch" in r.json()["error"]
    assert httpx.get(f"{agent.url}/v1/models/{other}", headers=agent.headers()).status_code == 404
    r = _put(agent, data, "../../etc/passwd")
    assert r.status_code in (400, 404)


def test_garbage_onnx_is_refused_and_the_agent_keeps_serving(agent: LiveAgent) -> None:
    garbage = b"\x08\x07garbage that is not a protobuf" * 50
    r = _put(agent, garbage)
    assert r.status_code == 422 and "not an ONNX model" in r.json()["error"]
    assert agent.info()["refusals"].get("422 model refused", 0) >= 1
    ok = tiny_onnx(8, 16, seed=3)
    assert _put(agent, ok).status_code == 201


def test_oversized_upload_is_refused_from_its_header_before_the_body(agent: LiveAgent) -> None:
    # headers only: were the body read first, this would wait for 100 MB that never come
    t0 = time.perf_counter()
    answer = _raw(
        agent,
        f"PUT /v1/models/{'a' * 64} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent.token}\r\n"
        f"Content-Length: {100 << 20}\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 413") and b"body too large" in answer
    assert time.perf_counter() - t0 < 5
    chunked = httpx.put(
        f"{agent.url}/v1/models/{'b' * 64}", headers=agent.headers(),
        content=iter([b"x" * 1000] * 10),
    )  # fmt: skip
    assert chunked.status_code == 411


def test_an_oversized_json_body_is_refused(agent: LiveAgent) -> None:
    r = _measure(agent, measure_body("c" * 64, pad="x" * (70 << 10)))
    assert r.status_code == 413


def test_a_truncated_upload_is_refused_and_logged(agent: LiveAgent) -> None:
    data = tiny_onnx(8, 16, seed=4)
    head = (
        f"PUT /v1/models/{sha(data)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent.token}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    _raw(agent, head + data[:100], read_s=3, shut=True)
    deadline = time.time() + 10
    while "upload truncated" not in agent.log_text() and time.time() < deadline:
        time.sleep(0.2)
    assert "upload truncated" in agent.log_text()
    got = httpx.get(f"{agent.url}/v1/models/{sha(data)}", headers=agent.headers(), timeout=10)
    assert got.status_code == 404


def test_measure_times_the_model_with_the_local_protocol(agent: LiveAgent) -> None:
    small, big = tiny_onnx(4, 16, seed=5), tiny_onnx(64, 64, seed=6)
    for d in (small, big):
        assert _put(agent, d).status_code in (200, 201)
    served = agent.info()["counters"]["measurements_served"]
    docs: dict[str, Any] = {}
    for name, d in (("small", small), ("big", big)):
        r = _measure(agent, measure_body(sha(d)))
        assert r.status_code == 200, r.text
        docs[name] = r.json()
    res = docs["big"]["result"]
    assert res["n_runs"] >= 5 and res["warmup_runs"] >= 3 and len(res["times_ms"]) == res["n_runs"]
    assert res["ci_low_ms"] <= res["median_ms"] <= res["ci_high_ms"]
    assert res["median_ms"] > 3 * docs["small"]["result"]["median_ms"]
    fp = docs["big"]["fingerprint"]
    assert fp["settings"] == docs["big"]["settings"] and fp["settings"]["threads"] == 1
    assert fp["cpu_model"] == agent.info()["fingerprint"]["cpu_model"]
    # paired with a reference: the big model against the small one, base 1 ms
    ref = {"model": sha(small), "base_ms": 1.0}
    paired = _measure(agent, measure_body(sha(big), reference=ref)).json()["result"]
    ratio = res["median_ms"] / docs["small"]["result"]["median_ms"]
    assert 0.3 * ratio < paired["median_ms"] < 3 * ratio
    assert agent.info()["counters"]["measurements_served"] == served + 3


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"model": "' + "d" * 64 + '"}', 404),
        ('{"model": "not-a-hash"}', 422),
        ('{"model": ', 422),
        ('{"model": "' + "d" * 64 + '", "threads": 0}', 422),
        ('{"model": "' + "d" * 64 + '", "timing": {"max_time_s": 1e9}}', 422),
        ('{"model": "' + "d" * 64 + '", "clock": "thread_cpu", "threads": 2}', 422),
    ],
    ids=["unknown-model", "bad-hash", "bad-json", "zero-threads", "too-long", "thread-cpu"],
)
def test_bad_measure_requests_are_refused(agent: LiveAgent, body: str, status: int) -> None:
    r = _measure(agent, body)
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_per_client_limit_and_insecure_loopback(tmp_path: Path) -> None:
    with live_agent(tmp_path, "--per-client", "1", token=False) as a:
        data = tiny_onnx(32, 64, seed=7)
        assert _put(a, data).status_code == 201  # no token needed on insecure loopback
        slow = (
            '{"model": "%s", "timing": {"max_time_s": 1.5, "min_runs": 10000, "max_runs": 10000}}'
        )
        results: list[int] = []
        t = threading.Thread(
            target=lambda: results.append(_measure(a, slow % sha(data)).status_code)
        )
        t.start()
        time.sleep(0.5)
        second = _measure(a, measure_body(sha(data)))
        t.join(30)
        assert results == [200]
        assert second.status_code == 429 and "in flight" in second.json()["error"]
        assert _measure(a, measure_body(sha(data))).status_code == 200
        assert (
            a.info()["refusals"]["429 too many requests in flight from this client (limit 1)"] == 1
        )
