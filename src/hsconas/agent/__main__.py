"""``python -m hsconas.agent serve | token``: the device agent without the rest of hsconas's CLI.

On a board that has only Python, numpy, onnx, an ONNX runtime (onnxruntime or openvino), FastAPI
and uvicorn (hsconas installed with ``pip install --no-deps``), this runs the agent: it imports
neither PyTorch nor pandas, scipy or the other libraries of the search side. The options are those
of ``hsconas device serve``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hsconas.agent.options import add_serve_arguments
from hsconas.errors import HsconasError


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m hsconas.agent``."""
    parser = argparse.ArgumentParser(
        prog="python -m hsconas.agent",
        description="The hsconas device agent (see `hsconas device --help`).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("serve", help="serve the measurement agent on this device")
    add_serve_arguments(p)
    p = sub.add_parser("token", help="write a new random token file (owner-readable only)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="token file to write")
    p.add_argument("--force", action="store_true", help="replace an existing file (default: off)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m hsconas.agent`` with ``argv``; user errors are one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "token":
            from hsconas.agent.server import write_token_file

            write_token_file(args.out, force=args.force)
            print(f"{args.out}: new token written (mode 600)")
            return 0
        from hsconas.agent.server import run_serve

        return run_serve(args)
    except HsconasError as exc:
        print("hsconas: error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
