"""Distributed training on the CPU: 2 gloo processes end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hsconas.accuracy.checkpoint import load_checkpoint

_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from hsconas.accuracy import TrainConfig, train
    from hsconas.accuracy.devices import init_distributed
    from hsconas.accuracy.train import seeded
    from hsconas.data import load_dataset
    from hsconas.nn.supernet import build_supernet

    torch.set_num_threads(1)
    out, rank = sys.argv[1], int(os.environ["RANK"])
    data = load_dataset("digits", subset=128, val_fraction=0.25, seed=0)
    with seeded(100 + rank):  # another start per rank: rank 0's weights must be broadcast
        model = build_supernet("hsconas-digits")
    torch.save(dict(model.named_parameters()), f"{out}/init{rank}.pt")
    cfg = TrainConfig(epochs=1, batch_size=16, seed=3, calib_images=32)
    with init_distributed(torch.device("cpu")):
        res = train(model, data, cfg, f"{out}/run", progress=False)
    torch.save(dict(model.named_parameters()), f"{out}/rank{rank}.pt")
    print(json.dumps(res.history[-1]), flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_gloo_ranks_end_with_identical_weights(tmp_path: Path) -> None:
    """Two worker processes (15 s of CPU, mostly two torch imports; 30-40 s on a loaded host)."""
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err[-2000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    init0 = torch.load(tmp_path / "init0.pt", weights_only=True)
    init1 = torch.load(tmp_path / "init1.pt", weights_only=True)
    name = next(iter(w0))
    assert not torch.equal(init0[name], init1[name])  # the ranks did start apart
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # and end identical
    assert any(not torch.equal(w0[k], init0[k]) for k in w0)  # after real steps
    # 96 training images, 2 ranks x 16 per step: 3 steps; the metrics count both shards
    assert outs[0]["world_size"] == outs[1]["world_size"] == 2.0
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["epoch"] == 1 and ckpt["history"][-1]["world_size"] == 2.0
    assert all(torch.equal(ckpt["model"][k], w0[k]) for k in w0)


@pytest.mark.slow
def test_cli_nproc_2_trains_and_evaluates(tmp_path: Path) -> None:
    """``hsconas supernet train --nproc 2`` through torch's elastic launcher (about 40 s)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("val", 6)):
        for c in range(3):
            folder = tmp_path / "imgs" / split / f"c{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 256, size=(36, 36, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{i}.jpg")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "hsconas", "supernet", "train", "proxylessnas"]
    cmd += ["--data", f"imagefolder:{tmp_path / 'imgs'}", "--image-size", "32", "--epochs", "1"]
    cmd += ["--nproc", "2", "--batch-size", "8", "--out", str(tmp_path / "sn"), "--json"]
    cmd += ["--store", str(tmp_path / "s.db"), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["world_size"] == 2.0
    ev = [sys.executable, "-m", "hsconas", "supernet", "eval", str(tmp_path / "sn")]
    ev += ["--sample", "1", "--split", "test", "--json"]
    done = subprocess.run(ev, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 0.0 <= json.loads(done.stdout.strip().splitlines()[-1])["top1"] <= 1.0


@pytest.mark.slow
def test_cli_nproc_resumes_after_kill_9(tmp_path: Path) -> None:
    """kill -9 of ``--nproc 2`` after the first checkpoint: no rank lives on, and ``--resume``
    finishes the run from the checkpoint (about 60 s)."""
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "hsconas", "supernet", "train", "hsconas-digits"]
    cmd += ["--data", "digits", "--epochs", "3", "--batch-size", "16", "--nproc", "2"]
    cmd += ["--out", str(tmp_path / "sn"), "--store", str(tmp_path / "s.db"), "--json"]
    cmd += ["--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "sn" / "checkpoint.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        proc.kill()
        proc.wait(timeout=10)
        stamp = str(tmp_path / "sn")

        def ranks() -> int:
            found = subprocess.run(["pgrep", "-f", stamp], capture_output=True, text=True)
            return len(found.stdout.split())

        for _ in range(50):
            if ranks() == 0:
                break
            time.sleep(0.2)
        assert ranks() == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    first = load_checkpoint(tmp_path / "sn")["epoch"]
    assert 1 <= first <= 3
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    ckpt = load_checkpoint(tmp_path / "sn")
    assert ckpt["epoch"] == 3 and [h["epoch"] for h in ckpt["history"]] == [1.0, 2.0, 3.0]
    assert {h["world_size"] for h in ckpt["history"]} == {2.0}
