"""Start the device agent: the startup checks (token, loopback, TLS) and the uvicorn server."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
import socket
import stat
import sys
from pathlib import Path

from hsconas.agent.app import AgentConfig, create_app
from hsconas.agent.validate import ModelLimits, start_fork_server
from hsconas.errors import HsconasError
from hsconas.hardware.runtimes import runtime_unavailable

__all__ = [
    "AgentStartupError",
    "TokenFileError",
    "default_cache_dir",
    "is_loopback",
    "read_token_file",
    "run_serve",
    "serve",
    "startup_token",
    "write_token_file",
]

logger = logging.getLogger("hsconas.agent")

MIN_TOKEN_CHARS = 16
"""Shortest token the agent accepts (``hsconas device token`` writes 43 characters)."""


class AgentStartupError(HsconasError):
    """The agent refuses to start with these options (no token off loopback, half a TLS pair)."""


class TokenFileError(HsconasError):
    """A token file that is missing, empty, too short or not a token."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hsconas/agent-models`` (``~/.cache`` by default): the agent's models."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hsconas" / "agent-models"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1`` or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token_file(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace stripped).

    Raises:
        TokenFileError: the file is missing or unreadable, larger than 4 KiB, or its token is
            shorter than :data:`MIN_TOKEN_CHARS` or holds whitespace or non-ASCII characters.
    """
    try:
        if path.stat().st_size > 4096:
            raise TokenFileError(f"token file {path} is larger than 4 KiB; it must hold one token")
        text = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        raise TokenFileError(f"token file {path} is not ASCII text") from None
    except OSError as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc.strerror}") from None
    if len(text) < MIN_TOKEN_CHARS:
        raise TokenFileError(
            f"token file {path} holds {len(text)} characters; a token needs at least "
            f"{MIN_TOKEN_CHARS} (make one with `hsconas device token --out FILE`)"
        )
    if any(c.isspace() or not c.isprintable() for c in text):
        raise TokenFileError(f"token file {path} must hold one token without spaces")
    return text


def write_token_file(path: Path, *, force: bool = False) -> str:
    """Write a new random token (32 bytes, URL-safe base64) to ``path``, readable by its owner only.

    Raises:
        TokenFileError: ``path`` exists and ``force`` is False.
    """
    if path.exists() and not force:
        raise TokenFileError(f"{path} exists; pass --force to replace its token")
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def startup_token(
    host: str,
    token_file: Path | None,
    *,
    insecure_loopback: bool = False,
    tls: bool = False,
    allow_plain_http: bool = False,
) -> str | None:
    """The token the agent will require, after the startup checks.

    No token file is allowed only with ``insecure_loopback`` on a loopback ``host``; a host that
    other machines can reach needs TLS or ``allow_plain_http`` (the token then crosses the network
    in clear: use it on a private network only).

    Raises:
        AgentStartupError: if the combination is refused.
        TokenFileError: if the token file is unusable.
    """
    if token_file is None:
        if not insecure_loopback:
            raise AgentStartupError(
                "the agent needs --token-file (make one with `hsconas device token --out FILE`); "
                "--insecure-loopback runs it without a token on 127.0.0.1 only"
            )
        if not is_loopback(host):
            raise AgentStartupError(
                f"--insecure-loopback serves on a loopback address only, not on {host!r}"
            )
        return None
    token = read_token_file(token_file)
    mode = token_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("token file %s is readable by other users; chmod 600 it", token_file)
    if not is_loopback(host) and not tls and not allow_plain_http:
        raise AgentStartupError(
            f"serving on {host!r} without TLS would send the token in clear; pass --tls-cert and "
            "--tls-key, or --allow-plain-http on a network you trust"
        )
    return token


def serve(
    config: AgentConfig,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    log_level: str = "info",
) -> None:
    """Serve the agent until interrupted; prints ``listening on URL`` on stdout once bound.

    ``port`` 0 binds a free port (the printed URL names it).

    Raises:
        AgentStartupError: half a TLS pair, or the address cannot be bound.
    """
    import uvicorn

    if (tls_cert is None) != (tls_key is None):
        raise AgentStartupError("--tls-cert and --tls-key go together")
    for p in (tls_cert, tls_key):
        if p is not None and not p.is_file():
            raise AgentStartupError(f"TLS file {p} does not exist")
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AgentStartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(64)
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    app = create_app(config)
    start_fork_server()
    uconfig = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        server_header=False,
        limit_concurrency=64,
        timeout_keep_alive=5,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )
    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    auth = "bearer token" if config.token is not None else "NO TOKEN (loopback only)"
    print(
        f"listening on {scheme}://{shown}:{bound} (runtime {config.runtime}, {auth}, "
        f"models in {config.cache_dir})",
        flush=True,
    )
    uvicorn.Server(uconfig).run(sockets=[sock])


def run_serve(args: argparse.Namespace) -> int:
    """Check the options of :func:`add_serve_arguments`, then serve until interrupted."""
    token = startup_token(
        args.host, args.token_file, insecure_loopback=args.insecure_loopback,
        tls=args.tls_cert is not None, allow_plain_http=args.allow_plain_http,
    )  # fmt: skip
    reason = runtime_unavailable(args.backend)
    if reason is not None:
        raise AgentStartupError(f"backend {args.backend!r} is unavailable here: {reason}")
    config = AgentConfig(
        token=token,
        cache_dir=args.cache_dir or default_cache_dir(),
        runtime=args.backend,
        max_model_bytes=int(args.max_model_mb * (1 << 20)),
        per_client=args.per_client,
        max_measure_s=args.max_measure_s,
        limits=ModelLimits(
            worker_mem_mb=args.validate_mem_mb,
            worker_time_s=args.validate_timeout_s,
            runtime=args.backend,
        ),
    )
    serve(
        config, args.host, args.port, tls_cert=args.tls_cert, tls_key=args.tls_key,
        log_level=args.log_level,
    )  # fmt: skip
    return 0
