"""Benchmark: an ``hsconas-digits`` supernet on scikit-learn digits (CPU, a couple of minutes).

1. Train the supernet (single-path uniform sampling, or ``--sampling sandwich``) on the digits
   training split; wall time is reported.
2. Evaluate ``--archs`` seeded random members plus the largest and smallest with recalibrated
   batch norms on the validation split; report Kendall tau between supernet accuracy and parameter
   count, the accuracy of the largest / smallest member, and the mean accuracy of the
   top-third vs bottom-third of members by parameter count.
3. Optionally train ``--standalone`` of those members from scratch (same loop, same epochs) and
   report Kendall tau between supernet and standalone accuracy.
4. Training throughput (images/s) of the supernet running a member vs the standalone network of
   the same member, on the same batches (``--throughput-archs`` members, median ratio).

Prints a Markdown table and writes it to
``bench/results/supernet_digits_<machine>_py<version>_torch<version>.md``.

Usage: ``python bench/supernet_digits.py [--epochs 30] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn

from hsconas.accuracy import TrainConfig, evaluate_subnets, train
from hsconas.accuracy.evaluate import EvalBatches, evaluate_model
from hsconas.accuracy.train import seeded
from hsconas.data import load_dataset
from hsconas.nn import build_model, count_params
from hsconas.nn.supernet import build_supernet
from hsconas.space import Architecture


def _throughput(
    step_model: nn.Module, run: object, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> float:
    """Images per second of SGD training steps of ``run(x)`` over ``batches`` (after warm-up)."""
    opt = torch.optim.SGD(step_model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    step_model.train()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(run(x), y).backward()  # type: ignore[operator]
        opt.step()

    for x, y in batches[:2]:
        step(x, y)
    t0 = time.perf_counter()
    n = 0
    for x, y in batches:
        step(x, y)
        n += len(y)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--sampling", choices=("uniform", "sandwich"), default="uniform")
    ap.add_argument("--archs", type=int, default=30, help="random members evaluated")
    ap.add_argument("--standalone", type=int, default=0, help="members also trained alone")
    ap.add_argument("--throughput-archs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    data = load_dataset("digits", val_fraction=0.2, seed=args.seed)
    with seeded(args.seed):
        sn = build_supernet("hsconas-digits")
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        sampling=args.sampling,
        seed=args.seed,
        calib_images=1000,
        eval_every=args.epochs,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(sn, data, cfg, Path(tmp) / "sn", progress=True)
        train_s = time.perf_counter() - t0

    rng = np.random.default_rng(args.seed + 1)
    archs: list[Architecture] = [sn.sample(rng) for _ in range(args.archs)]
    batches = EvalBatches.from_dataset(data, calib_images=1000)
    t0 = time.perf_counter()
    accs = evaluate_subnets(sn, archs, batches=batches)
    eval_s = time.perf_counter() - t0
    big_acc, small_acc = evaluate_subnets(sn, [sn.largest(), sn.smallest()], batches=batches)
    params = [count_params(build_model(a)) for a in archs]
    tau_params = float(kendalltau(accs, params).statistic)
    order = np.argsort(params)
    third = max(1, len(archs) // 3)
    low = float(np.mean([accs[i] for i in order[:third]]))
    high = float(np.mean([accs[i] for i in order[-third:]]))

    rows: list[tuple[str, str]] = [
        ("supernet training", f"{args.epochs} epochs, {args.sampling}, {train_s:.1f} s"),
        ("train images/s (mean over epochs)", f"{np.mean([h['images_per_s'] for h in result.history]):.0f}"),
        ("members evaluated (BN recalibrated on 1000 images)", f"{len(archs)} in {eval_s:.1f} s"),
        ("val top-1: largest / smallest member", f"{100 * big_acc:.1f}% / {100 * small_acc:.1f}%"),
        ("val top-1 of random members: min / median / max",
         f"{100 * min(accs):.1f}% / {100 * statistics.median(accs):.1f}% / {100 * max(accs):.1f}%"),
        ("mean top-1, largest third vs smallest third by params",
         f"{100 * high:.1f}% vs {100 * low:.1f}%"),
        ("Kendall tau (supernet top-1 vs params)", f"{tau_params:+.3f}"),
    ]  # fmt: skip

    if args.standalone > 0:
        picked = [archs[i] for i in np.linspace(0, len(archs) - 1, args.standalone).astype(int)]
        alone = []
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            for i, a in enumerate(picked):
                with seeded(args.seed):
                    net = build_model(a)
                c = TrainConfig(
                    epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed
                )
                train(net, data, c, Path(tmp) / f"s{i}", arch=a, progress=False)
                alone.append(evaluate_model(net, data))
        sup = [accs[archs.index(a)] for a in picked]
        tau_alone = float(kendalltau(sup, alone).statistic)
        rows.append((
            f"Kendall tau (supernet vs standalone top-1, {len(picked)} members)",
            f"{tau_alone:+.3f} (standalone {100 * min(alone):.1f}..{100 * max(alone):.1f}%, "
            f"{time.perf_counter() - t0:.0f} s)",
        ))  # fmt: skip

    g = torch.Generator().manual_seed(args.seed)
    tp_batches = list(data.loader("train", args.batch_size, drop_last=True).batches(g))[:15]
    ratios = []
    tp_rng = np.random.default_rng(args.seed + 2)
    tp_archs = [sn.largest(), *(sn.sample(tp_rng) for _ in range(args.throughput_archs - 1))]
    tp_rows = []
    for a in tp_archs:
        sup_ips = _throughput(sn, lambda x, a=a: sn(x, a), tp_batches)
        net = build_model(a)
        alone_ips = _throughput(net, net, tp_batches)
        ratios.append(alone_ips / sup_ips)
        tp_rows.append((sup_ips, alone_ips))
    rows.append((
        f"training images/s, supernet vs standalone (median of {len(tp_archs)} members)",
        f"{statistics.median(r[0] for r in tp_rows):.0f} vs {statistics.median(r[1] for r in tp_rows):.0f}",
    ))  # fmt: skip
    rows.append((
        "supernet overhead (supernet / standalone time per image)",
        f"median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x (target <= 1.3x)",
    ))  # fmt: skip

    notes = []
    if args.standalone > 0 and max(alone) - min(alone) < 0.02:
        notes.append(
            f"Standalone accuracies span less than 2 points on {len(data.val_labels)} validation "
            "images (digits saturates), so the supernet-vs-standalone tau above is noise; use "
            "the params tau and the largest/smallest gap, or a harder dataset, for ranking."
        )
    machine = platform.node() or "machine"
    tag = f"{machine}_py{platform.python_version()}_torch{torch.__version__.split('+')[0]}"
    lines = [
        f"# hsconas-digits supernet on scikit-learn digits ({tag})",
        "",
        f"{platform.processor() or platform.machine()}, torch threads {args.threads}, "
        f"batch {args.batch_size}, SGD lr {args.lr} cosine, seed {args.seed}; the machine is "
        "shared, so absolute times vary with load.",
        "",
        "| quantity | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
        *notes,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        out = Path(__file__).resolve().parent / "results" / f"supernet_digits_{tag}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
