"""The ``remote:URL`` backend: time networks on a device agent (``hsconas device serve``).

A :class:`RemoteBackend` exports each module to ONNX here (the same in-memory export as the local
``onnxruntime`` backend), uploads it to the agent once (content-addressed by its sha256: a network
measured twice is sent once), and asks the agent to time it. The agent runs the protocol of
:mod:`hsconas.hardware.timing` on its runtime, paired with the reference network when the backend
has one (the reference is uploaded and calibrated on the agent too), and answers with the timing
result and its own fingerprint, which is what the results store keeps. Results go into the store
one by one as they arrive (:func:`hsconas.hardware.measure.measure_module`), so a broken
connection loses nothing measured.

The token comes from, in order: the ``token`` argument, the file given to :func:`use_token_file`
(the CLI's ``--token-file``), ``$HSCONAS_DEVICE_TOKEN``. An HTTPS agent with a self-signed
certificate is trusted through ``$HSCONAS_DEVICE_CA`` (a PEM file). Requests time out, and a
connection error, a 429 or a 5xx answer is retried with exponential backoff; a refused token is a
:class:`RemoteAuthError` (one line and exit 2 in the CLI).
"""

from __future__ import annotations

import hashlib
import os
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch
from torch import nn

from hsconas.errors import HsconasError
from hsconas.hardware.backends import Backend, _example, export_onnx_bytes
from hsconas.hardware.reference import calibration_timing
from hsconas.hardware.timing import TimingConfig, TimingResult

__all__ = [
    "TOKEN_ENV",
    "AgentClient",
    "AgentLostModelError",
    "RemoteAuthError",
    "RemoteBackend",
    "RemoteError",
    "check_url",
    "resolve_token",
    "use_token_file",
]

TOKEN_ENV = "HSCONAS_DEVICE_TOKEN"
"""Environment variable holding the agent's token when no token file is given."""

CA_ENV = "HSCONAS_DEVICE_CA"
"""Environment variable naming a PEM file of CA certificates to trust for HTTPS agents."""

_token_file: Path | None = None


class RemoteError(HsconasError):
    """The agent cannot be reached, or it refused or failed a request (the reason is its own)."""


class RemoteAuthError(RemoteError):
    """The agent refused the token (none given, or a wrong one)."""


class AgentLostModelError(RemoteError):
    """The agent does not hold a model it was sent before (restarted with another cache)."""


def use_token_file(path: Path | None) -> None:
    """Make ``path`` the token file of remote backends created without a token (CLI's
    ``--token-file``); ``None`` forgets it."""
    global _token_file
    _token_file = path


def resolve_token(token_file: Path | None = None) -> str | None:
    """The token from ``token_file``, else :func:`use_token_file`'s file, else ``$HSCONAS_DEVICE_TOKEN``.

    Raises:
        TokenFileError: the token file is unusable.
    """
    path = token_file or _token_file
    if path is not None:
        from hsconas.agent.server import read_token_file

        return read_token_file(path)
    return os.environ.get(TOKEN_ENV) or None


