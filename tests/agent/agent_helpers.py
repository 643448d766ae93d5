"""Helpers of the agent tests: live device agents on loopback (a subprocess, always stopped), small
ONNX models."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

START_TIMEOUT_S = 60.0

NOT_ON_DEVICE = frozenset(
    {"torch", "pandas", "scipy", "sklearn", "matplotlib", "pyarrow", "pymoo", "onnxscript", "httpx"}
)
"""Libraries of the search side that a device running only the agent does not have."""

_BLOCKER = """
import sys


class _NotOnDevice:
    blocked = set({blocked!r})

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ImportError(name + " is not installed on this device")
        return None


sys.meta_path.insert(0, _NotOnDevice())
"""


@dataclass
class LiveAgent:
    """A running ``hsconas device serve`` on 127.0.0.1."""

    url: str
    host: str
    port: int
    token: str | None
    token_file: Path | None
    proc: subprocess.Popen[bytes]
    log: Path

    def headers(self, token: str | None = "own") -> dict[str, str]:
        tok = self.token if token == "own" else token
        return {} if tok is None else {"Authorization": f"Bearer {tok}"}

    def info(self) -> dict[str, Any]:
        import httpx

        r = httpx.get(f"{self.url}/v1/info", headers=self.headers(), timeout=30)
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        return doc

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def live_agent(
    tmp: Path,
    *extra: str,
    token: bool = True,
    minimal: bool = False,
    token_text: str | None = None,
    env_extra: dict[str, str] | None = None,
) -> Iterator[LiveAgent]:
    """Start an agent on a free loopback port; stop it (terminate, then kill) on exit.

    ``token_text``: the agent's token (default: one derived from ``tmp``); ``env_extra``: set in
    the agent's environment.

    ``minimal``: run ``python -m hsconas.agent serve`` in an interpreter where importing any of
    :data:`NOT_ON_DEVICE` fails, as on a board with only the agent's dependencies.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    token_file = None
    args = ["--port", "0", "--cache-dir", str(tmp / "cache"), *extra]
    if token:
        token_file = tmp / "agent.token"
        token_text = token_text or "t0k3n-" + hashlib.sha256(str(tmp).encode()).hexdigest()[:32]
        token_file.write_text(token_text + "\n")
        token_file.chmod(0o600)
        args += ["--token-file", str(token_file)]
    else:
        token_text = None
        args += ["--insecure-loopback"]
    log = tmp / "agent.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    env.pop("HSCONAS_DEVICE_TOKEN", None)
    command = ["-m", "hsconas.cli.main", "device", "serve"]
    if minimal:
        site = tmp / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(_BLOCKER.format(blocked=sorted(NOT_ON_DEVICE)))
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
        command = ["-m", "hsconas.agent", "serve"]
    with log.open("wb") as log_fh:
        proc = subprocess.Popen(
            [sys.executable, *command, *args],
            stdout=subprocess.PIPE, stderr=log_fh, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    try:
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(START_TIMEOUT_S)
        text = line[0].decode() if line else ""
        if "listening on " not in text:
            raise RuntimeError(f"agent did not start: {text!r}; log: {log.read_text()[-2000:]}")
        url = text.split("listening on ", 1)[1].split()[0]
        port = int(url.rsplit(":", 1)[1])
        yield LiveAgent(url, "127.0.0.1", port, token_text, token_file, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveAgent]:
    """One live agent with a token, shared by the tests of a module."""
    with live_agent(tmp_path_factory.mktemp("agent"), "--max-model-mb", "4") as a:
        yield a


def tiny_onnx(channels: int = 8, size: int = 16, seed: int = 0) -> bytes:
    """A small valid ONNX model (Conv + Relu + GlobalAveragePool) built without torch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, channels, 1, 1])],
        [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def measure_body(model_sha: str, **kw: Any) -> str:
    body = {"model": model_sha, "timing": {"max_time_s": 0.2, "min_runs": 5}, **kw}
    return json.dumps(body)
