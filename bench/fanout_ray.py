"""Benchmark: profiling one space through one device agent vs two, the measurements fanned out by
Ray (``--executor ray``).

Two agents (``hsconas device serve``) are started by this script on loopback ports, both on this
machine, with one token. Each mode profiles the space into a fresh results store, as ``hsconas
latency profile`` does (the LUT, ``--n-train`` networks end to end, the HSCoNAS fit, the reference
network on):

* ``local, 1 agent``: the local executor, one measurement after the other through agent 1;
* ``ray, 1 agent``: a Ray actor for agent 1 (the fan-out machinery with nothing to spread);
* ``ray, 2 agents``: one Ray actor per agent, each taking the next job when its last one is done.

The LUT is limited to the blocks of the end-to-end networks (NB201 has 5675 distinct blocks), the
same for every mode. Every mode starts with fresh agents (empty model caches: each model is
uploaded and validated once in every mode); the order of the modes rotates between repeats. Both
agents and the Ray workers share this machine's cores, so two agents cannot time twice as fast
here: on two real boards each unit times on its own CPU. Rows: the start-up of the Ray units, the profile time (blocks, end to end),
the measurements each agent served, the leave-one-out MAPE of the fit.

    OMP_NUM_THREADS=1 python -m bench.fanout_ray                     # about 5 minutes
    OMP_NUM_THREADS=1 python -m bench.fanout_ray --n-train 3 --repeats 1 --tag trial
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.agent_overhead import _start_agent
from bench.common import add_tag_argument, markdown_table, results_stem, write_results
from hsconas.agent.server import write_token_file
from hsconas.hardware.fanout import Executor, make_executor
from hsconas.hardware.fanout_ray import RayExecutor, ray_session
from hsconas.hardware.fingerprint import fingerprint, machine_name
from hsconas.hardware.remote import AgentClient
from hsconas.hardware.timing import TimingConfig
from hsconas.latency.hsconas.lut import collect_blocks
from hsconas.latency.hsconas.profile import profile_device
from hsconas.store import ResultStore


def _served(urls: list[str], token: str) -> list[int]:
    return [int(AgentClient(u, token).info()["counters"]["measurements_served"]) for u in urls]


def _run(
    mode: str, urls: list[str], args: argparse.Namespace, blocks: Any, tmp: Path, token: str
) -> dict[str, Any]:
    reference = (args.space, None) if args.reference else None
    backends = [f"remote:{u}" for u in urls]
    before = _served(urls, token)
    t0 = time.perf_counter()
    ex: Executor = make_executor(
        "ray" if mode.startswith("ray") else "local", backends, threads=1, reference=reference,
        token=token,
    )  # fmt: skip
    start_s = time.perf_counter() - t0
    units = ex.n_units if isinstance(ex, RayExecutor) else 1
    try:
        t1 = time.perf_counter()
        res = profile_device(
            args.space, ex, n_e2e=args.n_train, seed=0,
            store=ResultStore(tmp / f"{mode.replace(' ', '_').replace(',', '')}.db"),
            timing=TimingConfig(max_time_s=args.max_time),
            block_timing=TimingConfig(max_time_s=args.block_max_time), blocks=blocks,
        )  # fmt: skip
        profile_s = time.perf_counter() - t1
    finally:
        ex.close()
    after = _served(urls, token)
    fit = res.model.info["fit"]
    return {
        "mode": mode,
        "units": units,
        "blocks": res.n_blocks,
        "e2e_networks": len(res.train_archs),
        "unit_start_s": round(start_s, 1),
        "profile_s": round(profile_s, 1),
        "lut_s": round(res.lut_s, 1),
        "e2e_s": round(res.e2e_s, 1),
        "served_by_agent1": after[0] - before[0],
        "served_by_agent2": after[1] - before[1] if len(after) > 1 else 0,
        "loo_mape_pct": round(float(fit["loo_mape_pct"]), 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="nb201", help="search space (default: nb201)")
    ap.add_argument("--n-train", type=int, default=8, help="e2e training networks (8)")
    ap.add_argument("--max-time", type=float, default=0.3, help="s per network (0.3)")
    ap.add_argument("--block-max-time", type=float, default=0.2, help="s per block (0.2)")
    ap.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time against the space's middle network, as `latency profile` does (default: on)",
    )
    ap.add_argument("--repeats", type=int, default=2, help="runs of each mode (2)")
    add_tag_argument(ap)
    args = ap.parse_args()
    stem = results_stem("fanout_ray", args.tag)
    # the LUT: the blocks of the training networks (profile seed 0 -> e2e seed 1)
    blocks = collect_blocks(args.space, seed=1, max_samples=args.n_train, patience=args.n_train)
    modes = [("local, 1 agent", 1), ("ray, 1 agent", 1), ("ray, 2 agents", 2)]
    rows = []
    with tempfile.TemporaryDirectory() as d, ray_session():
        tmp = Path(d)
        token_file = tmp / "agent.token"
        token = write_token_file(token_file)
        load_before = fingerprint("onnxruntime")["load_avg"]
        for rep in range(args.repeats):
            for k in range(len(modes)):  # the order rotates between repeats
                mode, n_agents = modes[(k + rep) % len(modes)]
                run_dir = tmp / f"r{rep}-{k}"
                procs, urls = [], []
                try:  # fresh agents with empty model caches: every mode uploads and validates
                    for i in range(n_agents):
                        (run_dir / f"a{i}").mkdir(parents=True)
                        proc, url = _start_agent(run_dir / f"a{i}", token_file)
                        procs.append(proc)
                        urls.append(url)
                    row = _run(mode, urls, args, blocks, run_dir, token)
                finally:
                    for proc in procs:
                        proc.terminate()
                        try:
                            proc.wait(10)
                        except subprocess.TimeoutExpired:
                            proc.kill()
                rows.append({"repeat": rep, **row})
        load_after = fingerprint("onnxruntime")["load_avg"]
    import pandas as pd

    df = pd.DataFrame(rows)
    med = df.groupby("mode")["profile_s"].median()
    speedup = med["ray, 1 agent"] / max(med["ray, 2 agents"], 1e-9)
    md = "\n".join(
        [
            f"# Profiling through one agent vs two agents fanned out by Ray ({machine_name()})",
            "",
            f"`python -m bench.fanout_ray {' '.join(sys.argv[1:])}`: space {args.space}, "
            f"onnxruntime on the agents, 1 thread, reference network "
            f"{'on' if args.reference else 'off'}, {len(blocks)} LUT blocks (those of the "
            f"{args.n_train} end-to-end networks), timing cap {args.max_time} s per network and "
            f"{args.block_max_time} s per block. Both agents and the Ray instance (started by "
            f"the script, {os.cpu_count()} CPUs) run on this machine.",
            "",
            f"Load average before / after: {load_before} / {load_after} on {os.cpu_count()} "
            "cores (other work was running on this machine: times are inflated and vary "
            "between runs).",
            "",
            markdown_table(df),
            "",
            f"Median profile time over {args.repeats} repeat(s): local, 1 agent "
            f"{med['local, 1 agent']:.1f} s; ray, 1 agent {med['ray, 1 agent']:.1f} s; ray, 2 "
            f"agents {med['ray, 2 agents']:.1f} s: two agents through Ray profiled "
            f"{speedup:.2f}x as fast as one agent through Ray (unit start-up excluded). Every "
            "mode starts with fresh agents (empty model caches). Both agents share this machine's cores with the Ray "
            "actors (which export each network to ONNX) and with the other work on it, so the "
            "speedup here is bounded by the shared cores; two real boards each time on their "
            "own CPU.",
            "",
        ]
    )
    write_results(stem, rows, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
