"""The configuration of ``hsconas run``: one dataclass per section, loaded from YAML or TOML.

Every field is documented on its dataclass. Loading validates strictly and fails with a
:class:`ConfigError` whose one-line message names the field (``search.n_queries``) and the fix:
unknown fields, wrong types, out-of-range values, an unknown backend or space, a missing dataset
path. No torch here.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsconas.errors import HsconasError

__all__ = [
    "DEFAULT_CONFIG_TEXT",
    "BlocksConfig",
    "ConfigError",
    "DatasetConfig",
    "DeviceConfig",
    "FinalConfig",
    "PipelineConfig",
    "ProfileConfig",
    "SearchConfig",
    "SpaceConfig",
    "SupernetConfig",
    "TimingSection",
    "config_from_dict",
    "config_to_dict",
    "default_config",
    "load_config",
]

DATASET_NAMES = ("digits", "mnist", "cifar10", "folder")
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
            ``hsconas-digits``).
        restrict: optional ``{gene: [choices]}`` limiting the space before anything runs.
    """

    name: str = "hsconas-digits"
    restrict: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetConfig:
    """The image dataset the supernet is trained on.

    Attributes:
        name: ``digits`` (scikit-learn's bundled 8x8 digits, no download), ``mnist``,
            ``cifar10`` or ``folder`` (an image tree ``split/class/*.png``).
        path: where the files are (required for ``folder``; ``mnist``/``cifar10`` default to the
            shared data directory); relative paths are relative to the config file.
        subset: keep at most this many training images (``null``: all).
        val_fraction: share of the training pool held out for validation (search accuracy).
    """

    name: str = "digits"
    path: str | None = None
    subset: int | None = None
    val_fraction: float = 0.15

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
        source: latency source: ``model`` (the stage-1 hardware model) or ``measure``
            (end-to-end measurement of every sampled network: slower).
    """

    samples_per_block: int = 12
    baseline_samples: int = 60
    source: str = "model"


@dataclass(frozen=True)
class SupernetConfig:
    """Stage 3: supernet training (single-path uniform sampling, or the sandwich rule).

    Attributes:
        epochs: passes over the training split.
        batch_size: images per step.
        optimizer: ``sgd`` or ``adamw``.
        lr: peak learning rate (cosine schedule).
        weight_decay: weight decay.
        sampling: ``uniform`` or ``sandwich``.
        num_random: random members per step under the sandwich rule.
        calib_images: training images used to recalibrate batch norms of each evaluated member.
    """

    epochs: int = 6
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 4e-5
    sampling: str = "sandwich"
    num_random: int = 1
    calib_images: int = 512


@dataclass(frozen=True)
class SearchConfig:
    """Stage 4: the HSCoNAS evolutionary search under the latency budget.

    Attributes:
        budget_ms: latency budget in ms; ``null`` picks ``budget_percentile`` of the stage-1
            end-to-end samples.
        budget_percentile: percentile (0-100) of the measured latencies used when ``budget_ms``
            is ``null``.
        n_queries: distinct architectures evaluated (hardware model + supernet accuracy).
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


# ---------------------------------------------------------------------------------- parsing
def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a section (mapping)"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, str(tp)
    )


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (ints are accepted for floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError:
                continue
        raise _type_error(value, tp, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _type_error(value, tp, where)
        return _section(tp, value, where)  # type: ignore[arg-type]
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _type_error(value, tp, where)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(value, tp, where)
        return {str(k): v for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _type_error(value, tp, where)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(value, tp, where)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(value, tp, where)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _type_error(value, tp, where)
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config annotation {tp!r} at {where}")


def _type_error(value: Any, tp: Any, where: str) -> ConfigError:
    return ConfigError(
        f"config field {where!r} must be {_type_name(tp)}, got {value!r} "
        f"({type(value).__name__}); fix its value in the config file",
        field=where,
    )


def _section(cls: type[Any], doc: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in doc.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in hints:
            import difflib

            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            section = f"section {where!r}" if where else "the top level"
            raise ConfigError(
                f"unknown config field {full!r}; {hint}fields of {section}: {', '.join(names)}",
                field=full,
            )
        kwargs[key] = _coerce(value, hints[key], full)
    return cls(**kwargs)


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


def validate(cfg: PipelineConfig, *, base_dir: Path | None = None) -> PipelineConfig:
    """Check ranges and cross-field rules; returns ``cfg`` with dataset paths made absolute.

    Args:
        cfg: the parsed configuration.
        base_dir: folder relative dataset paths are resolved against (the config file's).

    Raises:
        ConfigError: naming the field and the fix.
    """
    from hsconas.hardware.backends import list_backends
    from hsconas.space import list_spaces

    _check(bool(cfg.run_dir), "run_dir", "must not be empty")
    d = cfg.device
    backends = list_backends()
    _check(
        d.backend in backends,
        "device.backend",
        f"is {d.backend!r}, an unknown backend; use one of: {', '.join(backends)}",
    )
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
    supernet_spaces = ("hsconas", "hsconas-cifar", "hsconas-digits")
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
    _check(b.source in ("model", "measure"), "blocks.source", "must be 'model' or 'measure'")

    s = cfg.supernet
    _check(s.epochs >= 1, "supernet.epochs", f"must be >= 1, got {s.epochs}")
    _check(s.batch_size >= 1, "supernet.batch_size", "must be >= 1")
    _check(s.optimizer in ("sgd", "adamw"), "supernet.optimizer", "must be 'sgd' or 'adamw'")
    _check(s.lr > 0, "supernet.lr", f"must be > 0, got {s.lr}")
    _check(s.weight_decay >= 0, "supernet.weight_decay", "must be >= 0")
    _check(
        s.sampling in ("uniform", "sandwich"),
        "supernet.sampling",
        "must be 'uniform' or 'sandwich'",
    )
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
    return dataclasses.replace(cfg, dataset=ds)


def config_from_dict(doc: Any, *, base_dir: Path | None = None) -> PipelineConfig:
    """Parse and validate a configuration mapping (see :func:`load_config`)."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(
            "the config file must hold a mapping of sections (run_dir:, device:, ...)"
        )
    cfg = _section(PipelineConfig, doc, "")
    return validate(cfg, base_dir=base_dir)


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) pipeline configuration.

    Args:
        path: the file; ``None`` gives the embedded default (:data:`DEFAULT_CONFIG_TEXT`).

    Raises:
        ConfigError: unreadable file, unknown format, or a field that fails validation.
    """
    import yaml

    if path is None:
        return config_from_dict(yaml.safe_load(DEFAULT_CONFIG_TEXT))
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} not found; check the --config path") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            doc: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml", ".json"):
            doc = yaml.safe_load(text)
        else:
            raise ConfigError(
                f"config file {str(p)!r}: unknown format {suffix!r}; use .yaml, .yml or .toml"
            )
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {str(p)!r} is not valid {suffix[1:]}: {first}") from None
    return config_from_dict(doc, base_dir=p.resolve().parent)


def default_config() -> PipelineConfig:
    """The embedded default configuration (the demo)."""
    return load_config(None)


def config_to_dict(cfg: PipelineConfig) -> dict[str, Any]:
    """A JSON/YAML-ready dict of every field (defaults included): the exact config of a run."""
    doc: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(cfg)))
    return doc
