"""Benchmark: rank NAS-Bench-201 cells with a weight-sharing supernet trained on CIFAR-10.

Trains the ``nb201`` supernet (single-path uniform sampling) on CIFAR-10 (the shared JPEG archive,
or ``--data cifar10:PATH``), evaluates ``--archs`` seeded random cells with recalibrated batch
norms, and compares their supernet accuracy with the published NAS-Bench-201 200-epoch CIFAR-10
test accuracy (``nb201/accuracy.csv``): Kendall tau and Spearman rho, over all sampled cells and
over cells whose published accuracy is above 15% (cut-off cells sit at chance).

The full setting (45k training images, C=16, N=5, tens of epochs) takes about an hour on a free
2-core CPU; ``--subset``, ``--channels``, ``--cells-per-stage`` and ``--epochs`` scale it down.
Writes ``bench/results/supernet_nb201_cifar_<machine>_py<version>_torch<version>.md``.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from hsconas.accuracy import TrainConfig, evaluate_subnets, train
from hsconas.accuracy.evaluate import EvalBatches
from hsconas.accuracy.train import seeded
from hsconas.data import load_dataset, load_nb201_accuracy
from hsconas.nn.supernet import build_supernet


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
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t_start = time.perf_counter()
    data = load_dataset(args.data, subset=args.subset, val_fraction=0.1, seed=args.seed)
    load_s = time.perf_counter() - t_start
    with seeded(args.seed):
        sn = build_supernet(
            "nb201",
            num_classes=data.num_classes,
            channels=args.channels,
            cells_per_stage=args.cells_per_stage,
        )
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=5e-4,
        seed=args.seed,
        calib_images=min(args.calib_images, 500),
        eval_every=args.epochs,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(sn, data, cfg, Path(tmp) / "sn", progress=True)
        train_s = time.perf_counter() - t0

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
        ("train images/s", f"{np.mean([h['images_per_s'] for h in result.history]):.0f}"),
        ("evaluation", f"{len(archs)} cells in {eval_s:.0f} s ({args.calib_images} BN images)"),
        ("supernet val top-1 of cells: min / median / max",
         f"{100 * accs.min():.1f}% / {100 * np.median(accs):.1f}% / {100 * accs.max():.1f}%"),
        ("vs NB201 CIFAR-10 test accuracy, all cells", corr(accs, truth)),
        ("vs NB201, cells above 15% published", corr(accs[ok], truth[ok])),
    ]  # fmt: skip
    tag = (
        f"{platform.node() or 'machine'}_py{platform.python_version()}"
        f"_torch{torch.__version__.split('+')[0]}"
    )
    text = "\n".join(
        [
            f"# nb201 supernet ranking on CIFAR-10 ({tag})",
            "",
            f"torch threads {args.threads}, seed {args.seed}; shared machine, times vary with load.",
            "",
            "| quantity | value |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in rows),
            "",
        ]
    )
    print(text)
    if not args.no_write:
        out = Path(__file__).resolve().parent / "results" / f"supernet_nb201_cifar_{tag}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
