"""Training loop: exact resume, checkpoints loadable with weights_only, metrics, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hsconas.accuracy import TrainConfig, evaluate_subnets, load_checkpoint, load_trained, train
from hsconas.accuracy.train import CheckpointError, seeded
from hsconas.cli.main import main
from hsconas.data import load_dataset
from hsconas.nn import build_model
from hsconas.nn.supernet import build_supernet
from hsconas.space import get_space
from hsconas.store import ResultStore

torch.set_num_threads(1)

SMALL = TrainConfig(epochs=3, batch_size=32, lr=0.05, seed=5, calib_images=64)


@pytest.fixture(scope="module")
def tiny_digits():  # type: ignore[no-untyped-def]
    return load_dataset("digits", subset=160, val_fraction=0.2, seed=0)


def _supernet():  # type: ignore[no-untyped-def]
    with seeded(1):
        return build_supernet("hsconas-digits")


class _Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_identical_weights(tiny_digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    full = train(_supernet(), tiny_digits, SMALL, tmp_path / "a", progress=False)

    def stop_after_first(epoch: int, metrics: dict[str, float]) -> None:
        if epoch == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(
            _supernet(),
            tiny_digits,
            SMALL,
            tmp_path / "b",
            on_epoch_end=stop_after_first,
            progress=False,
        )
    assert load_checkpoint(tmp_path / "b")["epoch"] == 1
    # a fresh process would build a new (differently initialised) model and resume
    with seeded(99):
        other = build_supernet("hsconas-digits")
    resumed = train(other, tiny_digits, SMALL, tmp_path / "b", resume=True, progress=False)
    assert resumed.resumed_from == 1 and resumed.epochs == 3
    a = load_checkpoint(tmp_path / "a")["model"]
    b = load_checkpoint(tmp_path / "b")["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name
    drop = ("images_per_s",)
    strip = lambda h: [{k: v for k, v in e.items() if k not in drop} for e in h]  # noqa: E731
    assert strip(full.history) == strip(resumed.history)


def test_checkpoint_contents_store_metrics_and_guards(tiny_digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(
        epochs=2, batch_size=32, sampling="sandwich", num_random=1, seed=0, calib_images=64
    )
    store = ResultStore(tmp_path / "r.db")
    train(_supernet(), tiny_digits, cfg, tmp_path / "run", store=store, run_id="sn", progress=False)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and set(ckpt["rng"]) == {"numpy", "torch", "torch_global"}
    assert ckpt["model_config"] == {
        "kind": "supernet",
        "space": "hsconas-digits",
        "num_classes": 10,
    }
    metrics = store.metrics("sn")
    assert [s for s, _ in metrics["train_loss"]] == [1, 2]
    assert {"val_acc_largest", "val_acc_smallest", "images_per_s", "lr"} <= set(metrics)
    assert store.get_run("sn").status == "finished"  # type: ignore[union-attr]
    model, _ = load_trained(tmp_path / "run")
    assert torch.equal(model.state_dict()["classifier.weight"], ckpt["model"]["classifier.weight"])
    with pytest.raises(CheckpointError, match="exists"):
        train(_supernet(), tiny_digits, cfg, tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="another configuration"):
        train(_supernet(), tiny_digits, SMALL, tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ValueError, match="sandwich"):
        arch = get_space("hsconas-digits").sample(np.random.default_rng(0))
        train(build_model(arch), tiny_digits, cfg, tmp_path / "x", arch=arch, progress=False)


def test_standalone_training_learns_digits(tmp_path: Path) -> None:
    data = load_dataset("digits", subset=600, val_fraction=0.2, seed=0)
    space = get_space("hsconas-digits")
    arch = space.from_string(
        "w0.5,0.5,0.5|mb_k3_e3x0.5-skip|mb_k3_e3x0.5-skip-skip|mb_k3_e3x0.5-skip-skip"
    )
    with seeded(0):
        net = build_model(arch, num_classes=12)  # not the space default: must be recorded
    cfg = TrainConfig(
        epochs=4, batch_size=32, optimizer="adamw", lr=0.01, weight_decay=0.01, seed=0
    )
    result = train(
        net,
        data,
        cfg,
        tmp_path / "net",
        arch=arch,
        build_options={"num_classes": 12},
        progress=False,
    )
    assert result.history[-1]["val_acc"] > 0.6  # chance is 0.1
    rebuilt, ckpt = load_trained(tmp_path / "net")
    assert rebuilt.classifier.out_features == 12
    assert ckpt["model_config"]["arch"] == space.to_string(arch)


def test_supernet_training_ranks_largest_above_smallest(tmp_path: Path) -> None:
    """A short supernet training on digits: after a few epochs every member beats chance
    (0.1) and the largest member beats the smallest."""
    data = load_dataset("digits", subset=900, val_fraction=0.2, seed=0)
    cfg = TrainConfig(epochs=5, batch_size=32, lr=0.1, seed=0, calib_images=256, eval_every=5)
    sn = _supernet()
    train(sn, data, cfg, tmp_path / "sn", progress=False)
    rng = np.random.default_rng(1)
    archs = [sn.largest(), sn.smallest(), *(sn.sample(rng) for _ in range(3))]
    big, small, *others = evaluate_subnets(sn, archs, data, calib_images=256)
    assert big > small + 0.1, (big, small)
    assert min(others) > 0.4, others


def test_cli_supernet_train_eval_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sn"
    common = ["--data", "digits", "--subset", "120", "--batch-size", "32", "--no-progress"]
    code = main(
        [
            "supernet",
            "train",
            "hsconas-digits",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--store",
            str(tmp_path / "s.db"),
            "--json",
            *common,
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epoch"] == 1.0
    arch = "hsconas-digits:w1.0,1.0,1.0|mb_k7_e6x1.0-mb_k3_e3x0.5|mb_k5_e6x0.75-skip-skip|mb_k3_e3x1.0-skip-skip"
    assert (
        main(
            ["supernet", "eval", str(out), arch, "--sample", "2", "--json", "--calib-images", "64"]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 3 and all(0.0 <= r["top1"] <= 1.0 for r in rows)
    nb201 = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|none~2|"
    assert main(["supernet", "eval", str(out), nb201]) == 2
    assert "not hsconas-digits" in capsys.readouterr().err
    onnx_path = tmp_path / "net.onnx"
    assert main(["export", str(out), arch, "--onnx", str(onnx_path)]) == 0
    assert onnx_path.is_file() and (tmp_path / "net.arch.json").is_file()
    # a second `train` into the same folder without --resume is a user error
    assert (
        main(
            [
                "supernet",
                "train",
                "hsconas-digits",
                "--epochs",
                "1",
                "--out",
                str(out),
                "--store",
                str(tmp_path / "s.db"),
                *common,
            ]
        )
        == 2
    )
    assert "--resume" in capsys.readouterr().err


def test_cli_train_from_scratch_and_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arch = "hsconas-digits:w0.5,0.5,0.5|mb_k3_e3x0.5-skip|mb_k3_e3x0.5-skip-skip|mb_k3_e3x0.5-skip-skip"
    out = tmp_path / "net"
    argv = [
        "train",
        arch,
        "--data",
        "digits",
        "--subset",
        "200",
        "--epochs",
        "2",
        "--out",
        str(out),
    ]
    argv += ["--optimizer", "adamw", "--store", str(tmp_path / "s.db"), "--no-progress", "--json"]
    assert main(argv) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["epoch"] == 2.0 and 0.0 <= last["val_acc"] <= 1.0
    from hsconas.accuracy.train import default_run_id

    assert last["run_id"] == default_run_id(out)
    assert ResultStore(tmp_path / "s.db").metrics(last["run_id"])["val_acc"][-1][0] == 2
    assert main(["export", str(out), "--onnx", str(tmp_path / "net.onnx")]) == 0
    assert (tmp_path / "net.onnx").is_file()
    # resuming a finished run trains no further epoch and keeps the weights
    before = load_checkpoint(out)["model"]
    assert main([*argv, "--resume"]) == 0
    after = load_checkpoint(out)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_two_folders_of_one_name_are_two_runs_of_one_store(tiny_digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from hsconas.accuracy.train import default_run_id

    store = ResultStore(tmp_path / "r.db")
    one = TrainConfig(epochs=1, batch_size=32, seed=0, calib_images=32)
    two = TrainConfig(epochs=1, batch_size=32, seed=1, calib_images=32)
    train(_supernet(), tiny_digits, one, tmp_path / "a" / "sn", store=store, progress=False)
    train(_supernet(), tiny_digits, two, tmp_path / "b" / "sn", store=store, progress=False)
    ids = {default_run_id(tmp_path / "a" / "sn"), default_run_id(tmp_path / "b" / "sn")}
    assert len(ids) == 2 and all(i.startswith("sn-") for i in ids)
    assert all(store.get_run(i).status == "finished" for i in ids)  # type: ignore[union-attr]
