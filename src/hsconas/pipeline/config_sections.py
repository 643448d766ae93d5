"""The sections of the ``hsconas run`` configuration: one dataclass per section, every field
documented with its unit and default, and the embedded default configuration. No torch here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsconas.errors import HsconasError

DATASET_NAMES = ("digits", "mnist", "cifar10", "imagefolder", "folder")
"""Dataset kinds ``dataset.name`` accepts (``mnist`` and ``cifar10`` take an optional path)."""


class ConfigError(HsconasError, ValueError):
    """A pipeline configuration that cannot work; the message names the field and the fix.

    Attributes:
        field: dotted name of the offending field (``search.n_queries``), or ``''``.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        self.field = field
        super().__init__(message)


# ---------------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class DeviceConfig:
    """The target device.

    Attributes:
        name: name the device's measurements are filed under in the store (``local-cpu`` is the
            machine the run executes on).
        backend: measurement backend: ``onnxruntime``, ``torch`` (eager PyTorch on CPU) or
            ``cuda`` (PyTorch on a CUDA GPU, CUDA-event timing).
        threads: intra-op threads of the backend (1 gives the most stable CPU timings).
        batch: batch size of every latency measurement.
        reference: time every run against the space's middle network, which cancels the
            machine's speed drift on a shared or virtualised host (1.6-5x smaller repeat
            spread on a 2-core VM) at about twice the measuring time (see
            :mod:`hsconas.hardware.reference`).
    """

    name: str = "local-cpu"
    backend: str = "onnxruntime"
    threads: int = 1
    batch: int = 1
    reference: bool = False


@dataclass(frozen=True)
class SpaceConfig:
    """The search space.

    Attributes:
        name: a registered space with a supernet (``hsconas``, ``hsconas-cifar``,
            ``hsconas-digits``, ``ofa-mbv3``, ``ofa-mbv3-w1.2``, ``proxylessnas``,
            ``ofa-resnet50``, ``nb201``).
        restrict: optional ``{gene: [choices]}`` limiting the space before anything runs.
    """

    name: str = "hsconas-digits"
    restrict: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetConfig:
    """The image dataset the supernet is trained on.

    Attributes:
        name: ``digits`` (scikit-learn's bundled 8x8 digits, no download), ``mnist``,
            ``cifar10`` (the JPEG archive, streamed; or the python batches), ``imagefolder``
            (``train/<class>/*`` + ``val/<class>/*``, or one class tree; streamed from disk) or
            ``folder`` (a small image tree ``split/class/*.png`` decoded into memory).
        path: where the files are (required for ``folder``; ``mnist``/``cifar10`` default to the
            shared data directory); relative paths are relative to the config file.
        subset: keep at most this many training images (``null``: all).
        val_fraction: share of the training pool held out for validation (search accuracy).
        image_size: side of the images in pixels for streamed datasets (``null``: 32 for
            ``cifar10``, 224 for ``imagefolder``).
        workers: ``DataLoader`` processes decoding streamed images (0: the main process).
    """

    name: str = "digits"
    path: str | None = None
    subset: int | None = None
    val_fraction: float = 0.15
    image_size: int | None = None
    workers: int = 0

    def spec(self) -> str:
        """The ``load_dataset`` spec (``digits``, ``cifar10:/data/cifar``, ...)."""
        return self.name if self.path is None else f"{self.name}:{self.path}"


@dataclass(frozen=True)
class TimingSection:
    """Timing protocol of one kind of measurement (see ``hsconas.hardware.TimingConfig``).

    Attributes:
        warmup_runs: untimed runs before timing.
        warmup_time_s: warm-up lasts at least this long, seconds.
        min_runs: timed runs before the stopping rule is checked (>= 5).
        max_runs: cap on timed runs.
        max_time_s: cap on timed wall time per measurement, seconds.
        target_rel_ci: stop when the 95% CI half-width of the median is below this fraction.
    """

    warmup_runs: int = 3
    warmup_time_s: float = 0.02
    min_runs: int = 10
    max_runs: int = 200
    max_time_s: float = 0.3
    target_rel_ci: float = 0.02


