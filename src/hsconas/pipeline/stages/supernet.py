"""Stage 3, ``supernet``: train the weight-sharing supernet on the dataset (checkpointed every
epoch)."""

from __future__ import annotations

from typing import Any

from hsconas.pipeline.runner import StageContext
from hsconas.pipeline.stages.common import (
    cache_of,
    config_of,
    dataset_of,
    relative_path,
    run_name,
    store_of,
)


def stage_supernet(ctx: StageContext) -> dict[str, Any]:
    """Train the supernet; checkpointed every epoch, resumed after an interruption."""
    from hsconas.accuracy import TrainConfig, train
    from hsconas.accuracy.train import seeded
    from hsconas.nn.supernet import build_supernet

    cfg = config_of(ctx)
    sc = cfg.supernet
    ds = dataset_of(ctx)
    with seeded(cfg.seed):
        model = build_supernet(
            cfg.space.name,
            restriction=cfg.space.restrict or None,
            num_classes=ds.num_classes,
            in_channels=ds.input_shape[0],
        )
    tc = TrainConfig(
        epochs=sc.epochs, batch_size=sc.batch_size, optimizer=sc.optimizer, lr=sc.lr,
        weight_decay=sc.weight_decay, sampling=sc.sampling, num_random=sc.num_random,
        distill=sc.distill,
        seed=cfg.seed, calib_images=sc.calib_images,
    )  # fmt: skip
    out = ctx.dir / f"train-{ctx.key}"
    ctx.progress(0, sc.epochs, "train supernet (epochs)")
    res = train(
        model, ds, tc, out, resume=True, store=store_of(ctx),
        run_id=f"{run_name(ctx)}-supernet-{ctx.key}", extra={"dataset": cfg.dataset.spec()},
        progress=False, on_epoch_end=lambda e, m: ctx.progress(e, sc.epochs, "train supernet (epochs)"),
        device=sc.device, amp=sc.amp,
    )  # fmt: skip
    cache = cache_of(ctx)
    cache["supernet"] = model.cpu().eval()  # later stages extract, measure and export on the CPU
    cache["supernet_path"] = relative_path(ctx, res.checkpoint)
    return {
        "checkpoint": relative_path(ctx, res.checkpoint),
        "epochs": res.epochs,
        "resumed_from": res.resumed_from,
        "history": res.history,
        "dataset": ds.name,
        "input_shape": list(ds.input_shape),
        "n_train": len(ds.train_labels),
        "n_val": len(ds.val_labels),
        "n_test": 0 if ds.test_labels is None else len(ds.test_labels),
    }
