"""``hsconas device serve | token | info``: the measurement agent of a target device."""

from __future__ import annotations

import argparse
from pathlib import Path

from hsconas.agent.options import add_serve_arguments
from hsconas.argtypes import positive_float
from hsconas.cli.output import HelpFormatter, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``device`` command group."""
    group = subparsers.add_parser(
        "device",
        help="run the measurement agent on a target device, make its token, query it",
        description="A device agent is a small authenticated HTTP service that a target device "
        "(a Raspberry Pi, a Jetson, a phone under Termux, a NUC) runs with only Python, numpy "
        "and an ONNX runtime. hsconas on your workstation sends it ONNX models with "
        "--backend remote:http://HOST:PORT; it times them with the same protocol as a local "
        "measurement and answers with the device's fingerprint.",
        epilog="examples:\n  hsconas device token --out ~/.config/hsconas/agent.token\n"
        "  hsconas device serve --token-file ~/.config/hsconas/agent.token --port 8765\n"
        "  hsconas device info http://127.0.0.1:8765 --token-file agent.token",
        formatter_class=HelpFormatter,
    )
    sub = group.add_subparsers(dest="device_command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "serve",
        help="serve the measurement agent on this device",
        description="Serve the agent until interrupted. It refuses to start without a token "
        "unless --insecure-loopback on a loopback address, and refuses a non-loopback address "
        "without TLS unless --allow-plain-http. Uploaded models are validated (ONNX checker, "
        "opset and operator allow-list, input-shape limits, one trial run) in a worker process "
        "with memory and time limits before they are kept.",
        epilog="examples:\n  hsconas device serve --token-file agent.token\n"
        "  hsconas device serve --host 0.0.0.0 --token-file agent.token --tls-cert c.pem "
        "--tls-key k.pem\n  hsconas device serve --insecure-loopback --port 0",
        formatter_class=HelpFormatter,
    )
    add_serve_arguments(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "token",
        help="write a new random token file (owner-readable only)",
        description="Write 32 random bytes (URL-safe base64) to FILE with mode 600. Copy the same "
        "file to the device and to the machine that runs hsconas.",
        epilog="examples:\n  hsconas device token --out agent.token",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="token file to write")
    p.add_argument("--force", action="store_true", help="replace an existing file (default: off)")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser(
        "info",
        help="print an agent's fingerprint, runtime, limits and counters",
        description="GET /v1/info of the agent at URL (token from --token-file or "
        "$HSCONAS_DEVICE_TOKEN).",
        epilog="examples:\n  hsconas device info http://192.168.1.20:8765 --token-file agent.token",
        formatter_class=HelpFormatter,
    )
    p.add_argument("url", metavar="URL", help="the agent, http(s)://HOST:PORT")
    p.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="file holding the token (default: $HSCONAS_DEVICE_TOKEN)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="request timeout, seconds (default: 10)",
    )
    p.set_defaults(func=cmd_info)


def cmd_serve(args: argparse.Namespace) -> int:
    from hsconas.agent.server import run_serve

    return run_serve(args)


def cmd_token(args: argparse.Namespace) -> int:
    from hsconas.agent.server import write_token_file

    write_token_file(args.out, force=args.force)
    print(f"{args.out}: new token written (mode 600); copy it to the device and the client")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from hsconas.hardware.remote import AgentClient, resolve_token

    client = AgentClient(args.url, resolve_token(args.token_file), timeout_s=args.timeout)
    print_json(client.info())
    return 0
