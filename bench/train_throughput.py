"""Benchmark: supernet training throughput on this CPU, and the memory of streamed data.

1. Images per second of supernet training (``hsconas supernet train``, uniform sampling, SGD,
   batch 32 per process) for ``ofa-mbv3`` and ``proxylessnas`` at 32 and 64 px on CIFAR-10
   JPEGs, in 1 and 2 processes (DDP over gloo, through ``--nproc``), with and without ``--amp``
   (bf16 autocast). The figure is the training loop's own ``images_per_s``: images of all ranks
   over rank 0's time inside the steps (data waiting and start-up excluded).
2. Peak resident memory of one pass over the full CIFAR-10 archive's 50000 training images:
   the streamed loader (``cifar10:`` archive, ``DataLoader`` with 1 worker; the peak of the main
   process plus that of the worker) against the in-memory loader it replaces
   (``stream=False``: decode every image into uint8 arrays, then batch them).

Every run is a fresh process. Prints the tables and writes them to
``bench/results/<machine>/train_throughput.{md,csv}``. From the repository root:

    OMP_NUM_THREADS=1 python -m bench.train_throughput             # about 10 minutes on 2 cores
    OMP_NUM_THREADS=1 python -m bench.train_throughput --subset 160 --skip-memory --tag trial
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench.common import add_tag_argument, results_stem, software, write_results
from hsconas.data.tables import data_dir

_MEMORY = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch
    from hsconas.data.datasets import load_dataset
    torch.set_num_threads(1)
    spec, mode, cache = sys.argv[1], sys.argv[2], sys.argv[3]
    t0 = time.perf_counter()
    if mode == "stream":
        d = load_dataset(spec, val_fraction=0.0, cache_dir=cache, workers=1)
    else:
        d = load_dataset(spec, val_fraction=0.0, cache_dir=cache, stream=False, progress=False)
    n = 0
    for x, y in d.loader("train", 256).batches(torch.Generator().manual_seed(0)):
        n += len(y)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"images": n, "peak_main_mib": own, "peak_worker_mib": kids,
                      "seconds": time.perf_counter() - t0}))
    """
)


def _train_row(
    space: str, size: int, nproc: int, amp: bool, subset: int, archive: Path, work: Path
) -> dict[str, object]:
    out = work / f"{space}-{size}-{nproc}-{int(amp)}"
    cmd = [sys.executable, "-m", "hsconas", "supernet", "train", space]
    cmd += ["--data", f"cifar10:{archive}", "--subset", str(subset), "--image-size", str(size)]
    cmd += ["--epochs", "1", "--batch-size", "32", "--threads", "1", "--val-fraction", "0.1"]
    cmd += ["--out", str(out), "--store", str(work / "store.db"), "--json", "--no-progress"]
    cmd += ["--nproc", str(nproc)] + (["--amp"] if amp else [])
    t0 = time.perf_counter()
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "space": space,
        "image_px": size,
        "processes": nproc,
        "precision": "bf16" if amp else "fp32",
        "images_per_s": round(float(doc["images_per_s"]), 1),
        "world_size": int(doc["world_size"]),
        "wall_s": round(wall, 1),
    }


def _memory_row(mode: str, archive: Path, cache: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY, f"cifar10:{archive}", mode, str(cache)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory run {mode} failed:\n{done.stderr[-3000:]}")
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "loader": "streamed (1 worker)" if mode == "stream" else "in-memory (uint8 arrays)",
        "images": doc["images"],
        "peak_main_mib": round(doc["peak_main_mib"]),
        "peak_worker_mib": round(doc["peak_worker_mib"]) if mode == "stream" else 0,
        "seconds": round(doc["seconds"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--spaces", nargs="+", default=["ofa-mbv3", "proxylessnas"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[32, 64], help="pixels")
    ap.add_argument("--subset", type=int, default=480, help="training images per run")
    ap.add_argument("--skip-memory", action="store_true", help="only the throughput table")
    add_tag_argument(ap)
    args = ap.parse_args(argv)
    archive = data_dir() / "images" / "cifar10_jpg.tar.gz"
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="hsconas-bench-") as tmp:
        work = Path(tmp)
        for space in args.spaces:
            for size in args.sizes:
                for nproc in (1, 2):
                    for amp in (False, True):
                        row = _train_row(space, size, nproc, amp, args.subset, archive, work)
                        print(row, file=sys.stderr, flush=True)
                        rows.append(row)
        mem: list[dict[str, object]] = []
        if not args.skip_memory:
            for mode in ("stream", "memory"):
                mem.append(_memory_row(mode, archive, work / f"cache-{mode}"))
                print(mem[-1], file=sys.stderr, flush=True)
    load = os.getloadavg()
    head = ["space", "image_px", "processes", "precision", "images_per_s", "world_size", "wall_s"]
    lines = [
        "## Supernet training throughput (CIFAR-10 JPEGs, batch 32 per process, 1 thread each)",
        "",
        f"{os.cpu_count()} CPU cores; load average at the end {load[0]:.1f}/{load[1]:.1f}; "
        f"{software('torch', 'numpy')}; {args.subset} images per run (90% trained), one epoch.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    if mem:
        mh = ["loader", "images", "peak_main_mib", "peak_worker_mib", "seconds"]
        lines += [
            "",
            "## Peak RSS of one pass over the 50000 CIFAR-10 training images (batch 256)",
            "",
            "| " + " | ".join(mh) + " |",
            "|" + "|".join("---" for _ in mh) + "|",
        ]
        lines += ["| " + " | ".join(str(r[h]) for h in mh) + " |" for r in mem]
        rows += [{"table": "memory", **r} for r in mem]
    write_results(results_stem("train_throughput", args.tag), rows, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