@dataclass(frozen=True)
class ProfileConfig:
    """Stage 1: device profiling (LUT + end-to-end samples) and the hardware performance model.

    Attributes:
        lut_patience: block collection stops after this many sampled networks add no new block.
        lut_max_samples: cap on networks sampled to collect blocks.
        n_e2e: networks measured end to end to fit the model's learned correction.
        n_validate: further networks measured end to end only to validate the model.
        block_timing: timing protocol of the LUT's block measurements.
        e2e_timing: timing protocol of end-to-end measurements (training, validation, final).
    """

    lut_patience: int = 150
    lut_max_samples: int = 2000
    n_e2e: int = 30
    n_validate: int = 15
    block_timing: TimingSection = field(default_factory=TimingSection)
    e2e_timing: TimingSection = field(default_factory=TimingSection)


@dataclass(frozen=True)
class BlocksConfig:
    """Stage 2: block profiling (friendliness of each op at each layer for this device).

    Attributes:
        samples_per_block: networks sampled with each (layer, op) forced.
        baseline_samples: random networks of the baseline.
        source: latency source: ``model`` (the stage-1 hardware model), ``measure``
            (end-to-end measurement of every sampled network: slower, but what block profiling
            is about) or ``auto`` (``measure`` on a local backend, ``model`` on a remote one).
        reduce_search: the search stage searches the space reduced by this profile (front-rate
            rule; the profile's networks get the search's accuracy, e.g. the supernet's, since
            accuracy is not known when this stage runs).
        keep_min: choices every layer keeps in that reduction.
    """

    samples_per_block: int = 12
    baseline_samples: int = 60
    source: str = "auto"
    reduce_search: bool = False
    keep_min: int = 2


@dataclass(frozen=True)
class SupernetConfig:
    """Stage 3: supernet training (single-path uniform sampling, the sandwich rule with optional
    in-place distillation, or FairNAS fair sampling).

    Attributes:
        epochs: passes over the training split.
        batch_size: images per step.
        optimizer: ``sgd`` or ``adamw``.
        lr: peak learning rate (cosine schedule).
        weight_decay: weight decay.
        sampling: ``uniform`` (one member per step), ``sandwich`` (largest, smallest and
            ``num_random`` random members) or ``fair`` (every choice of every layer once per
            step: 5 members for ``nb201``, 7 for the ``hsconas`` spaces; not for the OFA family).
        num_random: random members per step under the sandwich rule.
        distill: in-place distillation under the sandwich rule: the largest member learns from
            the labels, the others from its predictions (KL divergence, temperature 1).
        calib_images: training images used to recalibrate batch norms of each evaluated member.
        device: where the supernet (and the chosen network from scratch) trains: ``auto``
            (CUDA when present), ``cpu``, ``cuda[:N]`` or ``mps``.
        amp: mixed precision (bf16 on the CPU, fp16 with a gradient scaler on CUDA).
    """

    epochs: int = 6
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 4e-5
    sampling: str = "sandwich"
    num_random: int = 1
    distill: bool = False
    calib_images: int = 512
    device: str = "auto"
    amp: bool = False