def check_url(url: str) -> str:
    """``url`` reduced to ``scheme://host:port``.

    Raises:
        RemoteError: not an ``http(s)://HOST:PORT`` URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(
            f"bad agent URL {url!r}: expected http(s)://HOST:PORT (e.g. remote:http://10.0.0.5:8765)"
        )
    if parts.path not in ("", "/") or parts.query:
        raise RemoteError(f"bad agent URL {url!r}: give only http(s)://HOST:PORT, no path")
    return f"{parts.scheme}://{parts.netloc}"


class AgentClient:
    """HTTP client of one device agent, with timeouts and retries.

    Args:
        url: ``http(s)://HOST:PORT`` of the agent.
        token: bearer token (``None``: send none, for an agent run with ``--insecure-loopback``).
        timeout_s: connect and read timeout of a request, seconds (a measurement's read timeout
            adds the time the measurement may take).
        retries: further tries after a connection error, a 429 or a 5xx answer.
        backoff_s: wait before the first retry, seconds; doubled each retry.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout_s: float = 30.0,
        retries: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        import httpx

        self.url = check_url(url)
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        headers = {"User-Agent": "hsconas"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        ca = os.environ.get(CA_ENV)
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            verify=ssl.create_default_context(cafile=ca) if ca else True,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, *, timeout_s: float | None = None, **kw: Any) -> Any:
        import httpx

        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                r = self._http.request(
                    method, path, timeout=timeout_s if timeout_s else httpx.USE_CLIENT_DEFAULT, **kw
                )
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # retrying cannot help
                    raise RemoteError(
                        f"agent {self.url}: its TLS certificate is not trusted ({exc}); for a "
                        f"self-signed certificate set ${CA_ENV} to its PEM file"
                    ) from None
                continue
            if r.status_code == 429 or r.status_code >= 500:
                last = f"HTTP {r.status_code} {_reason(r)}"
                continue
            if r.status_code == 401:
                raise RemoteAuthError(
                    f"agent {self.url} refused the token ({_reason(r)}); give the agent's token "
                    f"with --token-file FILE or ${TOKEN_ENV}"
                )
            return r
        raise RemoteError(f"agent {self.url} failed after {self.retries + 1} tries: {last}")

    def _ok(self, r: Any, what: str) -> dict[str, Any]:
        if r.status_code >= 400:
            raise RemoteError(f"agent {self.url} refused {what}: HTTP {r.status_code} {_reason(r)}")
        try:
            doc = r.json()
        except ValueError:
            raise RemoteError(f"agent {self.url} answered {what} with something not JSON") from None
        if not isinstance(doc, dict):
            raise RemoteError(f"agent {self.url} answered {what} with an unexpected document")
        return doc

    def info(self) -> dict[str, Any]:
        """``GET /v1/info``: fingerprint, runtime, limits, counters."""
        return self._ok(self._request("GET", "/v1/info"), "the info request")

    def has_model(self, sha: str) -> bool:
        """Whether the agent holds the model ``sha`` already."""
        r = self._request("GET", f"/v1/models/{sha}")
        if r.status_code == 404:
            return False
        self._ok(r, "the model query")
        return True

    def upload(self, data: bytes) -> str:
        """Upload ONNX ``data`` unless the agent holds it; its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        if not self.has_model(sha):
            r = self._request(
                "PUT", f"/v1/models/{sha}", content=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout_s=self.timeout_s + len(data) / 1e6,  # a slow link: 1 MB/s at worst
            )  # fmt: skip
            self._ok(r, "the model")
        return sha

    def measure(
        self,
        sha: str,
        *,
        threads: int | None,
        clock: str,
        timing: TimingConfig,
        reference: tuple[str, float] | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/measure``: the agent's timing result, settings and fingerprint."""
        body: dict[str, Any] = {
            "model": sha,
            "threads": 1 if threads is None else int(threads),
            "clock": clock,
            "timing": timing.as_dict(),
            "reference": None
            if reference is None
            else {"model": reference[0], "base_ms": float(reference[1])},
        }
        # the read may wait for the agent's other measurements (it times one at a time)
        wait = self.timeout_s + 4 * (timing.max_time_s + timing.warmup_time_s) + 30
        r = self._request("POST", "/v1/measure", json=body, timeout_s=wait)
        if r.status_code == 404:
            raise AgentLostModelError(f"agent {self.url} does not hold the model: {_reason(r)}")
        doc = self._ok(r, "a measurement")
        if not isinstance(doc.get("result"), dict) or not isinstance(doc.get("fingerprint"), dict):
            raise RemoteError(f"agent {self.url} answered a measurement without result/fingerprint")
        return doc


def _reason(r: Any) -> str:
    try:
        doc = r.json()
    except ValueError:
        return r.reason_phrase or ""
    return str(doc.get("error") or doc.get("detail") or "") if isinstance(doc, dict) else ""


_RESULT_FIELDS = (
    "median_ms", "spread_ms", "ci_low_ms", "ci_high_ms", "n_runs", "stable", "warmup_runs",
    "elapsed_s", "stop_reason",
)  # fmt: skip


def _timing_result(doc: dict[str, Any], url: str) -> TimingResult:
    try:
        return TimingResult(
            median_ms=float(doc["median_ms"]),
            spread_ms=float(doc["spread_ms"]),
            ci_low_ms=float(doc["ci_low_ms"]),
            ci_high_ms=float(doc["ci_high_ms"]),
            n_runs=int(doc["n_runs"]),
            stable=bool(doc["stable"]),
            warmup_runs=int(doc["warmup_runs"]),
            elapsed_s=float(doc["elapsed_s"]),
            stop_reason=str(doc["stop_reason"]),
            times_ms=tuple(float(t) for t in doc.get("times_ms", ())),
        )
    except (KeyError, TypeError, ValueError):
        raise RemoteError(f"agent {url} answered a malformed timing result") from None


