"""``hsconas supernet train|eval``, ``hsconas train`` and ``hsconas export``: the accuracy side."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from hsconas.cli.ddp_launch import die_with_launcher, launch, worker_argv
from hsconas.cli.output import check_outputs, print_json_line, print_table
from hsconas.cli.supernet_sampling import add_sampling_options, check_sampling
from hsconas.errors import HsconasError

_RAW = argparse.RawDescriptionHelpFormatter
_DATA_HELP = (
    "digits | mnist[:PATH] | cifar10[:PATH] | imagefolder:DIR | folder:PATH (default for eval: "
    "the checkpoint's); imagefolder: and the CIFAR-10 JPEG archive are streamed from disk"
)
_DEVICE_HELP = "auto (CUDA when present, else CPU) | cpu | cuda[:N] | mps (default auto)"
_SOURCE_HELP = "SPACE:ARCH_STRING or an architecture JSON / JSON Lines file"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``supernet`` group and the ``train`` and ``export`` commands."""
    group = subparsers.add_parser(
        "supernet",
        help="train weight-sharing supernets and evaluate their members",
        description="Train a weight-sharing supernet of a space (hsconas, hsconas-cifar, "
        "hsconas-digits, nb201, ofa-mbv3, ofa-mbv3-w1.2, proxylessnas, ofa-resnet50) and "
        "evaluate members with recalibrated batch norms.",
        epilog="examples:\n"
        "  hsconas supernet train hsconas-digits --data digits --epochs 10 --out runs/sn\n"
        "  hsconas supernet eval runs/sn --sample 20 --seed 0 --json",
        formatter_class=_RAW,
    )
    sub = group.add_subparsers(dest="supernet_command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "train",
        help="train a supernet (checkpoint every epoch, --resume to continue)",
        description="Train SPACE's supernet with single-path uniform sampling, the sandwich rule "
        "(optionally with in-place distillation) or FairNAS fair sampling. OUT/checkpoint.pt is written after every epoch; per-epoch metrics go to the "
        "results store.",
        epilog="examples:\n"
        "  hsconas supernet train hsconas-digits --data digits --epochs 10 --out runs/sn\n"
        "  hsconas supernet train nb201 --data cifar10:../shared/data/images/cifar10_jpg.tar.gz "
        "--epochs 30 --out runs/nb201-sn\n"
        "  hsconas supernet train nb201 --data cifar10 --sampling fair --epochs 6 --out runs/fair\n"
        "  hsconas supernet train ofa-mbv3 --data imagefolder:DIR --sampling sandwich --distill "
        "--epochs 90 --out runs/ofa\n"
        "  hsconas supernet train hsconas-digits --data digits --epochs 20 --out runs/sn --resume\n"
        "  hsconas supernet train proxylessnas --data imagefolder:/data/imagenet --image-size 160 "
        "--device cuda --amp --workers 8 --epochs 90 --out runs/pxl\n"
        "  hsconas supernet train proxylessnas --data imagefolder:DIR --image-size 32 --nproc 2 "
        "--epochs 1 --out runs/ddp      # 2 processes (DDP, gloo on CPU)\n"
        "  torchrun --nproc_per_node=4 -m hsconas supernet train ofa-mbv3 --data imagefolder:DIR "
        "--device cuda --out runs/ddp4   # NCCL on 4 GPUs",
        formatter_class=_RAW,
    )
    p.add_argument("space", metavar="SPACE", help="search space with a supernet")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train in N processes with DDP through torch's elastic launcher (gloo on CPU, NCCL "
        "on CUDA; --batch-size is per process; default 1)",
    )
    _add_train_options(p)
    add_sampling_options(p)
    p.set_defaults(func=cmd_supernet_train)

    p = sub.add_parser(
        "eval",
        help="top-1 accuracy of architectures with inherited weights",
        description="Extract each architecture from the supernet checkpoint, recalibrate its "
        "batch norms on training images and report top-1 accuracy on the validation split.",
        epilog="output: a table (name, top-1 %); with --json one object per architecture.\n\n"
        "examples:\n"
        "  hsconas supernet eval runs/sn --sample 20 --seed 0 --json\n"
        "  hsconas supernet eval runs/sn/checkpoint.pt arch.json",
        formatter_class=_RAW,
    )
    p.add_argument(
        "checkpoint", type=Path, metavar="CHECKPOINT", help="checkpoint.pt or its folder"
    )
    p.add_argument("sources", metavar="SOURCE", nargs="*", help=_SOURCE_HELP)
    p.add_argument("--data", default=None, metavar="SPEC", help=_DATA_HELP)
    p.add_argument("--sample", type=int, default=0, metavar="N", help="also N random members")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--split", choices=("val", "test"), default="val", help="evaluated split")
    p.add_argument(
        "--calib-images", type=int, default=2000, metavar="N", help="BN calibration (default 2000)"
    )
    p.add_argument("--device", default="auto", help=_DEVICE_HELP)
    p.add_argument(
        "--workers", type=int, default=0, metavar="N", help="data loader processes (default 0)"
    )
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.set_defaults(func=cmd_supernet_eval)

    p = subparsers.add_parser(
        "train",
        help="train one architecture from scratch",
        description="Train the standalone network of SOURCE from scratch (same loop and "
        "checkpointing as supernet training).",
        epilog="examples:\n  hsconas train 'hsconas-digits:w1.0,1.0,1.0|...' --data digits "
        "--epochs 20 --out runs/net\n"
        "  hsconas train arch.json --data mnist:../shared/data/images/t10k-images-idx3-ubyte.gz "
        "--epochs 5 --out runs/mnist-net",
        formatter_class=_RAW,
    )
    p.add_argument("source", metavar="SOURCE", help=_SOURCE_HELP)
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "export",
        help="extract a trained network from a checkpoint and export it to ONNX",
        description="Load a checkpoint (a supernet: extract SOURCE with its inherited weights; "
        "a standalone run: SOURCE is optional) and write ONNX, checked against ONNX Runtime.",
        epilog="examples:\n"
        "  hsconas export runs/sn 'hsconas-digits:w1.0,1.0,1.0|...' --onnx net.onnx\n"
        "  hsconas export runs/net --onnx net.onnx",
        formatter_class=_RAW,
    )
    p.add_argument(
        "checkpoint", type=Path, metavar="CHECKPOINT", help="checkpoint.pt or its folder"
    )
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE", help=_SOURCE_HELP)
    p.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx", help="ONNX file")
    p.add_argument("--data", default=None, metavar="SPEC", help="recalibrate BN on this data")
    p.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset (default 17)")
    p.set_defaults(func=cmd_export)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="SPEC", help=_DATA_HELP)
    p.add_argument("--epochs", type=int, required=True, metavar="N", help="passes over the data")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="checkpoint folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64, metavar="N")
    p.add_argument("--lr", type=float, default=None, help="default 0.05 (sgd), 0.002 (adamw)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--weight-decay", type=float, default=None, metavar="W")
    p.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS")
    p.add_argument("--subset", type=int, default=None, metavar="N", help="use N images")
    p.add_argument(
        "--val-fraction", type=float, default=0.1, metavar="F",
        help="share of the training images held out to validate members (default 0.1; `hsconas "
        "run` holds out dataset.val_fraction, default 0.15, as its search scores members on it)",
    )  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads")
    p.add_argument("--store", type=Path, default=None, metavar="DB", help="results store")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.add_argument("--device", default="auto", help=_DEVICE_HELP)
    p.add_argument(
        "--amp",
        action="store_true",
        help="mixed precision: bf16 autocast on the CPU, fp16 + gradient scaler on CUDA",
    )
    p.add_argument(
        "--amp-dtype",
        choices=("auto", "bf16", "fp16"),
        default="auto",
        help="autocast dtype on CUDA (default auto: fp16)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="data loader processes decoding streamed images (default 0: in this process)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="PX",
        help="image side in pixels for streamed data (default 32 for cifar10, 224 for imagefolder)",
    )


