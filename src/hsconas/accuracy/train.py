"""Training loop for supernets and standalone networks, with checkpoint and exact resume.

One loop serves both: a :class:`~hsconas.nn.supernet.Supernet` is trained with single-path
uniform sampling (one random member per step), the sandwich rule (the largest, the smallest and
``num_random`` random members per step, gradients summed; as in BigNAS / OFA's progressive
shrinking), optionally with in-place distillation from the largest member, or FairNAS strict
fairness (every choice of every gene once per step; :mod:`hsconas.accuracy.sampling`); a
standalone network is trained as usual.

Randomness is explicit: a ``numpy.random.Generator`` samples members, a ``torch.Generator``
drives data order and augmentation; both come from ``config.seed``. After every epoch
``OUT/checkpoint.pt`` holds the model, optimizer, scheduler, RNG states (as tensors, so it loads
with ``torch.load(weights_only=True)``), the epoch and the metric history; resuming from it gives
the same weights as an uninterrupted run on CPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from hsconas.accuracy.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    load_checkpoint,
    model_config,
    save_atomic,
)
from hsconas.accuracy.devices import (
    Precision,
    all_reduce_gradients,
    barrier,
    broadcast_parameters,
    dist_info,
    resolve_device,
    sum_over_ranks,
)
from hsconas.accuracy.sampling import SAMPLINGS, check_rule, step_members, train_members
from hsconas.data.datasets import AnyDataset
from hsconas.errors import CheckpointError, DataFormatError, UnsupportedSamplingError
from hsconas.nn.supernet.base import Supernet
from hsconas.space import Architecture

if TYPE_CHECKING:
    from hsconas.store import ResultStore

log = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (validated here).

    Attributes:
        epochs: passes over the training split.
        batch_size: images per step.
        optimizer: ``sgd`` (momentum, optionally Nesterov) or ``adamw``.
        lr: peak learning rate; cosine-annealed per step to 0 over the run.
        momentum: SGD momentum.
        nesterov: Nesterov momentum for SGD.
        weight_decay: L2 (SGD) or decoupled (AdamW) weight decay.
        label_smoothing: label smoothing of the cross-entropy loss, in [0, 1).
        sampling: ``uniform`` (one random member per step), ``sandwich`` (largest, smallest and
            ``num_random`` random members) or ``fair`` (as many members as the most choices of
            any gene, every choice of every gene used once); the last two for supernets only.
        num_random: random members per step under the sandwich rule.
        distill: in-place distillation under the sandwich rule (BigNAS, US-Nets): the largest
            member learns from the labels, every other member of the step from the largest
            member's detached predictions (KL divergence at temperature 1).
        distill_weight: share of the distillation term in the other members' loss, in [0, 1]:
            ``(1 - w) * label loss + w * KL``; 1.0 (default) is pure distillation, as in BigNAS.
        grad_clip_norm: clip the global gradient norm to this value; ``None`` disables it.
        seed: seed of member sampling, data order and augmentation.
        calib_images: training images used to recalibrate batch norms when evaluating members.
        eval_every: evaluate on the validation split every this many epochs (and at the end).
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0
    sampling: str = "uniform"
    num_random: int = 2
    distill: bool = False
    distill_weight: float = 1.0
    grad_clip_norm: float | None = None
    seed: int = 0
    calib_images: int = 1000
    eval_every: int = 1

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.distill and self.sampling != "sandwich":
            raise UnsupportedSamplingError(
                f"distillation needs the sandwich rule (its largest member is the teacher), "
                f"not sampling {self.sampling!r}"
            )
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must lie in [0, 1], got {self.distill_weight}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0 or self.num_random < 0 or self.eval_every <= 0:
            raise ValueError("weight_decay and num_random must be >= 0, eval_every positive")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the fields."""
        return asdict(self)

    @classmethod
    def stored(cls, doc: Mapping[str, Any]) -> dict[str, Any]:
        """A checkpoint's ``train_config`` with fields added since it was written set to their
        defaults (which reproduce the older behaviour), for comparison with :meth:`to_dict`."""
        return {**{f.name: f.default for f in fields(cls)}, **doc}


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        checkpoint: path of the final checkpoint.
        epochs: epochs completed (including those before a resume).
        history: per-epoch metrics (``epoch``, ``train_loss``, ``train_acc``, ``val_acc*``,
            ``images_per_s``, ``lr``).
        resumed_from: the epoch the run resumed after (0 for a fresh run).
    """

    checkpoint: Path
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0


# ---------------------------------------------------------------------------------- RNG states
def _json_tensor(doc: Any) -> torch.Tensor:
    return torch.tensor(list(json.dumps(doc).encode()), dtype=torch.uint8)


def _tensor_json(t: torch.Tensor) -> Any:
    return json.loads(bytes(t.tolist()).decode())


def _rng_state(np_rng: np.random.Generator, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "numpy": _json_tensor(np_rng.bit_generator.state),
        "torch": gen.get_state(),
        "torch_global": torch.get_rng_state(),
    }


def _set_rng_state(
    state: Mapping[str, torch.Tensor], np_rng: np.random.Generator, gen: torch.Generator
) -> None:
    np_rng.bit_generator.state = _tensor_json(state["numpy"])
    gen.set_state(state["torch"])
    torch.set_rng_state(state["torch_global"])


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (e.g. model construction) with the global torch RNG seeded, then restore it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _log_lines(description: str) -> Callable[[int, int | None, str | None], None] | None:
    """Plain progress lines every 10 s on stderr when it is a log, not a terminal (tqdm's
    carriage returns would clutter it); ``None`` on a terminal, where tqdm draws its bar."""
    if sys.stderr.isatty():
        return None
    from hsconas.cli.progress import PLAIN_EVERY_S, PlainLines

    return PlainLines(description, sys.stderr, PLAIN_EVERY_S)


# ---------------------------------------------------------------------------------- training
def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on batch-norm and bias parameters (1-D tensors), as is standard.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _eval_archs(model: Supernet, seed: int) -> dict[str, Architecture]:
    big, small = model.largest(), model.smallest()
    if big is not None and small is not None:
        return {"largest": big, "smallest": small}
    rng = np.random.default_rng([seed, 7])
    return {f"fixed{i}": model.sample(rng) for i in range(2)}


def train(
    model: nn.Module,
    dataset: AnyDataset,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    arch: Architecture | None = None,
    build_options: Mapping[str, Any] | None = None,
    resume: bool = False,
    store: ResultStore | None = None,
    run_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    device: str | torch.device | None = None,
    amp: bool = False,
    amp_dtype: str = "auto",
) -> TrainResult:
    """Train ``model`` (a supernet or a standalone network) on ``dataset``.

    Args:
        model: a :class:`Supernet` (members sampled per ``config.sampling``) or a standalone
            network; initialise it under :func:`seeded` for a reproducible run.
        dataset: the data; the ``train`` split is trained on, ``val`` evaluated every
            ``config.eval_every`` epochs (supernets: the largest and smallest members, or two
            fixed members, with recalibrated batch norms).
        config: hyper-parameters.
        out_dir: folder of ``checkpoint.pt`` (created).
        arch: the architecture of a standalone ``model`` (stored so it can be rebuilt).
        build_options: the :func:`hsconas.nn.build_model` options ``model`` was built with
            (e.g. ``num_classes``), stored so that :func:`load_trained` rebuilds the same shapes.
        resume: continue from ``out_dir/checkpoint.pt`` if present (its config must match).
        store: a :class:`hsconas.store.ResultStore` receiving per-epoch metrics (optional).
        run_id: run id in ``store``; default :func:`default_run_id` of ``out_dir``.
        extra: JSON-able facts stored in the checkpoint (e.g. the dataset spec).
        progress: show a progress bar on stderr.
        on_epoch_end: called with (epoch, metrics) after each epoch's checkpoint is written.
        device: where to train (``auto``, ``cpu``, ``cuda[:N]``, ``mps``); ``None`` keeps the
            model where it is. The model is moved there and every batch follows it.
        amp: mixed precision (bf16 autocast on the CPU, fp16 with a gradient scaler on CUDA).
        amp_dtype: ``auto``, ``bf16`` or ``fp16`` (CUDA only).

    Distributed: inside a ``torchrun`` / ``--nproc`` worker whose process group is initialised
    (:func:`hsconas.accuracy.devices.init_distributed`), each rank reads its shard of every
    epoch, all ranks sample the same members (one seed), gradients are averaged by an
    all-reduce after the backward passes, and only rank 0 evaluates and writes the checkpoint,
    the metrics and the store. The metrics record ``world_size``.

    Raises:
        CheckpointError: if ``out_dir`` holds a checkpoint and ``resume`` is false, or the
            checkpoint's configuration differs from ``config``.
    """
    from tqdm import tqdm

    from hsconas.accuracy.evaluate import EvalBatches, evaluate_model, evaluate_subnets

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME
    is_supernet = isinstance(model, Supernet)
    if config.sampling != "uniform" and not is_supernet:
        raise ValueError(f"the {config.sampling} rule applies to supernets only")
    if isinstance(model, Supernet):
        check_rule(model, config.sampling, config.distill)
    if dataset.input_shape[0] != _input_channels(model):
        raise DataFormatError(
            f"dataset {dataset.name} has {dataset.input_shape[0]}-channel images but the model "
            f"expects {_input_channels(model)} channels"
        )
    dev = next(model.parameters()).device if device is None else resolve_device(device)
    dinfo = dist_info()
    if dinfo.distributed and dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", dinfo.local_rank)
    model.to(dev)
    precision = Precision.for_device(dev, amp, amp_dtype)
    scaler = precision.grad_scaler()
    if dinfo.distributed:
        broadcast_parameters(model)
    np_rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    loader = dataset.loader(
        "train",
        config.batch_size,
        drop_last=True,
        shard=(dinfo.rank, dinfo.world_size),
        pin_memory=dev.type == "cuda",
    )
    if len(loader) == 0:
        raise DataFormatError(
            f"{dataset.name}: {len(dataset.train_labels)} training images, fewer than one batch "
            f"of {config.batch_size} per process ({dinfo.world_size} processes)"
        )
    total_steps = config.epochs * len(loader)
    optimizer = _make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    mcfg = model_config(model, arch, build_options)

    start_epoch = 0
    history: list[dict[str, float]] = []
    if ckpt_path.exists():
        if not resume:
            raise CheckpointError(
                f"{ckpt_path} exists; resume it (resume=True / --resume) or choose another folder"
            )
        ckpt = load_checkpoint(ckpt_path)
        same = (
            TrainConfig.stored(ckpt["train_config"]) == config.to_dict()
            and ckpt["model_config"] == mcfg
            and ckpt.get("extra", {}) == dict(extra or {})
        )
        if not same:
            raise CheckpointError(
                f"{ckpt_path} was written by a run with another configuration (model, training "
                "settings or data); use the same settings to resume, or another output folder"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"], np_rng, gen)
        start_epoch = int(ckpt["epoch"])
        history = [dict(h) for h in ckpt["history"]]
        log.info("resuming %s after epoch %d", ckpt_path, start_epoch)

    rid = run_id or default_run_id(out)
    if not dinfo.is_main:
        store = None  # rank 0 alone writes the store, the checkpoint and the metrics
    if store is not None:
        store.create_run(
            rid,
            "supernet-train" if is_supernet else "train",
            {"train": config.to_dict(), "model": mcfg, **(extra or {})},
        )
    eval_batches: EvalBatches | None = None
    eval_archs = _eval_archs(model, config.seed) if isinstance(model, Supernet) else {}

    for epoch in range(start_epoch + 1, config.epochs + 1):
        model.train()
        loss_sum = 0.0
        correct = 0
        seen = 0
        busy = 0.0
        in_terminal = sys.stderr.isatty()
        bar = tqdm(
            loader.batches(gen),
            total=len(loader),
            desc=f"epoch {epoch}/{config.epochs}",
            unit="batch",
            disable=not progress or not in_terminal,
            leave=False,
        )
        log_lines = _log_lines(f"train epoch {epoch}/{config.epochs}") if progress else None
        for step, (x, y) in enumerate(bar, 1):
            t0 = time.perf_counter()
            x = x.to(dev, non_blocking=True)
            y = y.to(dev, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)

            def backward(loss: torch.Tensor) -> None:
                (scaler.scale(loss) if scaler is not None else loss).backward()

            if isinstance(model, Supernet):
                members = step_members(model, config.sampling, config.num_random, np_rng)
                distill = config.distill_weight if config.distill else None
                loss, logits = train_members(
                    model, members, x, y, criterion, backward, precision.autocast, distill
                )
            else:
                with precision.autocast():
                    logits = model(x)
                    loss = criterion(logits, y)
                backward(loss)
            if dinfo.distributed:
                all_reduce_gradients(model, dinfo.world_size)
            if scaler is not None:
                scaler.unscale_(optimizer)
            if config.grad_clip_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            busy += time.perf_counter() - t0
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.detach().argmax(1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            if log_lines is not None:
                log_lines(step, len(loader), "batches")
        bar.close()
        if dinfo.distributed:
            loss_sum, correct, seen = sum_over_ranks(loss_sum, correct, seen, dev)
        metrics: dict[str, float] = {
            "epoch": float(epoch),
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "images_per_s": seen / busy if busy > 0 else math.nan,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "world_size": float(dinfo.world_size),
        }
        if dinfo.is_main and (epoch % config.eval_every == 0 or epoch == config.epochs):
            if isinstance(model, Supernet):
                if eval_batches is None:
                    eval_batches = EvalBatches.from_dataset(
                        dataset, calib_images=config.calib_images, seed=config.seed
                    )
                accs = evaluate_subnets(model, list(eval_archs.values()), batches=eval_batches)
                for label, acc in zip(eval_archs, accs, strict=True):
                    metrics[f"val_acc_{label}"] = acc
            else:
                metrics["val_acc"] = evaluate_model(model, dataset)
            model.train()
        history.append(metrics)
        if not dinfo.is_main:
            barrier()  # wait while rank 0 evaluates and writes
            continue
        save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "model_config": mcfg,
                "train_config": config.to_dict(),
                "extra": dict(extra or {}),
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": _rng_state(np_rng, gen),
                "history": history,
                **({"scaler": scaler.state_dict()} if scaler is not None else {}),
            },
            ckpt_path,
        )
        if dinfo.distributed:
            barrier()
        if store is not None:
            for name, value in metrics.items():
                if name != "epoch":
                    store.log_metric(rid, epoch, name, value)
        log.info("epoch %d: %s", epoch, metrics)
        if on_epoch_end is not None:
            on_epoch_end(epoch, metrics)
    if store is not None:
        store.finish_run(rid, history[-1] if history else {})
    model.eval()
    return TrainResult(ckpt_path, config.epochs, history, start_epoch)


def default_run_id(out_dir: Path) -> str:
    """The store's run id of a training run in ``out_dir``: the folder's name and 8 hex digits of
    its absolute path, so two folders of one name sharing a store are two runs."""
    path = out_dir.resolve()
    return f"{path.name}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def _input_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    raise ValueError("model has no convolution")