class RemoteBackend(Backend):
    """Measurements on a device agent at ``url`` (see the module docstring).

    Args:
        url: ``http(s)://HOST:PORT`` of the agent.
        threads: intra-op threads the agent's runtime uses.
        clock: ``wall`` or ``thread_cpu`` (on the agent).
        reference: time every run against this reference network, on the agent.
        token: the agent's token (default: see the module docstring).
        timeout_s: request timeout, seconds.
        retries: retries of a failed request.
    """

    name = "remote"

    def __init__(
        self,
        url: str,
        *,
        threads: int | None = 1,
        clock: str = "wall",
        reference: Any = None,
        token: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 4,
    ) -> None:
        super().__init__(threads=threads, clock=clock, reference=reference)
        self.client = AgentClient(
            url, token if token is not None else resolve_token(), timeout_s=timeout_s,
            retries=retries,
        )  # fmt: skip
        self.url = self.client.url
        self._info: dict[str, Any] | None = None
        self._last_fp: dict[str, Any] | None = None
        self._ref_sha: tuple[str, str] | None = None  # (reference key, sha256)

    def __repr__(self) -> str:
        return f"RemoteBackend({self.url!r}, threads={self.threads}, clock={self.clock!r})"

    def info(self) -> dict[str, Any]:
        """The agent's ``/v1/info`` (fetched once; its counters are not refreshed)."""
        if self._info is None:
            self._info = self.client.info()
        return self._info

    def runtime_settings(self) -> dict[str, Any]:
        """The agent's runtime settings with this backend's threads, plus the agent's identity
        (runtime, host name and CPU model), so that results of different devices never mix."""
        info = self.info()
        fp = info.get("fingerprint") or {}
        settings = {**(fp.get("settings") or {}), "threads": self.threads}
        settings["runtime"] = info.get("runtime")
        settings["agent"] = f"{fp.get('hostname')}/{fp.get('cpu_model')}"
        return self._with_clock(settings)

    def device_fingerprint(self) -> dict[str, Any]:
        """The agent's fingerprint from its last measurement (its ``/v1/info`` before one)."""
        fp = dict(self._last_fp or self.info().get("fingerprint") or {})
        fp["remote"] = self.url
        return fp

    @contextmanager
    def session(self, module: nn.Module, example: torch.Tensor) -> Iterator[Callable[[], float]]:
        raise HsconasError("a remote backend times on its agent; call measure()")
        yield  # pragma: no cover

    def _upload_module(self, module: nn.Module, example: torch.Tensor) -> str:
        was_training = module.training
        module.eval()
        try:
            return self.client.upload(export_onnx_bytes(module, example))
        finally:
            module.train(was_training)

    def _reference_sha(self) -> str:
        ref = self.reference
        if ref is None:
            raise ValueError("this backend has no reference network")
        if self._ref_sha is None or self._ref_sha[0] != ref.key:
            sha = self._upload_module(ref.module, _example(ref.input_shape, 1))
            self._ref_sha = (ref.key, sha)
        return self._ref_sha[1]

    def _measure_sha(
        self, sha: str, timing: TimingConfig, reference: tuple[str, float] | None
    ) -> TimingResult:
        doc = self.client.measure(
            sha, threads=self.threads, clock=self.clock, timing=timing, reference=reference
        )
        self._last_fp = doc["fingerprint"]
        return _timing_result(doc["result"], self.url)

    def measure(
        self,
        module: nn.Module,
        input_shape: tuple[int, ...],
        *,
        batch: int = 1,
        timing: TimingConfig | None = None,
    ) -> TimingResult:
        """Export ``module`` for input ``(batch, *input_shape)``, upload it, time it on the agent.

        Raises:
            RemoteError: the agent is unreachable or refused the model or the request.
        """
        example = _example(tuple(input_shape), batch)
        for attempt in range(2):
            sha = self._upload_module(module, example)
            reference = None
            if self.reference is not None:
                base = self.reference.base_ms or self.calibrate_reference().median_ms
                reference = (self._reference_sha(), base)
            try:
                return self._measure_sha(sha, timing or TimingConfig(), reference)
            except AgentLostModelError:
                if attempt:
                    raise
                self._ref_sha = None  # the agent lost its cache: send both again
        raise AssertionError("unreachable")

    def calibrate_reference(self, timing: TimingConfig | None = None) -> TimingResult:
        """Time the reference network alone on the agent and set its ``base_ms``."""
        if self.reference is None:
            raise ValueError("this backend has no reference network")
        cfg = timing or calibration_timing()
        try:
            result = self._measure_sha(self._reference_sha(), cfg, None)
        except AgentLostModelError:
            self._ref_sha = None  # the agent lost its cache: send the reference again
            result = self._measure_sha(self._reference_sha(), cfg, None)
        self.reference.base_ms = result.median_ms
        return result