def _setup_torch(threads: int | None) -> None:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)


def _load_data(
    spec: str,
    subset: int | None,
    val_fraction: float,
    seed: int,
    *,
    image_size: int | None = None,
    workers: int = 0,
) -> Any:
    from hsconas.data.datasets import load_dataset

    if workers < 0:
        raise HsconasError(f"--workers must be >= 0, got {workers}")
    if image_size is not None and image_size < 8:
        raise HsconasError(f"--image-size must be >= 8 pixels, got {image_size}")
    return load_dataset(
        spec,
        subset=subset,
        val_fraction=val_fraction,
        seed=seed,
        image_size=image_size,
        workers=workers,
    )


def _train_config(args: argparse.Namespace, sampling: str = "uniform") -> Any:
    from hsconas.accuracy.train import TrainConfig

    lr = args.lr if args.lr is not None else (0.05 if args.optimizer == "sgd" else 0.002)
    wd = args.weight_decay
    if wd is None:
        wd = 4e-5 if args.optimizer == "sgd" else 0.05
    try:
        return TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=lr,
            weight_decay=wd,
            label_smoothing=args.label_smoothing,
            sampling=sampling,
            num_random=getattr(args, "num_random", 2),
            distill=getattr(args, "distill", False),
            distill_weight=getattr(args, "distill_weight", 1.0),
            seed=args.seed,
        )
    except ValueError as exc:
        raise HsconasError(str(exc)) from None


