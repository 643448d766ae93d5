"""Benchmark: rank NAS-Bench-201 cells with a weight-sharing supernet trained on CIFAR-10.

Trains the ``nb201`` supernet on CIFAR-10 (the shared JPEG archive, or ``--data cifar10:PATH``) with
single-path uniform sampling (one member per step) or FairNAS fair sampling (``--sampling fair``:
five members per step, each of the five ops of each of the six edges used once), evaluates
``--archs`` seeded random cells with recalibrated batch norms, and compares their supernet accuracy with the published NAS-Bench-201 200-epoch CIFAR-10
test accuracy (``nb201/accuracy.csv``): Kendall tau and Spearman rho, over all sampled cells and
over cells whose published accuracy is above 15% (cut-off cells sit at chance).

The full setting (45k training images, C=16, N=5, tens of epochs) takes about an hour on a free
2-core CPU; ``--subset``, ``--channels``, ``--cells-per-stage`` and ``--epochs`` scale it down.
Writes ``bench/results/<machine>/supernet_nb201_cifar.{md,csv}`` (the csv: one row per cell;
``supernet_nb201_cifar_<tag>`` with ``--tag``). From the repository root:

    python -m bench.supernet_nb201_cifar --epochs 26 --channels 16 --cells-per-stage 2 \\
        --batch-size 128 --lr 0.1 --archs 120 --calib-images 1000 --threads 2   # about 80 min
    python -m bench.supernet_nb201_cifar --subset 2000 --epochs 1 --channels 8 \\
        --cells-per-stage 1 --archs 10 --calib-images 200 --threads 1 --tag trial   # a few min

Uniform against fair at equal compute: a fair step runs five members, so give uniform five times
the epochs of fair (the same number of member forward/backward passes; the table reports both
runs' training CPU time)::

    python -m bench.supernet_nb201_cifar --subset 10000 --channels 8 --cells-per-stage 1 \\
        --archs 60 --threads 1 --sampling fair --epochs 2 --tag fair
    python -m bench.supernet_nb201_cifar --subset 10000 --channels 8 --cells-per-stage 1 \\
        --archs 60 --threads 1 --sampling uniform --epochs 10 --tag uniform_eq
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from bench.common import add_tag_argument, results_stem, software, write_results
from hsconas.accuracy import TrainConfig, evaluate_subnets, train
from hsconas.accuracy.evaluate import EvalBatches
from hsconas.accuracy.sampling import fair_width
from hsconas.accuracy.train import seeded
from hsconas.data import load_dataset, load_nb201_accuracy
from hsconas.nn.supernet import build_supernet


def train_supernet(
    data: Any,
    *,
    channels: int,
    cells_per_stage: int,
    epochs: int,
    batch_size: int,
    lr: float,
    calib_images: int,
    seed: int = 0,
    sampling: str = "uniform",
) -> tuple[Any, Any]:
    """Build the ``nb201`` supernet (C=``channels``, N=``cells_per_stage``) under ``seed`` and train
    it on ``data`` (SGD, cosine, weight decay 5e-4, validated once at the end) in a temporary
    folder; returns the trained supernet and the :class:`~hsconas.accuracy.TrainResult`."""
    with seeded(seed):
        sn = build_supernet(
            "nb201", num_classes=data.num_classes, channels=channels,
            cells_per_stage=cells_per_stage,
        )  # fmt: skip
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=5e-4, seed=seed,
        sampling=sampling, calib_images=min(calib_images, 500), eval_every=epochs,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        result = train(sn, data, cfg, Path(tmp) / "sn", progress=True)
    return sn, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="cifar10")
    ap.add_argument("--subset", type=int, default=None, help="training-pool images")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=96)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--cells-per-stage", type=int, default=5)
    ap.add_argument("--archs", type=int, default=50)
    ap.add_argument("--calib-images", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--sampling",
        choices=("uniform", "fair"),
        default="uniform",
        help="uniform: 1 member per step; fair: 5 members per step (default uniform)",
    )
    ap.add_argument("--no-write", action="store_true")
    add_tag_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t_start = time.perf_counter()
    data = load_dataset(args.data, subset=args.subset, val_fraction=0.1, seed=args.seed)
    load_s = time.perf_counter() - t_start
    t0, c0 = time.perf_counter(), time.process_time()
    sn, result = train_supernet(
        data, channels=args.channels, cells_per_stage=args.cells_per_stage, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, calib_images=args.calib_images, seed=args.seed,
        sampling=args.sampling,
    )  # fmt: skip
    train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    per_step = fair_width(sn.space) if args.sampling == "fair" else 1
    steps = args.epochs * (len(data.train_labels) // args.batch_size)

    table = load_nb201_accuracy()
    published = table.column("cifar10")
    rng = np.random.default_rng(args.seed + 1)
    archs = [sn.sample(rng) for _ in range(args.archs)]
    t0 = time.perf_counter()
    batches = EvalBatches.from_dataset(data, calib_images=args.calib_images, seed=args.seed)
    accs = np.asarray(evaluate_subnets(sn, archs, batches=batches, progress=True))
    eval_s = time.perf_counter() - t0
    truth = np.asarray([published[table.index_of(a)] for a in archs])
    ok = truth > 15.0

    def corr(x: np.ndarray, y: np.ndarray) -> str:
        if len(x) < 3:
            return "n/a"
        tau = float(kendalltau(x, y).statistic)
        rho = float(spearmanr(x, y).statistic)
        return f"tau {tau:+.3f}, rho {rho:+.3f} ({len(x)} cells)"

    rows = [
        ("data", f"{data.name}: {len(data.train_labels)} train / {len(data.val_labels)} val "
                 f"images, loaded in {load_s:.0f} s"),
        ("supernet", f"C={args.channels}, N={args.cells_per_stage}, {args.epochs} epochs, "
                     f"batch {args.batch_size}, SGD lr {args.lr}, {train_s / 60:.1f} min"),
        ("sampling", f"{args.sampling}: {per_step} member(s) per step, {steps} steps, "
                     f"{steps * per_step} member passes; training CPU time {train_cpu_s / 60:.1f} min"),
        ("train images/s", f"{np.mean([h['images_per_s'] for h in result.history]):.0f}"),
        ("evaluation", f"{len(archs)} cells in {eval_s:.0f} s ({args.calib_images} BN images)"),
        ("supernet val top-1 of cells: min / median / max",
         f"{100 * accs.min():.1f}% / {100 * np.median(accs):.1f}% / {100 * accs.max():.1f}%"),
        ("vs NB201 CIFAR-10 test accuracy, all cells", corr(accs, truth)),
        ("vs NB201, cells above 15% published", corr(accs[ok], truth[ok])),
    ]  # fmt: skip
    stem = results_stem("supernet_nb201_cifar", args.tag)
    text = "\n".join(
        [
            f"# nb201 supernet ranking on CIFAR-10 ({stem.parent.name})",
            "",
            f"`python -m bench.supernet_nb201_cifar {' '.join(sys.argv[1:])}`; "
            f"{software('torch', 'numpy')}; torch threads {args.threads}, seed {args.seed}; "
            "shared machine, times vary with load.",
            "",
            "| quantity | value |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in rows),
            "",
        ]
    )
    if args.no_write:
        print(text)
        return
    cells = [
        {"arch": str(a), "supernet_top1_pct": 100 * float(acc), "nb201_cifar10_pct": float(t)}
        for a, acc, t in zip(archs, accs, truth, strict=True)
    ]
    write_results(stem, cells, text)


if __name__ == "__main__":
    main()
