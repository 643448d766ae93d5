"""Supernet training under each member rule (uniform, sandwich with distillation, fair): short
runs that resume exactly, old checkpoints, and the CLI and pipeline options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from hsconas.accuracy import TrainConfig, load_checkpoint, train
from hsconas.accuracy.checkpoint import save_atomic
from hsconas.accuracy.train import CheckpointError, seeded
from hsconas.cli.main import main
from hsconas.data import load_dataset
from hsconas.nn.supernet import build_supernet
from hsconas.pipeline.config import config_from_dict, config_to_dict, default_config
from hsconas.pipeline.config_sections import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RULES: dict[str, dict[str, Any]] = {
    "uniform": {"sampling": "uniform"},
    "fair": {"sampling": "fair"},
    "sandwich-distill": {"sampling": "sandwich", "num_random": 1, "distill": True},
    "sandwich-half-distill": {
        "sampling": "sandwich",
        "num_random": 1,
        "distill": True,
        "distill_weight": 0.5,
    },
}


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_dataset("digits", subset=48, val_fraction=0.33, seed=0)  # one batch of 32


def _supernet(seed: int = 1) -> Any:
    with seeded(seed):
        return build_supernet("hsconas-digits")


class _Stop(Exception):
    pass


def _stop_after_first(epoch: int, metrics: dict[str, float]) -> None:
    if epoch == 1:
        raise _Stop


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_trains_and_resumes_exactly(rule: str, digits: Any, tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=2, batch_size=32, seed=3, calib_images=16, eval_every=2, **RULES[rule])
    full = train(_supernet(), digits, cfg, tmp_path / "a", progress=False)
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in full.history)
    with pytest.raises(_Stop):
        train(_supernet(), digits, cfg, tmp_path / "b", on_epoch_end=_stop_after_first,
              progress=False)  # fmt: skip
    resumed = train(_supernet(99), digits, cfg, tmp_path / "b", resume=True, progress=False)
    assert resumed.resumed_from == 1
    ckpt_a, ckpt_b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert ckpt_a["train_config"] == cfg.to_dict()
    for name, value in ckpt_a["model"].items():
        assert torch.equal(value, ckpt_b["model"][name]), name


def test_rules_train_differently(digits: Any, tmp_path: Path) -> None:
    weights = {}
    for rule in ("uniform", "fair", "sandwich-distill"):
        cfg = TrainConfig(epochs=1, batch_size=32, seed=3, calib_images=16, **RULES[rule])
        train(_supernet(), digits, cfg, tmp_path / rule, progress=False)
        weights[rule] = load_checkpoint(tmp_path / rule)["model"]["classifier.weight"]
    assert not torch.equal(weights["uniform"], weights["fair"])
    assert not torch.equal(weights["fair"], weights["sandwich-distill"])


def test_fair_nb201_on_cifar_images(data_dir: Path, tmp_path: Path) -> None:
    archive = data_dir / "images" / "cifar10_jpg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    data = load_dataset(f"cifar10:{archive}", subset=80, val_fraction=0.2, seed=0)
    with seeded(0):
        sn = build_supernet("nb201", channels=4, cells_per_stage=1)
    cfg = TrainConfig(epochs=1, batch_size=32, sampling="fair", calib_images=32)
    result = train(sn, data, cfg, tmp_path / "nb", progress=False)
    assert result.epochs == 1 and {"val_acc_fixed0", "val_acc_fixed1"} <= set(result.history[0])


def test_checkpoint_without_distill_fields_still_resumes(digits: Any, tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=2, batch_size=32, seed=3, calib_images=16, eval_every=2,
                      sampling="sandwich", num_random=1)  # fmt: skip
    with pytest.raises(_Stop):
        train(_supernet(), digits, cfg, tmp_path / "old", on_epoch_end=_stop_after_first,
              progress=False)  # fmt: skip
    path = tmp_path / "old" / "checkpoint.pt"
    ckpt = load_checkpoint(path)
    for key in ("distill", "distill_weight"):  # as written before these fields existed
        del ckpt["train_config"][key]
    save_atomic(ckpt, path)
    distilled = TrainConfig(**{**cfg.to_dict(), "distill": True})
    with pytest.raises(CheckpointError, match="another configuration"):
        train(_supernet(), digits, distilled, tmp_path / "old", resume=True, progress=False)
    resumed = train(_supernet(), digits, cfg, tmp_path / "old", resume=True, progress=False)
    assert resumed.resumed_from == 1 and resumed.epochs == 2


def test_cli_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--data", "digits", "--subset", "48", "--batch-size", "32", "--epochs", "1",
              "--no-progress", "--json", "--store", str(tmp_path / "s.db")]  # fmt: skip
    argv = ["supernet", "train", "hsconas-digits", *common]
    assert main([*argv, "--out", str(tmp_path / "fair"), "--sampling", "fair"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["epoch"] == 1.0
    assert load_checkpoint(tmp_path / "fair")["train_config"]["sampling"] == "fair"
    distill = [
        "--sampling",
        "sandwich",
        "--num-random",
        "1",
        "--distill",
        "--distill-weight",
        "0.7",
    ]
    assert main([*argv, "--out", str(tmp_path / "kd"), *distill]) == 0
    stored = load_checkpoint(tmp_path / "kd")["train_config"]
    assert (stored["distill"], stored["distill_weight"], stored["num_random"]) == (True, 0.7, 1)
    capsys.readouterr()
    bad = [
        (["--distill"], "sandwich"),
        (["--sampling", "fair", "--distill"], "sandwich"),
        (["--sampling", "sandwich", "--distill", "--distill-weight", "2"], "distill_weight"),
    ]
    for extra, words in bad:
        assert main([*argv, "--out", str(tmp_path / "bad"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err
    ofa = ["supernet", "train", "ofa-mbv3", *common, "--out", str(tmp_path / "o")]
    assert main([*ofa, "--sampling", "fair"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "supports hsconas" in err and "nb201" in err


def test_pipeline_config_rules(data_dir: Path) -> None:
    def config(space: str, **supernet: Any) -> Any:
        doc = config_to_dict(default_config())
        doc["space"] = {"name": space}
        if space != "hsconas-digits":  # 3-channel spaces take CIFAR-10
            doc["dataset"].update(name="cifar10", path=str(data_dir / "images/cifar10_jpg.tar.gz"))
        doc["supernet"].update(supernet)
        return config_from_dict(doc)

    assert config("nb201", sampling="fair").supernet.sampling == "fair"
    assert config("hsconas-digits", sampling="sandwich", distill=True).supernet.distill
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("ofa-mbv3", {"sampling": "fair"}, "supernet.sampling"),
        ("nb201", {"sampling": "sandwich", "distill": True}, "largest"),
        ("hsconas-digits", {"sampling": "uniform", "distill": True}, "supernet.distill"),
        ("hsconas-digits", {"sampling": "fairnas"}, "supernet.sampling"),
        ("hsconas-digits", {"distill": "yes"}, "supernet.distill"),
    ]
    for space, fields, words in bad:
        with pytest.raises(ConfigError, match=words):
            config(space, **fields)