def _run(args: argparse.Namespace, model: Any, data: Any, arch: Any = None) -> int:
    from hsconas.accuracy.train import train
    from hsconas.store import ResultStore

    cfg = _train_config(args, getattr(args, "sampling", "uniform"))
    store = ResultStore(args.store) if args.store is not None else ResultStore()
    extra = {
        "data": {
            "spec": args.data,
            "subset": args.subset,
            "val_fraction": args.val_fraction,
            "seed": args.seed,
            "image_size": args.image_size,
        },
        "input_shape": list(data.input_shape),
    }
    from hsconas.accuracy.devices import dist_info

    main = dist_info().is_main
    try:
        result = train(
            model,
            data,
            cfg,
            args.out,
            arch=arch,
            build_options={"num_classes": data.num_classes} if arch is not None else None,
            resume=args.resume,
            store=store,
            extra=extra,
            progress=not args.no_progress and main,
            device=args.device,
            amp=args.amp,
            amp_dtype=args.amp_dtype,
        )
    except ValueError as exc:
        raise HsconasError(str(exc)) from None
    finally:
        store.close()
    if not main:
        return 0  # rank 0 reports
    from hsconas.accuracy.train import default_run_id

    last = result.history[-1] if result.history else {}
    run_id = default_run_id(Path(args.out))
    if args.json:
        print_json_line({"checkpoint": str(result.checkpoint), "run_id": run_id, **last})
    else:
        rows = [[k, f"{v:.4f}" if isinstance(v, float) else str(v)] for k, v in last.items()]
        print_table(["metric", "value"], rows, title=f"{result.checkpoint} (run {run_id})")
    return 0


def cmd_supernet_train(args: argparse.Namespace) -> int:
    import os

    check_outputs(files={"--store": args.store}, dirs={"--out": args.out})
    from hsconas.accuracy.devices import init_distributed, resolve_device

    if args.nproc < 1:
        raise HsconasError(f"--nproc must be >= 1, got {args.nproc}")
    device = resolve_device(args.device)  # a missing CUDA fails here, before any work
    if args.nproc > 1 and "LOCAL_RANK" not in os.environ:
        if device.type == "cuda":
            import torch

            if args.nproc > torch.cuda.device_count():
                raise HsconasError(
                    f"--nproc {args.nproc} on CUDA needs one GPU per process; this machine has "
                    f"{torch.cuda.device_count()}"
                )
        elif device.type != "cpu":
            raise HsconasError(f"--nproc > 1 runs on cpu (gloo) or cuda (NCCL), not {device}")
        return launch(args.nproc, worker_argv(args))
    die_with_launcher()
    with init_distributed(device):
        return _supernet_train(args)


def _supernet_train(args: argparse.Namespace) -> int:
    _setup_torch(args.threads)
    from hsconas.accuracy.train import seeded
    from hsconas.nn.supernet import build_supernet, supernet_spaces

    if args.space not in supernet_spaces():
        raise HsconasError(
            f"no supernet for space {args.space!r}; choose one of: {', '.join(supernet_spaces())}"
        )
    _train_config(args, args.sampling)  # bad options fail before the data loads
    check_sampling(args.space, args.sampling)
    data = _load_data(
        args.data,
        args.subset,
        args.val_fraction,
        args.seed,
        image_size=args.image_size,
        workers=args.workers,
    )
    try:
        with seeded(args.seed):
            model = build_supernet(
                args.space, num_classes=data.num_classes, in_channels=data.input_shape[0]
            )
    except ValueError as exc:
        raise HsconasError(str(exc)) from None
    return _run(args, model, data)


def cmd_train(args: argparse.Namespace) -> int:
    from hsconas.accuracy.devices import resolve_device

    check_outputs(files={"--store": args.store}, dirs={"--out": args.out})
    resolve_device(args.device)
    _setup_torch(args.threads)
    from hsconas.accuracy.train import seeded
    from hsconas.nn import build_model
    from hsconas.spaces.resolve import resolve_source

    resolved = resolve_source(args.source)
    if len(resolved) != 1:
        raise HsconasError(f"{args.source} holds {len(resolved)} architectures; give exactly one")
    arch = resolved[0].arch
    data = _load_data(
        args.data,
        args.subset,
        args.val_fraction,
        args.seed,
        image_size=args.image_size,
        workers=args.workers,
    )
    with seeded(args.seed):
        model = build_model(arch, num_classes=data.num_classes)
    return _run(args, model, data, arch)


