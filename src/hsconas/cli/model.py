"""``hsconas model``: cost (params, MACs) of architectures and export to ONNX / TorchScript."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hsconas.cli.output import HelpFormatter, check_output_file, print_json_line, print_table
from hsconas.cli.progress import track
from hsconas.errors import HsconasError
from hsconas.space import get_space
from hsconas.spaces.resolve import ResolvedSource, input_shape_of, load_config_file, resolve_source

_RAW = HelpFormatter

_SOURCE_HELP = (
    "SPACE:ARCH_STRING (split on the first colon), or the path of an architecture JSON file "
    "(a `spaces sample --json` object, a list of them, or JSON Lines), or of published net configs"
)
_NB201_EXAMPLE = "nb201:'|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``model`` command group."""
    group = subparsers.add_parser(
        "model",
        help="cost and export of architectures as PyTorch models",
        description="Build architectures as PyTorch models: count their cost, export them.",
        epilog=f"examples:\n  hsconas model info {_NB201_EXAMPLE}\n"
        f"  hsconas model export {_NB201_EXAMPLE} --onnx out/cell.onnx",
        formatter_class=_RAW,
    )
    sub = group.add_subparsers(dest="model_command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "info",
        help="parameters and MACs of architectures",
        description="Build each architecture and count its parameters and multiply-accumulates "
        "(conv and linear layers, OFA convention) for one input image. Published configs are "
        "counted at their own image size, other architectures at their space's input shape.",
        epilog="examples:\n"
        f"  hsconas model info {_NB201_EXAMPLE}\n"
        "  hsconas spaces sample fbnet -n 5 --seed 0 --json > a.jsonl && hsconas model info a.jsonl\n"
        "  hsconas model info --ofa-config ofa_specialized_net_configs.jsonl --json\n"
        "output: a table (name, space, params in millions, MACs in millions, input shape);\n"
        "with --json one object per architecture per line with integer `params` and `macs`.",
        formatter_class=_RAW,
    )
    p.add_argument("sources", metavar="SOURCE", nargs="*", help=_SOURCE_HELP)
    p.add_argument(
        "--ofa-config",
        metavar="FILE",
        action="append",
        default=[],
        type=Path,
        help="published net configs (OFA net.config, ProxylessNAS .config, or .jsonl of "
        "{net_id, image_size, net_config}); every net in the file; repeatable",
    )
    p.add_argument("--num-classes", type=int, default=None, metavar="K", help="classifier outputs")
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "export",
        help="export one architecture to ONNX / TorchScript / a state dict",
        description="Build one architecture (freshly initialised, or with --weights) and write it "
        "as ONNX (checked with onnx.checker and compared with ONNX Runtime), TorchScript and/or a "
        "state dict. Beside each output, OUT.arch.json records the architecture, input shape and "
        "cost so that the file can be identified later.",
        epilog="examples:\n"
        f"  hsconas model export {_NB201_EXAMPLE} --onnx out/cell.onnx\n"
        "  hsconas model export proxyless_mobile.config --onnx m.onnx --torchscript m.pt\n"
        "  hsconas model export nets.jsonl --pick pixel1_lat@20ms_top1@71.4 --onnx net.onnx",
        formatter_class=_RAW,
    )
    p.add_argument("source", metavar="SOURCE", help=_SOURCE_HELP)
    p.add_argument("--onnx", type=Path, metavar="OUT.onnx", help="write an ONNX file")
    p.add_argument("--torchscript", type=Path, metavar="OUT.pt", help="write traced TorchScript")
    p.add_argument("--state-dict", type=Path, metavar="OUT.pt", help="write the state dict")
    p.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset (default 17)")
    p.add_argument("--static-batch", action="store_true", help="fix the ONNX batch size to 1")
    p.add_argument("--num-classes", type=int, default=None, metavar="K", help="classifier outputs")
    p.add_argument("--weights", type=Path, metavar="FILE", help="load this state dict first")
    p.add_argument(
        "--pick",
        metavar="NAME|INDEX",
        help="which architecture when SOURCE holds several (its name or 0-based index)",
    )
    p.set_defaults(func=cmd_export)


def _build_options(args: argparse.Namespace, src: ResolvedSource) -> dict[str, Any]:
    """Builder options: ``--num-classes`` if given, else the source's own class count."""
    if args.num_classes is not None:
        if args.num_classes <= 0:
            raise HsconasError(f"--num-classes must be positive, got {args.num_classes}")
        return {"num_classes": args.num_classes}
    return {} if src.num_classes is None else {"num_classes": src.num_classes}


