"""Strict validation of a ``hsconas run`` configuration: every range, choice and path is checked,
and a failure is a :class:`ConfigError` whose one-line message names the field and the fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hsconas.pipeline.config_sections import (
    DATASET_NAMES,
    ConfigError,
    PipelineConfig,
    TimingSection,
)


def _check(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ConfigError(f"config field {where!r} {what}", field=where)


def _validate_timing(t: TimingSection, where: str) -> None:
    _check(t.warmup_runs >= 0, f"{where}.warmup_runs", "must be >= 0")
    _check(t.warmup_time_s >= 0, f"{where}.warmup_time_s", "must be >= 0 seconds")
    _check(t.min_runs >= 5, f"{where}.min_runs", f"must be >= 5, got {t.min_runs}")
    _check(t.max_runs >= t.min_runs, f"{where}.max_runs", f"must be >= min_runs ({t.min_runs})")
    _check(t.max_time_s > 0, f"{where}.max_time_s", "must be > 0 seconds")
    _check(0 < t.target_rel_ci < 1, f"{where}.target_rel_ci", "must lie in (0, 1), e.g. 0.02")


def _validate_sampling(cfg: PipelineConfig) -> None:
    """``supernet.sampling: fair`` on a space that allows it; ``supernet.distill`` with the
    sandwich rule on a supernet that has a largest member (the teacher)."""
    from hsconas.errors import UnsupportedSamplingError

    s = cfg.supernet
    _check(
        not s.distill or s.sampling == "sandwich",
        "supernet.distill",
        f"needs supernet.sampling: sandwich (its largest member is the teacher), not {s.sampling!r}",
    )
    if s.sampling != "fair" and not s.distill:
        return
    import torch

    from hsconas.accuracy.sampling import check_rule
    from hsconas.nn.supernet import build_supernet

    field = "supernet.sampling" if s.sampling == "fair" else "supernet.distill"
    try:
        with torch.random.fork_rng(devices=[]):  # a throw-away supernet: leave the RNG alone
            model = build_supernet(cfg.space.name, restriction=cfg.space.restrict or None)
        check_rule(model, s.sampling, s.distill)
    except UnsupportedSamplingError as exc:
        raise ConfigError(f"config field {field!r}: {exc}", field=field) from None


def validate(cfg: PipelineConfig, *, base_dir: Path | None = None) -> PipelineConfig:
    """Check ranges and cross-field rules; returns ``cfg`` with dataset paths made absolute.

    Args:
        cfg: the parsed configuration.
        base_dir: folder relative dataset paths are resolved against (the config file's).

    Raises:
        ConfigError: naming the field and the fix.
    """
    from hsconas.hardware.backends import is_backend_name, list_backends
    from hsconas.space import list_spaces

    _check(bool(cfg.run_dir), "run_dir", "must not be empty")
    d = cfg.device
    backends = list_backends()
    _check(
        is_backend_name(d.backend),
        "device.backend",
        f"is {d.backend!r}, an unknown backend; use one of: {', '.join(backends)}, or "
        "remote:http(s)://HOST:PORT (a device agent; token in $HSCONAS_DEVICE_TOKEN)",
    )
    if d.backend.startswith("remote:"):
        from hsconas.hardware.remote import RemoteError, check_url

        try:
            check_url(d.backend.split(":", 1)[1])
        except RemoteError as exc:
            _check(False, "device.backend", str(exc))
    _check(d.threads >= 1, "device.threads", f"must be >= 1, got {d.threads}")
    _check(d.batch >= 1, "device.batch", f"must be >= 1, got {d.batch}")
    _check(bool(d.name), "device.name", "must not be empty")

    import hsconas.spaces  # noqa: F401  (registers the spaces)

    spaces = list_spaces()
    _check(
        cfg.space.name in spaces,
        "space.name",
        f"is {cfg.space.name!r}, an unknown space; use one of: {', '.join(spaces)}",
    )
    from hsconas.nn.supernet import supernet_spaces as _supernet_spaces

    supernet_spaces = tuple(_supernet_spaces())
    _check(
        cfg.space.name in supernet_spaces,
        "space.name",
        f"is {cfg.space.name!r}, which has no supernet; use one of: {', '.join(supernet_spaces)}",
    )
    if cfg.space.restrict:
        from hsconas.space import get_space

        try:
            get_space(cfg.space.name).restrict(cfg.space.restrict)
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"config field 'space.restrict' is invalid: {exc}", field="space.restrict"
            ) from None

    ds = cfg.dataset
    _check(
        ds.name in DATASET_NAMES,
        "dataset.name",
        f"is {ds.name!r}, an unknown dataset; use one of: {', '.join(DATASET_NAMES)}",
    )
    _check(
        ds.name != "folder" or ds.path is not None,
        "dataset.path",
        "is required for dataset 'folder'; give the image folder",
    )
    _check(
        ds.name != "digits" or ds.path is None,
        "dataset.path",
        "must be null for 'digits' (bundled with scikit-learn); remove it",
    )
    if ds.path is not None:
        p = Path(ds.path).expanduser()
        if not p.is_absolute() and base_dir is not None:
            p = (base_dir / p).resolve()
        _check(
            p.exists(),
            "dataset.path",
            f"points to {str(p)!r}, which does not exist; fix the path or download the data",
        )
        ds = dataclasses.replace(ds, path=str(p))
    _check(ds.subset is None or ds.subset >= 20, "dataset.subset", "must be null or >= 20")
    _check(
        ds.name != "imagefolder" or ds.path is not None,
        "dataset.path",
        "is required for dataset 'imagefolder'; give the image folder or archive",
    )
    _check(
        ds.image_size is None or ds.image_size >= 8,
        "dataset.image_size",
        f"must be null or >= 8 pixels, got {ds.image_size}",
    )
    _check(ds.workers >= 0, "dataset.workers", f"must be >= 0, got {ds.workers}")
    from hsconas.accuracy.devices import DEVICES

    _check(
        cfg.supernet.device.split(":")[0] in DEVICES,
        "supernet.device",
        f"is {cfg.supernet.device!r}; use one of: {', '.join(DEVICES)}",
    )
    _check(0 < ds.val_fraction < 0.9, "dataset.val_fraction", "must lie in (0, 0.9), e.g. 0.15")

    pr = cfg.profile
    _check(pr.n_e2e >= 5, "profile.n_e2e", f"must be >= 5 (about 30 is typical), got {pr.n_e2e}")
    _check(pr.n_validate >= 3, "profile.n_validate", f"must be >= 3, got {pr.n_validate}")
    _check(pr.lut_patience >= 1, "profile.lut_patience", "must be >= 1")
    _check(pr.lut_max_samples >= 1, "profile.lut_max_samples", "must be >= 1")
    _validate_timing(pr.block_timing, "profile.block_timing")
    _validate_timing(pr.e2e_timing, "profile.e2e_timing")

    b = cfg.blocks
    _check(b.samples_per_block >= 2, "blocks.samples_per_block", "must be >= 2")
    _check(b.baseline_samples >= 5, "blocks.baseline_samples", "must be >= 5")
    _check(
        b.source in ("model", "measure", "auto"),
        "blocks.source",
        "must be 'model', 'measure' or 'auto'",
    )
    _check(b.keep_min >= 1, "blocks.keep_min", "must be >= 1")

    s = cfg.supernet
    _check(s.epochs >= 1, "supernet.epochs", f"must be >= 1, got {s.epochs}")
    _check(s.batch_size >= 1, "supernet.batch_size", "must be >= 1")
    _check(s.optimizer in ("sgd", "adamw"), "supernet.optimizer", "must be 'sgd' or 'adamw'")
    _check(s.lr > 0, "supernet.lr", f"must be > 0, got {s.lr}")
    _check(s.weight_decay >= 0, "supernet.weight_decay", "must be >= 0")
    _check(
        s.sampling in ("uniform", "sandwich", "fair"),
        "supernet.sampling",
        f"must be 'uniform', 'sandwich' or 'fair', got {s.sampling!r}",
    )
    _validate_sampling(cfg)
    _check(s.num_random >= 0, "supernet.num_random", "must be >= 0")
    _check(s.calib_images >= 1, "supernet.calib_images", "must be >= 1")

    se = cfg.search
    _check(
        se.budget_ms is None or se.budget_ms > 0,
        "search.budget_ms",
        f"must be null (use budget_percentile) or > 0 ms, got {se.budget_ms}",
    )
    _check(
        0 < se.budget_percentile < 100,
        "search.budget_percentile",
        f"must lie in (0, 100), got {se.budget_percentile}",
    )
    _check(
        se.mode in ("constraint", "weighted", "pareto"),
        "search.mode",
        "must be one of constraint, weighted, pareto",
    )
    proxies = ("ensemble", "naswot", "synflow", "snip", "grad_norm", "jacov", "params", "macs")
    _check(
        se.accuracy in ("ensemble", "supernet", *(f"proxy:{m}" for m in proxies)),
        "search.accuracy",
        f"must be ensemble, supernet or proxy:METHOD with METHOD one of {', '.join(proxies)}, "
        f"got {se.accuracy!r}",
    )
    _check(se.population_size >= 2, "search.population_size", "must be >= 2")
    _check(se.initial_queries >= 2, "search.initial_queries", "must be >= 2")
    _check(se.batch_size >= 1, "search.batch_size", "must be >= 1")
    _check(
        se.n_queries >= se.initial_queries,
        "search.n_queries",
        f"must be >= search.initial_queries ({se.initial_queries}), got {se.n_queries}",
    )
    _check(
        all(0 < q < se.n_queries for q in se.shrink_at),
        "search.shrink_at",
        f"entries must lie between 0 and search.n_queries ({se.n_queries})",
    )
    _check(se.shrink_z > 0, "search.shrink_z", "must be > 0")
    _check(se.n_scaled >= 1, "search.n_scaled", "must be >= 1")
    _check(
        se.offspring_per_generation >= se.batch_size,
        "search.offspring_per_generation",
        f"must be >= search.batch_size ({se.batch_size}), got {se.offspring_per_generation}",
    )

    f = cfg.final
    _check(f.max_candidates >= 1, "final.max_candidates", "must be >= 1")
    _check(f.epochs >= 1, "final.epochs", "must be >= 1")
    _check(f.lr > 0, "final.lr", "must be > 0")
    _check(f.batch_size >= 1, "final.batch_size", "must be >= 1")
    _check(7 <= f.onnx_opset <= 21, "final.onnx_opset", "must lie in 7..21 (17 is typical)")
    cfg = dataclasses.replace(cfg, dataset=ds)
    return _couple_resolution(_check_fixed_input(cfg))


_DATASET_CHANNELS = {"digits": 1, "mnist": 1, "cifar10": 3, "imagefolder": 3}
"""Image channels of each dataset kind (``folder`` takes what its files hold)."""


def _check_fixed_input(cfg: PipelineConfig) -> PipelineConfig:
    """For a space whose networks take one fixed input (``nb201``: 3x32x32, ``hsconas*``): the
    dataset must have its channels, and streamed images (``cifar10``, ``imagefolder``) are
    sized to its resolution (``dataset.image_size`` null, or equal to it), so that the latency
    model and the supernet see the same input. Spaces with a ``resolution`` gene adapt their
    stem to any channel count and are coupled by :func:`_couple_resolution`."""
    from hsconas.space import get_space

    space = get_space(cfg.space.name)
    if "resolution" in space.gene_names:
        return cfg
    ds = cfg.dataset
    channels, height, _ = space.input_shape(space.sample(0))
    have = _DATASET_CHANNELS.get(ds.name)
    _check(
        have is None or have == channels,
        "dataset.name",
        f"is {ds.name!r} ({have}-channel images), but space {cfg.space.name!r} takes "
        f"{channels}-channel images; use "
        + ("cifar10 or imagefolder" if channels == 3 else "digits or mnist")
        + " data, or another space",
    )
    if ds.name not in ("cifar10", "imagefolder"):
        return cfg
    size = ds.image_size if ds.image_size is not None else height
    _check(
        size == height,
        "dataset.image_size",
        f"is {size} px, but space {cfg.space.name!r} has a fixed {height} px input; use "
        f"{height} (or null)",
    )
    return dataclasses.replace(cfg, dataset=dataclasses.replace(ds, image_size=size))


def _couple_resolution(cfg: PipelineConfig) -> PipelineConfig:
    """For a space with a ``resolution`` gene (OFA family) trained on streamed images
    (``cifar10``, ``imagefolder``): one resolution for both. ``dataset.image_size`` must be one
    of the gene's choices (default: the smallest) and the space is restricted to it, so that
    the latency model, the search and the exported network run at the size the supernet was
    trained at."""
    from hsconas.space import get_space

    ds = cfg.dataset
    space = get_space(cfg.space.name)
    if "resolution" not in space.gene_names or ds.name not in ("cifar10", "imagefolder"):
        return cfg
    restricted = space.restrict(cfg.space.restrict) if cfg.space.restrict else space
    choices = [int(c) for c in restricted.gene("resolution").choices]
    size = ds.image_size if ds.image_size is not None else min(choices)
    _check(
        size in choices,
        "dataset.image_size",
        f"is {size} px, not a resolution of space {cfg.space.name!r}; use one of: "
        + ", ".join(str(c) for c in choices),
    )
    restrict = {**cfg.space.restrict, "resolution": [size]}
    return dataclasses.replace(
        cfg,
        dataset=dataclasses.replace(ds, image_size=size),
        space=dataclasses.replace(cfg.space, restrict=restrict),
    )
