"""``hsconas accuracy rank``: label-free accuracy estimates (zero-cost proxies, their ensemble, a
supernet) of architectures on the user's images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hsconas.cli.output import HelpFormatter, positive_int, print_json_line, print_table
from hsconas.errors import DataNotFoundError, HsconasError

#: the method names (kept here so that ``--help`` does not import torch; a test checks they agree
#: with :data:`hsconas.accuracy.zero_cost.METHODS`)
METHODS = (
    "ensemble", "naswot", "synflow", "snip", "grad_norm", "jacov", "params", "macs", "supernet",
)  # fmt: skip


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``rank`` to the ``accuracy`` group's sub-parsers."""
    p = sub.add_parser(
        "rank",
        help="score architectures without training them (zero-cost proxies, ensemble, supernet)",
        description="Score each architecture by a label-free accuracy estimate (higher = "
        "predicted more accurate): a zero-cost proxy of its freshly initialised network on a "
        "minibatch of your training images (naswot, synflow, snip, grad_norm, jacov), its size "
        "(params, macs), the accuracy a trained supernet gives it (supernet), or the ensemble "
        "(default): the mean over its proxies (and the supernet, with --supernet) of each "
        "architecture's quantile among the architectures scored together. With --store the "
        "proxy values are saved, so asking again is free. Output: one line per architecture, "
        "best first.",
        epilog="examples:\n"
        "  hsconas spaces sample nb201 -n 50 --seed 0 --unique > cells.txt\n"
        "  hsconas accuracy rank nb201 --archs-file cells.txt "
        "--data cifar10:../shared/data/images/cifar10_jpg.tar.gz --json\n"
        "  hsconas accuracy rank nb201 '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|' --data cifar10 --method synflow\n"
        "  hsconas accuracy rank nb201 --archs-file cells.txt --data cifar10:PATH "
        "--supernet runs/nb201-sn --store results.db --json",
        formatter_class=HelpFormatter,
    )
    p.add_argument("space", metavar="SPACE", help="registered space name (see `spaces list`)")
    p.add_argument(
        "archs", nargs="*", metavar="ARCH", help="canonical strings as `spaces sample` prints"
    )
    p.add_argument(
        "--archs-file",
        type=Path,
        metavar="FILE",
        help="architectures, one canonical string or JSON object per line (`spaces sample` "
        "output, with or without --json)",
    )
    p.add_argument(
        "--data", required=True, metavar="SPEC",
        help="images the proxies see: digits | mnist:PATH | cifar10:PATH | folder:PATH",
    )  # fmt: skip
    p.add_argument(
        "--method",
        default="ensemble",
        metavar="METHOD",
        help=f"estimate: {' | '.join(METHODS)} (default ensemble)",
    )
    p.add_argument(
        "--supernet", type=Path, metavar="CKPT",
        help="trained supernet checkpoint (or folder) of SPACE: --method supernet, or a further "
        "signal of the ensemble",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of weights and minibatch (default 0)")
    p.add_argument(
        "--batches", type=positive_int, default=1, help="minibatches per proxy (default 1)"
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=64, help="images per minibatch (default 64)"
    )
    p.add_argument(
        "--calib-images", type=positive_int, default=2000, metavar="N",
        help="with --supernet: training images for BN recalibration (default 2000)",
    )  # fmt: skip
    p.add_argument(
        "--reference", type=int, default=0, metavar="N",
        help="score against N seeded random architectures of SPACE instead of against the ones "
        "given, so that a score does not depend on what it is ranked with (as `search "
        "--accuracy proxy:METHOD` does with 64); 0 (default): against the ones given",
    )  # fmt: skip
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--store", type=Path, metavar="DB", help="results store of the proxy values")
    p.add_argument("--json", action="store_true", help="JSON Lines: {arch, score, rank, ...}")
    p.set_defaults(func=cmd_rank)


def _read_archs(args: argparse.Namespace, space: Any) -> list[Any]:
    """The architectures of the positional strings and of ``--archs-file``, validated."""
    texts: list[str] = list(args.archs)
    if args.archs_file is not None:
        if not args.archs_file.is_file():
            raise DataNotFoundError(f"--archs-file not found: {args.archs_file}")
        lines = args.archs_file.read_text(encoding="utf-8").splitlines()
        texts.extend(line.strip() for line in lines if line.strip())
    if not texts:
        raise HsconasError("no architectures: give ARCH strings or --archs-file FILE")
    archs = []
    for text in texts:
        if text.startswith("{"):
            arch = space.from_json(text)
        else:
            prefix = f"{space.name}:"
            arch = space.from_string(text[len(prefix) :] if text.startswith(prefix) else text)
        space.validate(arch)
        archs.append(arch)
    return list(dict.fromkeys(archs))


def _supernet_accuracy(args: argparse.Namespace, space: Any, archs: list[Any]) -> list[float]:
    """Top-1 (percent) of each arch with weights inherited from ``--supernet``."""
    from hsconas.accuracy.checkpoint import load_trained
    from hsconas.accuracy.evaluate import EvalBatches, evaluate_subnets
    from hsconas.data.datasets import load_dataset
    from hsconas.nn.supernet import Supernet

    model, ckpt = load_trained(args.supernet)
    if not isinstance(model, Supernet):
        raise HsconasError(f"{args.supernet} holds a standalone network, not a supernet")
    if model.space.name != space.name:
        raise HsconasError(
            f"{args.supernet} is a supernet of space {model.space.name!r}, not of {space.name!r}"
        )
    info = dict(ckpt.get("extra", {}).get("data", {}))
    same = info.get("spec") == args.data
    data = load_dataset(
        args.data,
        subset=info.get("subset") if same else None,
        val_fraction=float(info.get("val_fraction", 0.1)) if same else 0.1,
        seed=int(info.get("seed", 0)) if same else 0,
        progress=not args.json,
    )
    batches = EvalBatches.from_dataset(data, split="val", calib_images=args.calib_images)
    return [100.0 * float(t) for t in evaluate_subnets(model, archs, batches=batches)]


def cmd_rank(args: argparse.Namespace) -> int:
    import hsconas.spaces  # noqa: F401  (registers the spaces)
    from hsconas.accuracy.zero_cost import ProxyConfig, ZeroCostScorer, check_method
    from hsconas.space import get_space
    from hsconas.store import ResultStore

    check_method(args.method)
    if args.reference < 0:
        raise HsconasError(f"--reference must be 0 or more, not {args.reference}")
    space = get_space(args.space)
    archs = _read_archs(args, space)
    if args.method == "supernet" and args.supernet is None:
        raise HsconasError("--method supernet needs --supernet CKPT")
    if args.supernet is not None and not args.supernet.exists():
        raise DataNotFoundError(f"--supernet checkpoint not found: {args.supernet}")

    store = ResultStore(args.store) if args.store is not None else None
    config = ProxyConfig(
        data=args.data,
        seed=args.seed,
        batches=args.batches,
        batch_size=args.batch_size,
        device=args.device,
    )
    scorer = ZeroCostScorer(space, config, store=store)
    extra: dict[str, list[float]] = {}
    if args.supernet is not None:
        extra["supernet"] = _supernet_accuracy(args, space, archs)
    if args.method == "supernet":
        scores = extra["supernet"]
    elif args.reference > 0:
        from hsconas.evaluation.proxy import ProxyAccuracy

        if extra:
            raise HsconasError("--reference scores proxies only; leave out --supernet with it")
        source = ProxyAccuracy(
            space, args.method, args.data, seed=args.seed, store=store,
            reference=args.reference, device=args.device, batches=args.batches,
            batch_size=args.batch_size,
        )  # fmt: skip
        source.scorer.batches()  # a missing dataset fails before any network is built
        scores = [float(v) / 100.0 for v in source.evaluate(archs)]
    else:
        scorer.batches()  # a missing dataset fails before any network is built
        scores = [float(s) for s in scorer.scores(archs, args.method, extra=extra)]
    order = sorted(
        range(len(archs)), key=lambda i: -scores[i] if scores[i] == scores[i] else float("inf")
    )
    rows = []
    for rank, i in enumerate(order, 1):
        s = scores[i]
        row: dict[str, Any] = {
            "arch": space.to_string(archs[i]),
            "score": s if s == s else None,
            "rank": rank,
            "method": args.method,
        }
        if "supernet" in extra and args.method != "supernet":
            row["supernet_accuracy"] = extra["supernet"][i]
        rows.append(row)
    if args.json:
        for row in rows:
            print_json_line(row)
    else:
        print_table(
            ["rank", "score", "arch"],
            [[r["rank"], _fmt(r["score"]), r["arch"]] for r in rows],
            align_right=[True, True, False],
        )
    if store is not None and not args.json:
        print(f"proxy values stored in {store.path}", file=sys.stderr)
    return 0


def _fmt(score: float | None) -> str:
    return "nan" if score is None else f"{score:.6g}"