def _info_record(src: ResolvedSource, options: dict[str, Any]) -> dict[str, Any]:
    from hsconas.nn import build_model, model_cost

    space = get_space(src.arch.space)
    shape = input_shape_of(src)
    cost = model_cost(build_model(src.arch, **options), shape)
    return {
        "name": src.name,
        "space": src.arch.space,
        "arch": space.to_string(src.arch),
        "input_shape": list(shape),
        "params": cost.params,
        "macs": cost.macs,
        "params_m": round(cost.params_m, 4),
        "macs_m": round(cost.macs_m, 4),
    }


def cmd_info(args: argparse.Namespace) -> int:
    if not args.sources and not args.ofa_config:
        raise HsconasError("give at least one SOURCE or --ofa-config FILE (see --help)")
    resolved: list[ResolvedSource] = []
    for source in args.sources:
        resolved.extend(resolve_source(source))
    for path in args.ofa_config:
        resolved.extend(load_config_file(path))
    records = []
    for src in track(resolved, "model info: counting", every_s=5.0):
        record = _info_record(src, _build_options(args, src))
        if args.json:
            print_json_line(record)  # stream: long lists show progress
        else:
            records.append(record)
    if not args.json:
        print_table(
            ["name", "space", "params (M)", "MACs (M)", "input"],
            [
                [
                    _shorten(r["name"]),
                    r["space"],
                    f"{r['params_m']:.3f}",
                    f"{r['macs_m']:.2f}",
                    "x".join(str(d) for d in r["input_shape"]),
                ]
                for r in records
            ],
            align_right=[False, False, True, True, True],
        )
    return 0


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _pick(resolved: list[ResolvedSource], pick: str | None, source: str) -> ResolvedSource:
    if pick is None:
        if len(resolved) != 1:
            names = ", ".join(r.name for r in resolved[:5]) + (", ..." if len(resolved) > 5 else "")
            raise HsconasError(
                f"{source} holds {len(resolved)} architectures ({names}); choose one with --pick"
            )
        return resolved[0]
    for r in resolved:
        if r.name == pick:
            return r
    if pick.isdigit() and int(pick) < len(resolved):
        return resolved[int(pick)]
    raise HsconasError(
        f"--pick {pick!r} matches no architecture of {source}; give a name or an index "
        f"0..{len(resolved) - 1}"
    )


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from hsconas import __version__
    from hsconas.nn import build_model, model_cost
    from hsconas.nn.export import (
        check_onnx_outputs,
        export_onnx,
        export_torchscript,
        save_state_dict,
    )
    from hsconas.nn.weights import read_state_dict

    if args.onnx is None and args.torchscript is None and args.state_dict is None:
        raise HsconasError("nothing to write: give --onnx, --torchscript and/or --state-dict")
    for flag, out in (("--onnx", args.onnx), ("--torchscript", args.torchscript),
                      ("--state-dict", args.state_dict)):  # fmt: skip
        if out is not None:
            check_output_file(flag, out)
    src = _pick(resolve_source(args.source), args.pick, args.source)
    options = _build_options(args, src)
    space = get_space(src.arch.space)
    shape = input_shape_of(src)
    model = build_model(src.arch, **options)
    if args.weights is not None:
        state = read_state_dict(args.weights)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise HsconasError(
                f"--weights {args.weights} does not fit this architecture: {' '.join(first[:2])}"
            ) from None
    model.eval()
    cost = model_cost(model, shape)
    with torch.inference_mode():
        num_classes = int(model(torch.zeros(1, *shape)).shape[-1])
    written: list[Path] = []
    if args.onnx is not None:
        path = export_onnx(
            model, shape, args.onnx, opset=args.opset, dynamic_batch=not args.static_batch
        )
        check = check_onnx_outputs(model, path, shape, batch=1 if args.static_batch else 2)
        print(
            f"wrote {path} (opset {args.opset}; ONNX Runtime vs PyTorch: max abs diff "
            f"{check.max_abs_diff:.2e} for outputs up to {check.max_abs_output:.2e})"
        )
        written.append(path)
    if args.torchscript is not None:
        written.append(export_torchscript(model, shape, args.torchscript))
        print(f"wrote {written[-1]} (TorchScript)")
    if args.state_dict is not None:
        written.append(save_state_dict(model, args.state_dict))
        print(f"wrote {written[-1]} (state dict)")
    doc = {
        **space.to_json(src.arch),
        "name": src.name,
        "image_size": shape[1],
        "input_shape": list(shape),
        "num_classes": num_classes,
        "params": cost.params,
        "macs": cost.macs,
        "weights": str(args.weights) if args.weights else "random initialisation",
        "hsconas_version": __version__,
    }
    for meta in dict.fromkeys(_arch_json_path(p) for p in written):
        meta.write_text(json.dumps({**doc, "files": [str(p) for p in written]}, indent=2) + "\n")
        print(f"wrote {meta} (architecture)")
    return 0


def _arch_json_path(path: Path) -> Path:
    """``out/net.onnx`` -> ``out/net.arch.json``."""
    return path.with_name(path.stem + ".arch.json")
