"""Pipeline configuration: loading YAML/TOML, the embedded default, and one-line errors that name
the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hsconas.cli.main import main
from hsconas.pipeline.config import (
    DEFAULT_CONFIG_TEXT,
    ConfigError,
    PipelineConfig,
    config_from_dict,
    config_to_dict,
    default_config,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]


def test_default_config_is_the_demo_file() -> None:
    cfg = default_config()
    assert cfg.device.backend == "onnxruntime"
    assert cfg.space.name == "hsconas-digits"
    assert cfg.dataset.name == "digits"
    assert cfg.search.budget_ms is None and 0 < cfg.search.budget_percentile < 100
    assert (REPO / "configs" / "demo.yaml").read_text(encoding="utf-8") == DEFAULT_CONFIG_TEXT
    assert load_config(REPO / "configs" / "demo.yaml") == cfg


@pytest.mark.parametrize("name", ["cifar10.yaml", "imagenet_gpu.yaml"])
def test_example_configs_parse_or_name_the_data_path(name: str, data_dir: Path) -> None:
    # The examples point at data that may not be on this machine; they must parse, and if they
    # fail it must only be because the dataset path is missing.
    try:
        cfg = load_config(REPO / "configs" / name)
    except ConfigError as exc:
        assert exc.field == "dataset.path", str(exc)
    else:
        assert isinstance(cfg, PipelineConfig)


def test_round_trip_through_dict() -> None:
    cfg = default_config()
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_toml_and_yaml_give_the_same_config(tmp_path: Path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("seed: 3\nsearch: {n_queries: 90, shrink_at: [40]}\n", encoding="utf-8")
    t = tmp_path / "c.toml"
    t.write_text("seed = 3\n[search]\nn_queries = 90\nshrink_at = [40]\n", encoding="utf-8")
    a, b = load_config(y), load_config(t)
    assert a == b and a.seed == 3 and a.search.n_queries == 90 and a.search.shrink_at == [40]


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        ({"serach": {}}, "serach", ["unknown", "did you mean 'search'"]),
        ({"search": {"n_querys": 5}}, "search.n_querys", ["unknown", "n_queries"]),
        ({"search": {"n_queries": "many"}}, "search.n_queries", ["must be an integer", "'many'"]),
        ({"seed": 1.5}, "seed", ["must be an integer"]),
        ({"final": {"train_from_scratch": "yes"}}, "final.train_from_scratch", ["true/false"]),
        ({"device": "cpu"}, "device", ["section"]),
        ({"device": {"reference": "maybe"}}, "device.reference", ["true/false"]),
        ({"device": {"backend": "tensorrt"}}, "device.backend",
         ["unknown backend", "onnxruntime", "torch"]),
        ({"space": {"name": "nope"}}, "space.name", ["unknown space", "hsconas-digits"]),
        ({"space": {"name": "fbnet"}}, "space.name", ["no supernet"]),
        ({"dataset": {"name": "cifar10", "path": "/no/such/dir"}}, "dataset.path",
         ["does not exist", "/no/such/dir"]),
        ({"dataset": {"name": "folder"}}, "dataset.path", ["required"]),
        ({"search": {"budget_percentile": 140}}, "search.budget_percentile", ["(0, 100)"]),
        ({"search": {"budget_ms": -1}}, "search.budget_ms", ["> 0"]),
        ({"profile": {"e2e_timing": {"min_runs": 2}}}, "profile.e2e_timing.min_runs", [">= 5"]),
        ({"search": {"shrink_at": [10, 5000]}}, "search.shrink_at", ["n_queries"]),
    ],
)  # fmt: skip
def test_errors_name_the_field_and_the_fix(doc: dict, field: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(doc)
    msg = str(info.value)
    assert info.value.field == field
    assert f"'{field}'" in msg
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_relative_dataset_path_resolves_against_the_config_file(tmp_path: Path) -> None:
    data = tmp_path / "imgs"
    data.mkdir()
    cfg_file = tmp_path / "sub" / "c.yaml"
    cfg_file.parent.mkdir()
    cfg_file.write_text("dataset: {name: folder, path: ../imgs}\n", encoding="utf-8")
    assert load_config(cfg_file).dataset.path == str(data.resolve())


def test_cli_errors_are_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        "bad_field.yaml": ("search: {budgett_ms: 3}\n", "search.budgett_ms"),
        "bad_backend.yaml": ("device: {backend: tpu}\n", "device.backend"),
        "bad_path.yaml": ("dataset: {name: mnist, path: nowhere/mnist}\n", "dataset.path"),
        "bad_type.toml": ("[supernet]\nepochs = 'ten'\n", "supernet.epochs"),
    }
    for name, (text, field) in cases.items():
        f = tmp_path / name
        f.write_text(text, encoding="utf-8")
        assert main(["run", "--config", str(f)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("hsconas: error:"), err
        assert field in err
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_print_config_is_a_loadable_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--print-config"]) == 0
    out = tmp_path / "full.yaml"
    out.write_text(capsys.readouterr().out, encoding="utf-8")
    assert load_config(out) == default_config()


def test_device_reference_gives_a_backend_timed_against_the_spaces_middle_network() -> None:
    from hsconas.pipeline.stages.common import backend_of as _backend

    plain = _backend(config_from_dict({}))
    assert plain.reference is None
    be = _backend(config_from_dict({"device": {"reference": True}}))
    assert be.reference is not None and be.reference.key.startswith("hsconas-digits:")
    assert be.settings()["reference"] == be.reference.key


def test_ofa_family_space_takes_the_streamed_image_size_as_its_resolution(
    tmp_path: Path, data_dir: Path
) -> None:
    archive = data_dir / "images" / "cifar10_jpg.tar.gz"
    doc = {"space": {"name": "proxylessnas"}, "dataset": {"name": "cifar10", "path": str(archive)}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    cfg = load_config(path)  # no image size: the smallest resolution of the space
    assert cfg.dataset.image_size == 128 and cfg.space.restrict == {"resolution": [128]}
    doc["dataset"]["image_size"] = 160  # type: ignore[index]
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert load_config(path).space.restrict == {"resolution": [160]}
    doc["dataset"]["image_size"] = 32  # type: ignore[index]
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match="not a resolution of space 'proxylessnas'") as info:
        load_config(path)
    assert info.value.field == "dataset.image_size"
    doc = {"space": {"name": "ofa-mbv3"}, "dataset": {"name": "imagefolder"}}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match="required for dataset 'imagefolder'"):
        load_config(path)


def test_fixed_input_space_refuses_other_channels_and_sizes_streamed_images_to_its_input(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(yaml.safe_dump({"space": {"name": "nb201"}}), encoding="utf-8")  # digits
    with pytest.raises(ConfigError, match="'nb201' takes 3-channel images") as info:
        load_config(path)
    assert info.value.field == "dataset.name"
    assert main(["run", "--config", str(path)]) == 2  # one line, before any stage runs
    err = capsys.readouterr().err.strip()
    assert "3-channel" in err and "\n" not in err and "Traceback" not in err
    archive = str(data_dir / "images" / "cifar10_jpg.tar.gz")
    doc: dict[str, dict[str, object]] = {
        "space": {"name": "nb201"},
        "dataset": {"name": "cifar10", "path": archive},
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert load_config(path).dataset.image_size == 32  # null: the space's input size
    doc["dataset"]["image_size"] = 64
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match="fixed 32 px input") as info:
        load_config(path)
    assert info.value.field == "dataset.image_size"
    doc = {"space": {"name": "hsconas-digits"}, "dataset": {"name": "cifar10", "path": archive}}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match="'hsconas-digits' takes 1-channel images"):
        load_config(path)
