"""Benchmark: what profiling through a device agent costs against profiling locally (same runtime).

One space, one runtime (``onnxruntime``, 1 thread), two ways of measuring on this machine:

* ``local``: the ``onnxruntime`` backend in this process;
* ``agent``: ``remote:http://127.0.0.1:PORT``, an ``hsconas device serve`` started by this script
  on a loopback port (the same runtime and timing protocol, behind HTTP, the upload, the model
  validation worker and the agent's model cache).

For each, with a fresh results store: profile the space (the LUT of the blocks of the training and
held-out networks, ``--n-train`` networks end to end, the HSCoNAS fit), then measure
``--n-test`` held-out networks on the same backend and score the model on them. The LUT is limited
to the blocks of those networks (NB201 has 5675 distinct blocks; a full LUT is an hour's work),
which is the same for both ways, so the times compare. Rows: profile time (blocks, end to end),
seconds per block, the agent's validation count, held-out MAPE / within 10% / Kendall.

    OMP_NUM_THREADS=1 python -m bench.agent_overhead                      # about 3-6 minutes
    OMP_NUM_THREADS=1 python -m bench.agent_overhead --n-train 6 --n-test 6 --tag trial
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import add_tag_argument, markdown_table, results_stem, write_results
from hsconas.agent.server import write_token_file
from hsconas.hardware.backends import get_backend
from hsconas.hardware.fingerprint import fingerprint, machine_name
from hsconas.hardware.measure import measure_network
from hsconas.hardware.reference import space_reference
from hsconas.hardware.remote import AgentClient
from hsconas.hardware.timing import TimingConfig
from hsconas.latency.hsconas.lut import collect_blocks
from hsconas.latency.hsconas.profile import profile_device, sample_archs
from hsconas.latency.metrics import evaluate
from hsconas.store import ResultStore

TEST_SEED = 12345


def _start_agent(tmp: Path, token_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [
        sys.executable, "-m", "hsconas.cli.main", "device", "serve", "--port", "0",
        "--token-file", str(token_file), "--cache-dir", str(tmp / "agent-cache"),
        "--log-level", "warning",
    ]  # fmt: skip
    log = (tmp / "agent.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(120)
    text = line[0].decode() if line else ""
    if "listening on " not in text:
        proc.kill()
        raise SystemExit(f"the agent did not start: {text!r}")
    return proc, text.split("listening on ", 1)[1].split()[0]


def _run(
    mode: str, backend: str, args: argparse.Namespace, blocks: Any, tmp: Path, token: str | None
) -> dict[str, Any]:
    ref = space_reference(args.space) if args.reference else None
    be = get_backend(backend, threads=1, reference=ref, **({"token": token} if token else {}))
    store = ResultStore(tmp / f"{mode}.db")
    timing = TimingConfig(max_time_s=args.max_time)
    t0 = time.perf_counter()
    res = profile_device(
        args.space, be, n_e2e=args.n_train, seed=0, store=store, timing=timing,
        block_timing=TimingConfig(max_time_s=args.block_max_time), blocks=blocks,
    )  # fmt: skip
    profile_s = time.perf_counter() - t0
    test = sample_archs(args.space, args.n_test, resolution=None, seed=TEST_SEED)
    t1 = time.perf_counter()
    measured = [measure_network(a, be, store=store, timing=timing).median_ms for a in test]
    test_s = time.perf_counter() - t1
    m = evaluate(res.model.predict_ms(test), measured)
    return {
        "mode": mode,
        "blocks": res.n_blocks,
        "e2e_networks": len(res.train_archs),
        "profile_s": round(profile_s, 1),
        "lut_s": round(res.lut_s, 1),
        "e2e_s": round(res.e2e_s, 1),
        "s_per_block": round(res.lut_s / max(res.n_blocks, 1), 3),
        "heldout_measure_s": round(test_s, 1),
        "heldout_n": len(test),
        "mape_pct": round(m.mape_pct, 2),
        "within_10pct": round(100 * m.within_10pct, 1),
        "kendall": round(m.kendall, 3),
        "median_heldout_ms": round(float(np.median(measured)), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="nb201", help="search space (default: nb201)")
    ap.add_argument("--n-train", type=int, default=12, help="e2e training networks (12)")
    ap.add_argument("--n-test", type=int, default=12, help="held-out networks (12)")
    ap.add_argument("--max-time", type=float, default=0.5, help="s per network (0.5)")
    ap.add_argument("--block-max-time", type=float, default=0.2, help="s per block (0.2)")
    ap.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time against the space's middle network, as `latency profile` does (default: on)",
    )
    add_tag_argument(ap)
    args = ap.parse_args()
    stem = results_stem("agent_overhead", args.tag)
    # the LUT: the blocks of the training (profile seed 0 -> e2e seed 1) and held-out networks
    blocks = {
        **collect_blocks(args.space, seed=1, max_samples=args.n_train, patience=args.n_train),
        **collect_blocks(args.space, seed=TEST_SEED, max_samples=args.n_test, patience=args.n_test),
    }
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        token_file = tmp / "agent.token"
        token = write_token_file(token_file)
        proc, url = _start_agent(tmp, token_file)
        try:
            load_before = fingerprint("onnxruntime")["load_avg"]
            rows.append(_run("local", "onnxruntime", args, blocks, tmp, None))
            rows.append(_run("agent", f"remote:{url}", args, blocks, tmp, token))
            counters = AgentClient(url, token).info()["counters"]
            rows[1]["agent_models_received"] = counters["models_received"]
            rows[1]["agent_measurements"] = counters["measurements_served"]
            load_after = fingerprint("onnxruntime")["load_avg"]
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    rows[0]["agent_models_received"] = rows[0]["agent_measurements"] = 0
    import pandas as pd

    df = pd.DataFrame(rows)
    overhead = rows[1]["profile_s"] / max(rows[0]["profile_s"], 1e-9)
    per_block = rows[1]["s_per_block"] - rows[0]["s_per_block"]
    md = "\n".join(
        [
            f"# Profiling through a device agent vs locally ({machine_name()})",
            "",
            f"`python -m bench.agent_overhead {' '.join(sys.argv[1:])}`: space {args.space}, "
            f"onnxruntime, 1 thread, reference network {'on' if args.reference else 'off'}, "
            f"{len(blocks)} LUT blocks (those of "
            f"the {args.n_train} training and {args.n_test} held-out networks), timing cap "
            f"{args.max_time} s per network and {args.block_max_time} s per block. The agent runs "
            "on this machine on a loopback port (`hsconas device serve`).",
            "",
            f"Load average before / after: {load_before} / {load_after} on "
            f"{os.cpu_count()} cores (other work was running on this machine: times are "
            "inflated and vary between runs).",
            "",
            markdown_table(df),
            "",
            f"Profiling through the agent took {overhead:.2f}x the local time "
            f"({per_block:+.3f} s per block: export, upload, validation worker, HTTP). "
            "Held-out error is the model's, measured again on the same backend: on this loaded "
            "machine it is dominated by timing noise in both modes.",
            "",
        ]
    )
    write_results(stem, rows, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
