"""Evaluation batches of a streamed split: held in memory when small, re-decoded when large."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hsconas.accuracy import evaluate as ev
from hsconas.accuracy.train import seeded
from hsconas.data.datasets import load_dataset
from hsconas.nn.supernet import build_supernet


def _tree(root: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(6):
                arr = rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / cls / f"{i}.png")


def test_big_streamed_split_is_redecoded_with_the_same_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path / "t")
    data = load_dataset(f"imagefolder:{tmp_path / 't'}", image_size=8, val_fraction=0.25)
    held = ev.EvalBatches.from_dataset(data, split="test", calib_images=8, batch_size=5)
    assert isinstance(held.evaluation, list)
    monkeypatch.setattr(ev, "STREAM_EVAL_ABOVE_BYTES", 0)
    streamed = ev.EvalBatches.from_dataset(data, split="test", calib_images=8, batch_size=5)
    assert not isinstance(streamed.evaluation, list)
    first = torch.cat([x for x, _ in streamed.evaluation])
    again = torch.cat([x for x, _ in streamed.evaluation])  # a second pass decodes again
    assert torch.equal(first, again) and torch.equal(
        first, torch.cat([x for x, _ in held.evaluation])
    )
    with seeded(0):
        net = build_supernet("hsconas-cifar", num_classes=2)
    arch = net.sample(np.random.default_rng(0))
    a = ev.evaluate_subnets(net, [arch], batches=held)
    b = ev.evaluate_subnets(net, [arch], batches=streamed)
    assert a == b
