"""LUT decomposition, block measurement and store reuse (resume without re-measuring)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hsconas.hardware.backends import TorchBackend
from hsconas.hardware.measure import measure_network
from hsconas.hardware.timing import TimingConfig
from hsconas.latency.hsconas.lut import (
    LookupTable,
    block_key,
    decompose,
    materialize,
    measure_blocks,
    meta_build,
)
from hsconas.latency.hsconas.profile import sample_archs
from hsconas.store import ResultStore

_FAST = TimingConfig(max_time_s=0.05, warmup_time_s=0.0, min_runs=5)


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.conv(x))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(_Block(8), _Block(8), nn.Conv2d(8, 16, 1), _Block(16))
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


def test_decompose_finds_blocks_and_keys_repeat_for_identical_blocks() -> None:
    calls = decompose(_Net(), (3, 32, 32))
    assert [c.name for c in calls] == [
        "stem",
        "blocks.0",
        "blocks.1",
        "blocks.2",
        "blocks.3",
        "head",
    ]
    assert calls[1].key == calls[2].key  # two identical blocks at the same shape share a key
    assert calls[1].input_shape == (8, 16, 16) and calls[5].input_shape == (16,)
    assert len({c.key for c in calls}) == 5
    assert calls[3].key != calls[4].key
    # a different input shape gives a different key
    assert decompose(_Net(), (3, 64, 64))[1].key != calls[1].key
    assert block_key(_Block(8), (8, 16, 16)) == calls[1].key


def test_measured_blocks_sum_to_a_positive_latency_near_the_network() -> None:
    net = _Net()
    calls = decompose(net, (3, 32, 32))
    lut = measure_blocks({c.key: c for c in calls}, TorchBackend(threads=1), space="", timing=_FAST)
    total = lut.total_ms([c.key for c in calls])
    assert total > 0 and len(lut) == 5
    e2e = measure_network(net, "torch", input_shape=(3, 32, 32), timing=_FAST).median_ms
    assert 0.2 < total / e2e < 5
    again = LookupTable.from_json(lut.to_json())
    assert again == lut


def test_space_architecture_decomposes_on_meta_with_the_real_keys() -> None:
    arch = sample_archs("ofa-mbv3", 1, resolution=128, seed=3)[0]
    from hsconas.nn.registry import build_model

    real = decompose(build_model(arch), (3, 128, 128))
    meta = decompose(meta_build(arch), (3, 128, 128))
    assert [c.key for c in real] == [c.key for c in meta]
    block = materialize(meta[3].module)
    assert not any(p.is_meta for p in block.parameters())
    assert torch.isfinite(block.eval()(torch.randn(1, *meta[3].input_shape))).all()


def test_store_resume_does_not_remeasure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ResultStore(tmp_path / "r.db")
    arch = sample_archs("ofa-mbv3", 1, resolution=128, seed=1)[0]
    first = measure_network(arch, "torch", store=store, timing=_FAST)
    assert len(store.measurements(kind="network")) == 1
    second = measure_network(arch, "torch", store=store, timing=_FAST)
    assert len(store.measurements(kind="network")) == 1
    assert second.created == first.created and second.median_ms == first.median_ms
    assert second.fingerprint is not None and "load_avg" in second.fingerprint
    # another thread count is another measurement
    measure_network(arch, TorchBackend(threads=2), store=store, timing=_FAST)
    assert len(store.measurements(kind="network")) == 2
    # blocks: the second LUT build is served from the store
    calls = decompose(meta_build(arch), (3, 128, 128))[:4]
    blocks = {c.key: c for c in calls}
    lut1 = measure_blocks(blocks, "torch", space="ofa-mbv3", store=store, timing=_FAST)
    n_blocks = len(store.measurements(kind="block"))
    lut2 = measure_blocks(blocks, "torch", space="ofa-mbv3", store=store, timing=_FAST)
    assert len(store.measurements(kind="block")) == n_blocks == len(blocks)
    assert lut1 == lut2


def test_nb201_table_saturates_at_edge_blocks_and_covers_unseen_networks() -> None:
    """NB201 cells are split into their edge ops: 5 ops x 3 widths, the stem, 2 reductions
    and the head give 21 blocks, found in a few samples; whole cells (15625 x 3) never
    saturated, and networks outside the sample missed blocks."""
    from hsconas.latency.hsconas.lut import collect_blocks
    from hsconas.latency.hsconas.model import network_features
    from hsconas.space import get_space

    found = collect_blocks("nb201", seed=0, patience=8, max_samples=60)
    assert len(found) == 21
    assert sum(k.startswith("ReLUConvBN|") for k in found) == 6  # 1x1 and 3x3 at 3 widths
    assert not any(k.startswith("NB201Cell|") for k in found)
    for arch in get_space("nb201").sample_many(6, np.random.default_rng(7)):
        feats = network_features(arch)
        assert set(feats.block_keys) <= set(found)
        assert len(feats.block_keys) == 1 + 3 * 5 * 6 + 2 + 3  # stem, 15 cells x 6 edges, ...


def test_ofa_resnet_table_holds_the_blocks_of_networks_it_never_sampled() -> None:
    """ofa-resnet50's first bottleneck of a unit takes the previous unit's width: its variants
    come from the space's block cover, not from luck in sampling."""
    from hsconas.latency.hsconas.lut import collect_blocks
    from hsconas.latency.hsconas.model import network_features
    from hsconas.space import get_space

    space = get_space("ofa-resnet50").at_resolution(128)
    genes = space.gene_names
    small = space.restrict(
        {
            **{g: [0.65, 1.0] for g in genes if g.endswith(("width", "w0", "w1"))},
            **{g: [0.25] for g in genes if g.endswith("expand")},
            **{f"u{u}.depth": [2] for u in (1, 2, 4)},
            "u3.depth": [4],
            "stem.depth": [2],
        }
    )
    found = collect_blocks(small, patience=1, max_samples=1, seed=0)
    for arch in small.sample_many(3, np.random.default_rng(11)):
        assert set(network_features(arch).block_keys) <= set(found)
