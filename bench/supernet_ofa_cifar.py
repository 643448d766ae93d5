"""Benchmark: does an OFA-family supernet trained on CIFAR-10 rank networks trained from scratch?

Trains the ``--space`` supernet (default ``proxylessnas``, 32 px CIFAR-10 JPEGs streamed from the
shared archive) and, separately, ``--scratch`` networks of the same space from scratch on the same
images. The scratch networks are chosen at evenly spaced quantiles of their MACs among
``--pool`` seeded random members, so that they span the space. Each network's test accuracy after
training from scratch is the reference; the supernet's validation accuracy of the same member
(batch norms recalibrated, as the search sees it) is scored against it with Kendall tau and
Spearman rho, beside label-free baselines: MACs and params at 32 px, the zero-cost ``ensemble``
(``hsconas accuracy rank``) and the ensemble with the supernet's accuracy as a further signal.

The work is resumable: checkpoints and finished networks live in ``--work`` (default
``~/.cache/hsconas/supernet_ofa_cifar``), and ``--phase supernet`` / ``--phase scratch`` train one
side only, so the two can run side by side in two processes; ``--phase report`` (or ``all``)
evaluates and writes ``bench/results/<machine>/supernet_ofa_cifar.{md,csv}`` (one row per
scratch network). From the repository root:

    OMP_NUM_THREADS=1 python -m bench.supernet_ofa_cifar --phase supernet &
    OMP_NUM_THREADS=1 python -m bench.supernet_ofa_cifar --phase scratch; wait
    python -m bench.supernet_ofa_cifar --phase report          # about 30 + 30 CPU-minutes
    python -m bench.supernet_ofa_cifar --subset 1500 --supernet-epochs 1 --scratch 3 \\
        --scratch-epochs 1 --work /tmp/sn-ofa-trial --tag trial      # a few minutes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from bench.common import add_tag_argument, results_stem, software, write_results
from hsconas.accuracy import TrainConfig, evaluate_subnets, train
from hsconas.accuracy.evaluate import EvalBatches, evaluate_model
from hsconas.accuracy.train import seeded
from hsconas.accuracy.zero_cost import ProxyConfig, ZeroCostScorer
from hsconas.data import load_dataset
from hsconas.nn import build_model, model_cost
from hsconas.nn.supernet import build_supernet
from hsconas.space.registry import get_space


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--space", default="proxylessnas")
    ap.add_argument("--data", default="cifar10")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--subset", type=int, default=8000, help="training-pool images")
    ap.add_argument("--supernet-epochs", type=int, default=6)
    ap.add_argument("--sampling", default="uniform", choices=("uniform", "sandwich"))
    ap.add_argument("--scratch", type=int, default=5, help="networks trained from scratch")
    ap.add_argument("--scratch-epochs", type=int, default=6)
    ap.add_argument("--pool", type=int, default=300, help="random members to pick them from")
    ap.add_argument(
        "--only", type=int, nargs="+", default=None, metavar="I",
        help="--phase scratch: train only these networks (0-based), e.g. one process each",
    )  # fmt: skip
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05, help="peak learning rate of the scratch runs")
    ap.add_argument(
        "--supernet-lr", type=float, default=0.02,
        help="peak learning rate of the supernet (at 0.05 it stayed at chance for 2 epochs)",
    )  # fmt: skip
    ap.add_argument("--calib-images", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phase", default="all", choices=("all", "supernet", "scratch", "report"))
    ap.add_argument(
        "--work", type=Path, default=Path.home() / ".cache" / "hsconas" / "supernet_ofa_cifar"
    )
    add_tag_argument(ap)
    return ap.parse_args()


def _config(args: argparse.Namespace, epochs: int, sampling: str, lr: float) -> TrainConfig:
    return TrainConfig(
        epochs=epochs, batch_size=args.batch_size, lr=lr, weight_decay=5e-4,
        sampling=sampling, seed=args.seed, calib_images=500, eval_every=epochs,
    )  # fmt: skip


def _chosen(args: argparse.Namespace, num_classes: int) -> list[tuple[Any, int, int]]:
    """``--scratch`` members at evenly spaced MACs quantiles: (arch, MACs, params) at 32 px."""
    space = get_space(args.space)
    rng = np.random.default_rng(args.seed + 7)
    seen: dict[str, tuple[Any, int, int]] = {}
    shape = (3, args.image_size, args.image_size)
    while len(seen) < args.pool:
        arch = space.sample(rng)
        key = space.to_string(arch)
        if key not in seen:
            cost = model_cost(build_model(arch, num_classes=num_classes), shape)
            seen[key] = (arch, int(cost.macs), int(cost.params))
    ranked = sorted(seen.values(), key=lambda t: t[1])
    picks = np.linspace(0.05, 0.95, args.scratch) * (len(ranked) - 1)
    return [ranked[int(np.rint(p))] for p in picks]


def _epoch_log(log: Path) -> Any:
    """An ``on_epoch_end`` callback appending each epoch's metrics and CPU minutes (this process's,
    since the previous epoch or the start) to ``log``, so a resumed run keeps its earlier epochs."""
    last = [time.process_time()]

    def logged(epoch: int, metrics: dict[str, float]) -> None:
        now = time.process_time()
        row = {**metrics, "epoch": epoch, "cpu_min": (now - last[0]) / 60}
        last[0] = now
        with log.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    return logged


def _cpu_minutes(log: Path) -> float:
    """CPU minutes of the epochs in ``log`` (an epoch logged twice counts once, its last time)."""
    epochs: dict[int, float] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            row = json.loads(line)
            epochs[int(row["epoch"])] = float(row["cpu_min"])
    return sum(epochs.values())


def _train_supernet(args: argparse.Namespace, data: Any) -> tuple[Any, float]:
    with seeded(args.seed):
        sn = build_supernet(args.space, num_classes=data.num_classes)
    cfg = _config(args, args.supernet_epochs, args.sampling, args.supernet_lr)
    log = args.work / "supernet_epochs.jsonl"
    train(
        sn, data, cfg, args.work / "supernet", resume=True, progress=True,
        on_epoch_end=_epoch_log(log),
    )  # fmt: skip
    return sn, _cpu_minutes(log)


def _train_scratch(args: argparse.Namespace, data: Any, picks: list) -> list[dict[str, Any]]:
    space = get_space(args.space)
    done_path = args.work / "scratch.jsonl"
    done = {}
    if done_path.exists():
        for line in done_path.read_text().splitlines():
            row = json.loads(line)
            done[row["arch"]] = row
    rows = []
    for i, (arch, macs, params) in enumerate(picks):
        key = space.to_string(arch)
        if args.only is not None and i not in args.only:
            continue
        if key in done:
            rows.append(done[key])
            continue
        with seeded(args.seed):
            model = build_model(arch, num_classes=data.num_classes)
        wall = time.perf_counter()
        log = args.work / f"scratch-{i}_epochs.jsonl"
        train(
            model, data, _config(args, args.scratch_epochs, "uniform", args.lr),
            args.work / f"scratch-{i}", arch=arch, resume=True, progress=True,
            on_epoch_end=_epoch_log(log),
        )  # fmt: skip
        test = evaluate_model(model.eval(), data, split="test")
        row = {
            "arch": key, "macs_m": macs / 1e6, "params_m": params / 1e6,
            "scratch_test_pct": 100 * test, "scratch_cpu_min": _cpu_minutes(log),
            "scratch_wall_min": (time.perf_counter() - wall) / 60,
        }  # fmt: skip
        with done_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _corr(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)


def main() -> None:
    args = _args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    data = load_dataset(
        args.data, subset=args.subset, val_fraction=0.1, seed=args.seed,
        image_size=args.image_size,
    )  # fmt: skip
    picks = _chosen(args, data.num_classes)
    if args.phase == "supernet":
        _train_supernet(args, data)
        return
    if args.phase == "scratch":
        _train_scratch(args, data, picks)
        return
    args.only = None
    sn, sn_cpu_min = _train_supernet(args, data)
    rows = _train_scratch(args, data, picks)
    archs = [a for a, _, _ in picks]
    t0 = time.process_time()
    batches = EvalBatches.from_dataset(data, calib_images=args.calib_images, seed=args.seed)
    sn_acc = 100 * np.asarray(evaluate_subnets(sn, archs, batches=batches))
    eval_cpu = time.process_time() - t0
    scorer = ZeroCostScorer(get_space(args.space), ProxyConfig(data=args.data, seed=args.seed))
    t0 = time.process_time()
    ensemble = scorer.scores(archs, "ensemble")
    both = scorer.scores(archs, "ensemble", extra={"supernet": sn_acc})
    proxy_cpu = time.process_time() - t0
    truth = np.asarray([r["scratch_test_pct"] for r in rows])
    for row, acc, e, b in zip(rows, sn_acc, ensemble, both, strict=True):
        row.update(supernet_val_pct=float(acc), ensemble=float(e), ensemble_supernet=float(b))
    signals = {
        "supernet (val accuracy, BN recalibrated)": sn_acc,
        "MACs at the training resolution": np.asarray([r["macs_m"] for r in rows]),
        "params": np.asarray([r["params_m"] for r in rows]),
        "zero-cost ensemble (jacov + params)": ensemble,
        "ensemble + supernet": both,
    }
    lines = [
        f"# {args.space} supernet vs networks trained from scratch, CIFAR-10 ({stem_name(args)})",
        "",
        f"`python -m bench.supernet_ofa_cifar {' '.join(sys.argv[1:])}`; "
        f"{software('torch', 'numpy')}; {args.image_size} px, {len(data.labels('train'))} "
        f"training / {len(data.labels('val'))} validation images, seed {args.seed}; supernet "
        f"{args.supernet_epochs} epochs ({args.sampling}, lr {args.supernet_lr}, "
        f"{sn_cpu_min:.0f} CPU-min), scratch "
        f"networks {sum(r['scratch_cpu_min'] for r in rows):.0f} CPU-min in all, each "
        f"{args.scratch_epochs} epochs at lr {args.lr}; SGD cosine, batch {args.batch_size}; "
        f"supernet evaluation {eval_cpu / 60:.1f} CPU-min, proxies {proxy_cpu / 60:.1f} CPU-min; "
        "shared machine, times vary with load.",
        "",
        f"Reference: test accuracy (10000 images) of {len(rows)} networks trained from scratch.",
        "",
        "| signal | Kendall tau | Spearman rho |",
        "|---|---|---|",
        *(
            "| {} | {:+.3f} | {:+.3f} |".format(name, *_corr(np.asarray(v, float), truth))
            for name, v in signals.items()
        ),
        "",
        "| arch | MACs (M) | scratch test % | supernet val % | scratch CPU-min |",
        "|---|---|---|---|---|",
        *(
            f"| `{r['arch']}` | {r['macs_m']:.1f} | {r['scratch_test_pct']:.2f} | "
            f"{r['supernet_val_pct']:.2f} | {r['scratch_cpu_min']:.1f} |"
            for r in rows
        ),
        "",
    ]
    print("\n".join(lines))
    write_results(results_stem("supernet_ofa_cifar", args.tag), rows, "\n".join(lines))


def stem_name(args: argparse.Namespace) -> str:
    """The machine folder the results go to."""
    return results_stem("supernet_ofa_cifar", args.tag).parent.name


if __name__ == "__main__":
    main()