def _data_of(ckpt: dict[str, Any], override: str | None, workers: int = 0) -> Any:
    info = dict(ckpt.get("extra", {}).get("data", {}))
    spec = override or info.get("spec")
    if not spec:
        raise HsconasError("the checkpoint does not name its dataset; pass --data SPEC")
    size = info.get("image_size")
    return _load_data(
        spec,
        info.get("subset") if override is None else None,
        float(info.get("val_fraction", 0.1)),
        int(info.get("seed", 0)),
        image_size=int(size) if size else None,
        workers=workers,
    )


def cmd_supernet_eval(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from hsconas.accuracy.checkpoint import load_trained
    from hsconas.accuracy.devices import resolve_device
    from hsconas.accuracy.evaluate import EvalBatches, evaluate_subnets
    from hsconas.nn.supernet import Supernet
    from hsconas.spaces.resolve import resolve_source

    device = resolve_device(args.device)
    model, ckpt = load_trained(args.checkpoint)
    if not isinstance(model, Supernet):
        raise HsconasError(f"{args.checkpoint} holds a standalone network, not a supernet")
    model.to(device)
    named = [(r.name, r.arch) for s in args.sources for r in resolve_source(s)]
    rng = np.random.default_rng(args.seed)
    named += [(f"sample{i}", model.sample(rng)) for i in range(args.sample)]
    if not named:
        raise HsconasError("give at least one SOURCE or --sample N")
    for name, arch in named:
        if arch.space != model.space.name:
            raise HsconasError(f"{name} is an architecture of {arch.space}, not {model.space.name}")
    data = _data_of(ckpt, args.data, args.workers)
    batches = EvalBatches.from_dataset(data, split=args.split, calib_images=args.calib_images)
    rows = []
    bar = tqdm(named, desc="evaluating", unit="net", leave=False, disable=len(named) < 2)
    for name, arch in bar:
        (acc,) = evaluate_subnets(model, [arch], batches=batches)
        record = {"name": name, "arch": model.space.to_string(arch), "top1": acc}
        if args.json:
            print_json_line(record)
        else:
            rows.append([name if len(name) <= 40 else name[:37] + "...", f"{100 * acc:.2f}"])
    if not args.json:
        print_table(["name", "top-1 (%)"], rows, align_right=[False, True])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    check_outputs(files={"--onnx": args.onnx})
    from hsconas.accuracy.checkpoint import load_trained
    from hsconas.accuracy.evaluate import EvalBatches, recalibrate_bn
    from hsconas.accuracy.extract import extract_subnet
    from hsconas.nn.export import check_onnx_outputs, export_onnx
    from hsconas.nn.supernet import Supernet
    from hsconas.space import get_space
    from hsconas.spaces.resolve import resolve_source

    model, ckpt = load_trained(args.checkpoint)
    if isinstance(model, Supernet):
        if args.source is None:
            raise HsconasError("a supernet checkpoint needs SOURCE: the architecture to extract")
        resolved = resolve_source(args.source)
        if len(resolved) != 1:
            raise HsconasError(f"{args.source} holds {len(resolved)} architectures; give one")
        arch = resolved[0].arch
        net = extract_subnet(model, arch)
        # Inherited BN statistics belong to no member: recalibrate on the training data.
        data = _data_of(ckpt, args.data)
        recalibrate_bn(net, EvalBatches.from_dataset(data).calibration)
    else:
        net = model
        cfg = ckpt["model_config"]
        arch = get_space(cfg["space"]).from_string(cfg["arch"])
    shape = _input_shape(net, get_space(arch.space).input_shape(arch), ckpt)
    path = export_onnx(net, shape, args.onnx, opset=args.opset)
    check = check_onnx_outputs(net, path, shape)
    meta = path.with_name(path.stem + ".arch.json")
    doc = {
        **get_space(arch.space).to_json(arch),
        "input_shape": list(shape),
        "checkpoint": str(args.checkpoint),
        "epoch": int(ckpt["epoch"]),
    }
    meta.write_text(json.dumps(doc, indent=2) + os.linesep)
    print(
        f"wrote {path} (ONNX Runtime vs PyTorch max abs diff {check.max_abs_diff:.2e}, "
        f"relative {check.relative_diff:.1e}) and {meta}"
    )
    return 0


def _input_shape(
    net: Any, default: tuple[int, int, int], ckpt: dict[str, Any]
) -> tuple[int, int, int]:
    """The space's input shape; the data's image size when training used another one."""
    size = ckpt.get("extra", {}).get("input_shape")
    if size:
        return (int(size[0]), int(size[1]), int(size[2]))
    return default
