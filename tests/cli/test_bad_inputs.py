"""Every class of bad input gives one ``hsconas: error:`` line and exit code 2, before any work.

One test per class: tables with missing, non-finite, negative, out-of-range or repeated values;
outputs that cannot be written; weight files that are not weights; empty and oversized arguments.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hsconas.cli.main import main
from hsconas.cli.output import MAX_ECHO_CHARS
from hsconas.space import get_space

NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hsconas: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _nb201_table(tmp_path: Path, values: list[str], *, repeat_first: bool = False) -> Path:
    archs = [get_space("nb201").to_string(a) for a in get_space("nb201").sample_many(6, 0)]
    if repeat_first:
        archs[-1] = archs[0]
    rows = [f"{a},{v}" for a, v in zip(archs, values, strict=True)]
    path = tmp_path / "board.csv"
    path.write_text("\n".join(["arch_str,board", *rows]) + "\n")
    return path


BAD_LATENCIES = {
    "negative": (["1.0", "2.0", "-3.0", "1.5", "2.5", "1.2"], ["row 3", "-3.0", "out of range"]),
    "zero": (["1.0", "0", "3.0", "1.5", "2.5", "1.2"], ["row 2", "out of range"]),
    "missing": (["1.0", "2.0", "3.0", "", "2.5", "1.2"], ["row 4", "missing"]),
    "nan": (["1.0", "nan", "3.0", "1.5", "2.5", "1.2"], ["row 2", "missing"]),
    "infinite": (["1.0", "2.0", "3.0", "1.5", "inf", "1.2"], ["row 5", "not finite"]),
}


@pytest.mark.parametrize("kind", sorted(BAD_LATENCIES))
@pytest.mark.parametrize("command", ["search", "fit-table"])
def test_bad_latency_values_are_named(
    kind: str, command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    values, needles = BAD_LATENCIES[kind]
    table = _nb201_table(tmp_path, values)
    if command == "search":
        argv = ["search", "--space", "nb201", "--latency-table", str(table), "--device", "board"]
    else:
        argv = ["latency", "fit-table", "--table", str(table), "--device", "board", "--train", "3"]
    code, err = run(capsys, *argv)
    assert_one_line(code, err, str(table), "'board'", *needles)


@pytest.mark.parametrize("command", ["search", "fit-table"])
def test_repeated_architecture_rows_are_refused(
    command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    table = _nb201_table(tmp_path, ["1", "2", "3", "4", "5", "6"], repeat_first=True)
    if command == "search":
        argv = ["search", "--space", "nb201", "--latency-table", str(table), "--device", "board"]
    else:
        argv = ["latency", "fit-table", "--table", str(table), "--device", "board"]
    code, err = run(capsys, *argv)
    assert_one_line(code, err, "rows 1 and 6 are the same architecture")


def test_accuracy_table_out_of_range(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    space = get_space("nb201")
    rows = [
        f"{space.to_string(a)},{v}"
        for a, v in zip(space.sample_many(3, 1), (90, 101, 80), strict=True)
    ]
    table = tmp_path / "acc.csv"
    table.write_text("arch_str,top1\n" + "\n".join(rows) + "\n")
    code, err = run(
        capsys, "search", "--space", "nb201", "--accuracy-table", str(table),
        "--accuracy-column", "top1", "--device", "pixel3",
    )  # fmt: skip
    assert_one_line(code, err, "'top1'", "row 2", "accuracy")


def test_search_out_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("")
    code, err = run(capsys, "search", "--space", "nb201", "--out", str(blocker))
    assert_one_line(code, err, "--out", "is a file, not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_search_out_unwritable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, err = run(capsys, "search", "--space", "nb201", "--out", str(locked / "run"))
    assert_one_line(code, err, "--out", "cannot create its directory")


def test_outputs_under_a_file_fail_before_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = str(blocker / "sub" / "x")
    cases = [
        ["search", "--space", "nb201", "--store", target],
        ["latency", "profile", "nb201", "--out", target],
        ["latency", "fit-table", "--table", "t.csv", "--device", "d", "--out", target],
        ["profile", "reduce", "prof", "--out", target],
    ]
    for argv in cases:
        code, err = run(capsys, *argv)
        assert_one_line(code, err, "cannot create its directory", "a file is in the way")


def test_corrupt_weights(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(os.urandom(512))
    out = str(tmp_path / "net.onnx")
    code, err = run(capsys, "model", "export", f"nb201:{NB201_BEST}", "--weights", str(corrupt),
                    "--onnx", out)  # fmt: skip
    assert_one_line(code, err, str(corrupt), "cannot read")
    assert not Path(out).exists()


def test_weights_that_are_not_a_state_dict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import torch

    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    code, err = run(capsys, "model", "export", f"nb201:{NB201_BEST}", "--weights", str(path),
                    "--onnx", str(tmp_path / "n.onnx"))  # fmt: skip
    assert_one_line(code, err, "not a state_dict")


def test_empty_architecture(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "model", "info", "")
    assert_one_line(code, err, "empty architecture")


@pytest.mark.parametrize(
    "argv",
    [
        ["spaces", "sample", "G" * 10_000],
        ["spaces", "sample", "nb201", "--bogus", "G" * 10_000],
        ["model", "info", "nb201:" + "G" * 10_000],
    ],
    ids=["unknown-space", "unknown-option", "bad-arch-string"],
)
def test_garbage_arguments_are_not_echoed_whole(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(capsys, *argv)
    assert code == 2 and "Traceback" not in err
    assert len(err) < 8 * MAX_ECHO_CHARS + 400, len(err)
    assert "more characters]" in err


@pytest.mark.parametrize(
    "argv",
    [
        [
            "supernet",
            "train",
            "hsconas-digits",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--out",
            "{f}",
        ],
        ["train", "hsconas-digits:{arch}", "--data", "digits", "--epochs", "1", "--out", "{f}"],
    ],
    ids=["supernet-train", "train"],
)
def test_training_out_is_a_file(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("")
    arch = get_space("hsconas-digits").to_string(get_space("hsconas-digits").sample(0))
    code, err = run(capsys, *[a.format(f=blocker, arch=arch) for a in argv])
    assert_one_line(code, err, "--out", "is a file, not a directory")


def test_empty_checkpoint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "checkpoint.pt"
    empty.write_bytes(b"")
    code, err = run(capsys, "export", str(empty), "--onnx", str(tmp_path / "n.onnx"))
    assert_one_line(code, err, "cannot read as a checkpoint", "empty or truncated")