@dataclass(frozen=True)
class SearchConfig:
    """Stage 4: the HSCoNAS evolutionary search under the latency budget.

    Attributes:
        budget_ms: latency budget in ms; ``null`` picks ``budget_percentile`` of the stage-1
            end-to-end samples.
        budget_percentile: percentile (0-100) of the measured latencies used when ``budget_ms``
            is ``null``.
        n_queries: distinct architectures evaluated (hardware model + accuracy estimate).
        accuracy: where the search's accuracy comes from: ``ensemble`` (the default: the
            label-free combination of the zero-cost proxies on the dataset's training images and the
            stage-3 supernet's BN-recalibrated validation accuracy: 100 x each signal's mean
            position among its values on a fixed seeded reference sample of 64 architectures, a
            score of about 0..100, not a percent), ``supernet`` (the supernet alone, percent) or
            ``proxy:METHOD`` (zero-cost proxies only, e.g. ``proxy:ensemble``; same 0..100
            scale). The final stage still reports the supernet's accuracy of the chosen net.
        mode: fitness mode: ``constraint``, ``weighted`` or ``pareto``.
        population_size: parents kept per generation.
        initial_queries: random architectures evaluated before evolution.
        batch_size: architectures evaluated per generation.
        offspring_per_generation: offspring bred and scored by the surrogates per generation.
        shrinking: progressive space shrinking on/off.
        shrink_at: query counts after which a shrinking stage ends.
        shrink_z: standard errors needed to drop a dominated choice.
        channel_scaling: scale the channels of the best candidates to the budget after the EA.
        n_scaled: how many of the best candidates are channel-scaled.
    """

    budget_ms: float | None = None
    budget_percentile: float = 40.0
    n_queries: int = 240
    accuracy: str = "ensemble"
    mode: str = "constraint"
    population_size: int = 24
    initial_queries: int = 40
    batch_size: int = 10
    offspring_per_generation: int = 500
    shrinking: bool = True
    shrink_at: list[int] = field(default_factory=lambda: [100, 170])
    shrink_z: float = 2.0
    channel_scaling: bool = True
    n_scaled: int = 3


@dataclass(frozen=True)
class FinalConfig:
    """Stage 5: the chosen network: real latency against the budget, export, optional training.

    Attributes:
        max_candidates: candidates tried (best first) until one meets the budget when measured.
        train_from_scratch: train the chosen network from scratch after export.
        epochs: epochs of the from-scratch training.
        lr: peak learning rate of the from-scratch training.
        batch_size: batch size of the from-scratch training.
        onnx_opset: ONNX opset of the exported file.
    """

    max_candidates: int = 8
    train_from_scratch: bool = True
    epochs: int = 15
    lr: float = 0.05
    batch_size: int = 64
    onnx_opset: int = 17


@dataclass(frozen=True)
class PipelineConfig:
    """The whole run.

    Attributes:
        run_dir: folder of every output (relative paths: relative to the working directory).
        store: results database; ``null`` means ``<run_dir>/results.db``.
        seed: seed of every random choice of the run.
        device: the target device.
        space: the search space.
        dataset: the dataset.
        profile: stage 1.
        blocks: stage 2.
        supernet: stage 3.
        search: stage 4.
        final: stage 5.
    """

    run_dir: str = "runs/demo"
    store: str | None = None
    seed: int = 0
    device: DeviceConfig = field(default_factory=DeviceConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    blocks: BlocksConfig = field(default_factory=BlocksConfig)
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    final: FinalConfig = field(default_factory=FinalConfig)

    @property
    def run_path(self) -> Path:
        """``run_dir`` as a path."""
        return Path(self.run_dir)

    @property
    def store_path(self) -> Path:
        """The results database path."""
        return Path(self.store) if self.store else self.run_path / "results.db"


DEFAULT_CONFIG_TEXT = """\
# The embedded default of `hsconas run` (also configs/demo.yaml): this machine's CPU with ONNX
# Runtime, the hsconas-digits space on scikit-learn's bundled digits (no download).
run_dir: runs/demo
seed: 0
device: {name: local-cpu, backend: onnxruntime, threads: 1}
space: {name: hsconas-digits}
dataset: {name: digits, val_fraction: 0.3}
profile:
  lut_patience: 30
  n_e2e: 30
  n_validate: 12
  block_timing: {warmup_runs: 2, warmup_time_s: 0.005, min_runs: 10, max_runs: 100, max_time_s: 0.05, target_rel_ci: 0.03}
  e2e_timing: {min_runs: 10, max_runs: 200, max_time_s: 0.25, target_rel_ci: 0.02}
blocks: {samples_per_block: 10, baseline_samples: 60, source: model}
supernet: {epochs: 5, batch_size: 64, lr: 0.05, sampling: sandwich, num_random: 1, calib_images: 256}
search:
  budget_percentile: 40
  n_queries: 200
  shrink_at: [80, 140]
  channel_scaling: true
final: {max_candidates: 8, train_from_scratch: true, epochs: 10}
"""
