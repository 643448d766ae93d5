"""Tests of the ``hsconas`` command line, run in-process through ``main(argv)``."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hsconas import __version__
from hsconas.cli.main import build_parser, main
from hsconas.space import get_space, list_spaces

NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NB201_MIXED = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _commands(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[list[str]]:
    """Every command path of the parser tree, depth first."""
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, [*path, name])


#: the root and every command of the groups this file covers (new subcommands join automatically)
COMMANDS = [c for c in _commands(build_parser(), []) if not c or c[0] in ("spaces", "model")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hsconas: error: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def needs_builder(space: str) -> None:
    from hsconas.nn import build_model

    try:
        build_model(get_space(space).sample(0))
    except NotImplementedError:
        pytest.skip(f"no PyTorch builder registered for {space!r} yet")


# ---------------------------------------------------------------- help and version
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"hsconas {__version__}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_has_examples(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    assert len(COMMANDS) >= 8
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert "usage: hsconas" in out
    assert "examples:" in out


ALL_COMMANDS = list(_commands(build_parser(), []))


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_help_renders_with_examples(command: list[str]) -> None:
    parser = build_parser()
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    text = parser.format_help()
    assert "examples:" in text, " ".join(command)
    assert "%%" not in text  # descriptions are not %-formatted; a doubled % shows up verbatim


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spaces", "sample", "nb201", "-n", "0")
    assert code == 2 and "positive integer" in err
    code, _, err = run(capsys, "nonsense")
    assert code == 2 and "usage:" in err
    code, _, err = run(capsys, "spaces")
    assert code == 2 and "usage:" in err


def test_parser_is_built_without_side_effects() -> None:
    parser = build_parser()
    args = parser.parse_args(["model", "info", "nb201:" + NB201_BEST, "--json"])
    assert args.sources == ["nb201:" + NB201_BEST] and args.json


# ---------------------------------------------------------------- spaces
def test_spaces_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["space", "size", "genes", "description"]
    assert "\x1b" not in out and "┃" not in out  # plain text when not a terminal
    names = [line.split()[0] for line in lines[2:]]
    assert names == list_spaces()
    assert any(line.split()[:3] == ["nb201", "15625", "6"] for line in lines)


def test_spaces_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "list", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == list_spaces()
    by_name = {r["name"]: r for r in rows}
    assert by_name["nb201"]["size"] == 15625 and by_name["nb201"]["num_genes"] == 6
    assert by_name["fbnet"]["size"] == 9**22 and by_name["fbnet"]["num_genes"] == 22


def test_spaces_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "show", "nb201")
    assert code == 0
    assert "15625" in out
    assert "edge3<-2" in out and "avg_pool_3x3" in out
    code, out, _ = run(capsys, "spaces", "show", "fbnet", "--json")
    doc = json.loads(out)
    assert doc["size"] == 9**22 and len(doc["genes"]) == 22
    assert doc["genes"][0]["choices"][-1] == "skip"


def test_spaces_sample_matches_library(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "sample", "nb201", "-n", "7", "--seed", "3")
    assert code == 0
    space = get_space("nb201")
    expected = [space.to_string(a) for a in space.sample_many(7, np.random.default_rng(3))]
    assert out.splitlines() == expected
    code, again, _ = run(capsys, "spaces", "sample", "nb201", "-n", "7", "--seed", "3")
    assert again == out


def test_spaces_sample_json_lines_unique(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "spaces", "sample", "fbnet", "-n", "20", "--seed", "1", "--json", "--unique"
    )
    assert code == 0
    space = get_space("fbnet")
    archs = [space.from_json(json.loads(line)) for line in out.splitlines()]
    assert len(archs) == len(set(archs)) == 20


def test_spaces_sample_unique_too_many(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spaces", "sample", "nb201", "-n", "20000", "--unique")
    assert_user_error(code, err, "15625")


# ---------------------------------------------------------------- user errors
def test_unknown_space(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spaces", "show", "nb999")
    assert_user_error(code, err, "nb999", "nb201", "fbnet")
    code, _, err = run(capsys, "model", "info", "nb999:" + NB201_BEST)
    assert_user_error(code, err, "nb999", "nb201", "fbnet")


def test_wrong_layer_count(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "model", "info", "fbnet:" + " ".join(["k3_e1"] * 21))
    assert_user_error(code, err, "22", "21")
    code, _, err = run(capsys, "model", "info", "nb201:|nor_conv_3x3~0|+|none~0|+|none~0|")
    assert_user_error(code, err, "nb201")


def test_bad_op_names_layer_and_choices(capsys: pytest.CaptureFixture[str]) -> None:
    bad = NB201_BEST.replace("nor_conv_3x3~1|+", "conv_5x5~1|+")
    code, _, err = run(capsys, "model", "info", "nb201:" + bad)
    assert_user_error(code, err, "edge2<-1", "conv_5x5", "none, skip_connect, nor_conv_1x1")


def test_bad_op_in_json_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    space = get_space("fbnet")
    doc = space.to_json(space.sample(0))
    doc["genes"]["layer5"] = "k9_e9"
    del doc["arch"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    code, _, err = run(capsys, "model", "info", str(path))
    assert_user_error(code, err, "bad.json", "layer5", "k9_e9", "k5_e1_g2")


def test_malformed_json_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"space": "nb201", "arch": ')
    code, _, err = run(capsys, "model", "info", str(path))
    assert_user_error(code, err, "broken.json", "malformed JSON")
    path.write_text('{"arch": "x"}')
    code, _, err = run(capsys, "model", "info", str(path))
    assert_user_error(code, err, "'space'")


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    code, _, err = run(capsys, "model", "info", str(missing))
    assert_user_error(code, err, "not found", "nope.json")
    code, _, err = run(capsys, "model", "info", "--ofa-config", str(tmp_path / "x.config"))
    assert_user_error(code, err, "not found", "x.config")
    code, _, err = run(capsys, "model", "info")
    assert_user_error(code, err, "SOURCE")


def test_export_needs_an_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "model", "export", "nb201:" + NB201_BEST)
    assert_user_error(code, err, "--onnx")
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(
        capsys, "model", "export", "nb201:" + NB201_BEST, "--onnx", str(blocker / "x.onnx")
    )
    assert_user_error(code, err, "--onnx", "cannot create its directory")
    code, _, err = run(capsys, "model", "export", "nb201:" + NB201_BEST, "--onnx", str(tmp_path))
    assert_user_error(code, err, "is a directory")


def test_config_that_fits_no_space(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _published_available()
    path = tmp_path / "odd.config"
    path.write_text(json.dumps({"name": "SomeOtherNet", "blocks": []}))
    code, _, err = run(capsys, "model", "info", "--ofa-config", str(path))
    assert_user_error(code, err, "SomeOtherNet")
    code, _, err = run(capsys, "model", "info", str(path))
    assert_user_error(code, err, "SomeOtherNet")


def test_installed_entry_point_reports_user_error(tmp_path: Path) -> None:
    """The real command, in a fresh process: one line on stderr, exit code 2, no traceback."""
    exe = Path(sys.executable).with_name("hsconas")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hsconas.cli.main"]
    bad = "nb201:" + NB201_BEST.replace("nor_conv_3x3~2", "sep_conv~2")
    proc = subprocess.run([*cmd, "model", "info", bad], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("hsconas: error: ")
    assert "edge3<-2" in proc.stderr and "sep_conv" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- model info / export
def test_model_info_nb201_json(capsys: pytest.CaptureFixture[str]) -> None:
    needs_builder("nb201")
    code, out, _ = run(
        capsys, "model", "info", "nb201:" + NB201_BEST, "nb201:" + NB201_MIXED, "--json"
    )
    assert code == 0
    best, mixed = (json.loads(line) for line in out.splitlines())
    assert isinstance(best["params"], int) and isinstance(best["macs"], int)
    assert best["space"] == "nb201" and best["arch"] == NB201_BEST
    assert best["input_shape"] == [3, 32, 32]
    # NAS-Bench-201 reports 1.53 M params and 220 M FLOPs for the all-conv3x3 cell on CIFAR-10
    assert best["params"] == pytest.approx(1.53e6, rel=0.05)
    assert best["macs"] == pytest.approx(220e6, rel=0.08)
    assert best["params_m"] == pytest.approx(best["params"] / 1e6, abs=1e-3)
    assert mixed["params"] < best["params"] and mixed["macs"] < best["macs"]


def test_model_info_long_arch_string(capsys: pytest.CaptureFixture[str]) -> None:
    """Strings longer than a file name may be are still read as SPACE:ARCH (not stat-ed)."""
    long_text = "fbnet:" + " ".join(["k5_e1_g2"] * 23) + " " * 300
    assert len(long_text) > 255
    code, _, err = run(capsys, "model", "info", long_text)
    assert_user_error(code, err, "fbnet", "expected 22", "got 23")


def test_model_info_table_and_json_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    needs_builder("nb201")
    code, out, _ = run(capsys, "spaces", "sample", "nb201", "-n", "2", "--seed", "0", "--json")
    path = tmp_path / "archs.jsonl"
    path.write_text(out)
    code, out, err = run(capsys, "model", "info", str(path), "--num-classes", "100")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["name", "space"]
    assert len(lines) == 2 + 2
    assert all("nb201" in line and "3x32x32" in line for line in lines[2:])
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([json.loads(x) for x in path.read_text().splitlines()]))
    code, out2, _ = run(capsys, "model", "info", str(listing), "--json", "--num-classes", "100")
    assert code == 0 and len(out2.splitlines()) == 2


def test_model_export_onnx_matches_torch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    needs_builder("nb201")
    import onnx
    import onnxruntime as ort
    import torch

    out_path = tmp_path / "sub" / "cell.onnx"
    sd_path = tmp_path / "cell.pt"
    ts_path = tmp_path / "cell.ts"
    code, out, err = run(
        capsys, "model", "export", "nb201:" + NB201_MIXED, "--onnx", str(out_path),
        "--state-dict", str(sd_path), "--torchscript", str(ts_path), "--num-classes", "10",
    )  # fmt: skip
    assert code == 0, err
    assert "max abs diff" in out and str(out_path) in out
    onnx.checker.check_model(str(out_path))
    meta = json.loads((tmp_path / "sub" / "cell.arch.json").read_text())
    assert meta["arch"] == NB201_MIXED and meta["input_shape"] == [3, 32, 32]
    assert (tmp_path / "cell.arch.json").exists()
    # rebuild the exported network from its state dict and compare with ONNX Runtime
    from hsconas.nn import build_model

    model = build_model(get_space("nb201").from_json(meta), num_classes=10).eval()
    model.load_state_dict(torch.load(sd_path, weights_only=True))
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})  # batch 4: the batch axis is dynamic
    assert got.shape == (4, 10)
    assert (
        np.abs(expected).max() > 1e-2
    )  # outputs large enough for the comparison to mean something
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- published configs
def _published_available() -> None:
    pytest.importorskip("hsconas.spaces.published", reason="published config import not added yet")


def test_model_info_published_configs_match_csv(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    """Params and MACs of two published OFA subnets, counted at their image size, vs the table."""
    _published_available()
    lines = (data_dir / "ofa_mbv3" / "ofa_specialized_net_configs.jsonl").read_text().splitlines()
    with (data_dir / "ofa_mbv3" / "ofa_specialized_subnets.csv").open() as f:
        table = {row["net_id"]: row for row in csv.DictReader(f)}
    picked = [lines[0], next(x for x in lines if "MobileNetV3" in x)]
    path = tmp_path / "two.jsonl"
    path.write_text("\n".join(picked) + "\n")
    code, out, err = run(capsys, "model", "info", "--ofa-config", str(path), "--json")
    assert code == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    assert len(rows) == 2
    for row, line in zip(rows, picked, strict=True):
        published = table[json.loads(line)["net_id"]]
        size = int(published["image_size"])
        assert row["input_shape"] == [3, size, size]
        assert row["params_m"] == pytest.approx(float(published["params"].rstrip("M")), rel=0.03)
        assert row["macs_m"] == pytest.approx(float(published["macs"].rstrip("M")), rel=0.03)


def test_model_info_detects_proxyless_config(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    """A ProxylessNAS ``.config`` given as SOURCE; ProxylessNAS-Mobile is 4.1 M params, 320 M MACs."""
    _published_available()
    path = data_dir / "proxylessnas" / "proxyless_mobile.config"
    code, out, err = run(capsys, "model", "info", str(path), "--json")
    assert code == 0, err
    (row,) = (json.loads(x) for x in out.splitlines())
    assert row["name"] == "proxyless_mobile"
    assert row["space"].startswith("proxylessnas")
    assert row["input_shape"] == [3, 224, 224]
    assert row["params"] == pytest.approx(4.08e6, rel=0.01)
    assert row["macs"] == pytest.approx(320e6, rel=0.01)


def test_export_of_several_nets_needs_pick(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    _published_available()
    lines = (data_dir / "ofa_mbv3" / "ofa_specialized_net_configs.jsonl").read_text().splitlines()
    path = tmp_path / "nets.jsonl"
    path.write_text("\n".join(lines[:2]) + "\n")
    out = str(tmp_path / "net.onnx")
    code, _, err = run(capsys, "model", "export", str(path), "--onnx", out)
    assert_user_error(code, err, "2 architectures", "--pick", json.loads(lines[0])["net_id"])
    code, _, err = run(capsys, "model", "export", str(path), "--onnx", out, "--pick", "7")
    assert_user_error(code, err, "--pick", "0..1")
    assert not Path(out).exists()


def test_search_help_states_the_eas_default_batch_size() -> None:
    import inspect

    from hsconas.cli.search import EA_DEFAULT_BATCH_SIZE
    from hsconas.search import HSCoNASEvolution

    default = inspect.signature(HSCoNASEvolution).parameters["batch_size"].default
    assert default == EA_DEFAULT_BATCH_SIZE
    sub = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["search"]
    assert f"(default {default})" in " ".join(sub.format_help().split())
