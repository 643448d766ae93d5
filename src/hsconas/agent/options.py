"""The options of ``hsconas device serve`` (also ``python -m hsconas.agent serve``); imports only
argparse, so building the CLI's parser does not import the agent's server libraries."""

from __future__ import annotations

import argparse
from pathlib import Path

from hsconas.argtypes import positive_float, positive_int

__all__ = ["add_serve_arguments"]


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``hsconas device serve`` (and ``python -m hsconas.agent serve``)."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=8765,
        help="port to listen on; 0: a free port, printed (default: 8765)",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="file holding the bearer token (default: none; needs --insecure-loopback)",
    )
    p.add_argument(
        "--backend",
        default="onnxruntime",
        choices=("onnxruntime", "openvino"),
        help="runtime that times the models (default: onnxruntime)",
    )
    p.add_argument(
        "--max-model-mb", type=positive_float, default=256.0, metavar="MB",
        help="largest model upload, MiB (default: 256)",
    )  # fmt: skip
    p.add_argument(
        "--tls-cert",
        type=Path,
        metavar="C",
        help="TLS certificate, PEM (default: none, plain HTTP)",
    )
    p.add_argument("--tls-key", type=Path, metavar="K", help="TLS private key, PEM (default: none)")
    p.add_argument(
        "--insecure-loopback",
        action="store_true",
        help="serve without a token, only on a loopback address (default: off)",
    )
    p.add_argument(
        "--allow-plain-http",
        action="store_true",
        help="serve a non-loopback address without TLS; the token crosses the network in clear "
        "(default: off)",
    )
    p.add_argument(
        "--cache-dir", type=Path, metavar="DIR",
        help="where received models are kept (default: $XDG_CACHE_HOME/hsconas/agent-models)",
    )  # fmt: skip
    p.add_argument(
        "--per-client", type=positive_int, default=4, metavar="N",
        help="requests in flight per client address (default: 4)",
    )  # fmt: skip
    p.add_argument(
        "--max-measure-s", type=positive_float, default=60.0, metavar="S",
        help="longest timed phase a client may ask for, seconds (default: 60)",
    )  # fmt: skip
    p.add_argument(
        "--validate-mem-mb", type=positive_int, default=4096, metavar="MB",
        help="address-space limit of the model validation worker, MiB (default: 4096)",
    )  # fmt: skip
    p.add_argument(
        "--validate-timeout-s", type=positive_float, default=60.0, metavar="S",
        help="time limit of the model validation worker, seconds (default: 60)",
    )  # fmt: skip
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning"),
        help="log level (default: info)",
    )
