"""``hsconas accuracy rank`` through ``main(argv)``: output, caching and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hsconas.accuracy.zero_cost import (
    ENSEMBLE_MEMBERS,
    METHODS,
    ProxyConfig,
    ZeroCostScorer,
    combine,
)
from hsconas.cli import accuracy_rank
from hsconas.cli.main import main
from hsconas.space import get_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NB201_BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "nor_conv_3x3~2|"
)
NB201_CUT = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
DIGITS = ["--data", "digits", "--batch-size", "32"]


def _lines(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == 0, out
    return [json.loads(line) for line in out.splitlines()]


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("hsconas: error: ") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def digits_archs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    space = get_space("hsconas-digits")
    archs = [space.to_string(a) for a in space.sample_many(3, 0, unique=True)]
    path = tmp_path_factory.mktemp("archs") / "archs.txt"
    path.write_text("\n".join(archs[1:]) + "\n")
    return archs, path


def test_the_cli_lists_the_scorers_methods() -> None:
    assert accuracy_rank.METHODS == METHODS


def test_rank_prints_every_arch_best_first_with_the_ensemble_score(
    digits_archs: tuple[list[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archs, path = digits_archs
    db = tmp_path / "r.db"
    argv = ["accuracy", "rank", "hsconas-digits", archs[0], "--archs-file", str(path),
            *DIGITS, "--store", str(db), "--json"]  # fmt: skip
    rows = _lines(argv, capsys)
    assert sorted(r["arch"] for r in rows) == sorted(archs)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    # the scores are the ensemble of the proxies computed directly
    space = get_space("hsconas-digits")
    objs = [space.from_string(r["arch"]) for r in rows]
    scorer = ZeroCostScorer(space, ProxyConfig(data="digits", batch_size=32))
    assert scores == pytest.approx(list(combine(scorer.values_of(objs, ENSEMBLE_MEMBERS))))
    # a repeat reads the store and prints the same lines
    assert _lines(argv, capsys) == rows


def test_rank_by_one_proxy_in_the_given_order_of_archs(
    digits_archs: tuple[list[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    archs, _ = digits_archs
    forward = _lines(
        ["accuracy", "rank", "hsconas-digits", *archs, *DIGITS, "--method", "params", "--json"],
        capsys,
    )
    backward = _lines(["accuracy", "rank", "hsconas-digits", *archs[::-1], *DIGITS, "--method", "params", "--json"], capsys)  # fmt: skip
    assert forward == backward
    assert all(r["method"] == "params" and r["score"] > 1000 for r in forward)


def test_rank_against_a_reference_sample_does_not_depend_on_the_company(
    digits_archs: tuple[list[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archs, _ = digits_archs
    ref = [*DIGITS, "--reference", "4", "--store", str(tmp_path / "r.db"), "--json"]
    alone = _lines(["accuracy", "rank", "hsconas-digits", archs[0], *ref], capsys)
    together = _lines(["accuracy", "rank", "hsconas-digits", *archs, *ref], capsys)
    assert alone[0]["score"] == pytest.approx(
        next(r["score"] for r in together if r["arch"] == archs[0])
    )
    # against themselves, a lone architecture always sits in the middle
    assert _lines(["accuracy", "rank", "hsconas-digits", archs[0], *DIGITS, "--json"], capsys)[0][
        "score"
    ] == pytest.approx(0.5)
    assert "0 or more" in _error(
        ["accuracy", "rank", "hsconas-digits", archs[0], *DIGITS, "--reference", "-1"], capsys
    )


@pytest.mark.slow  # decodes 2000 CIFAR-10 JPEGs on first use
def test_rank_nb201_on_cifar10_images(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _lines(
        ["accuracy", "rank", "nb201", NB201_CUT, f"nb201:{NB201_BEST}", "--method", "synflow",
         "--data", f"cifar10:{data_dir / 'images' / 'cifar10_jpg.tar.gz'}", "--json"],
        capsys,
    )  # fmt: skip
    assert [r["arch"] for r in rows] == [NB201_BEST, NB201_CUT]
    assert rows[0]["score"] > 0 and rows[1]["score"] == 0.0  # no path from input to output


def test_bad_inputs_are_one_line_errors(
    digits_archs: tuple[list[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archs, _ = digits_archs
    base = ["accuracy", "rank", "hsconas-digits"]
    err = _error(["accuracy", "rank", "nb201", "|nor_conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", *DIGITS], capsys)  # fmt: skip
    assert "nor_conv_9x9" in err
    assert "choose one of" in _error([*base, archs[0], *DIGITS, "--method", "zen"], capsys)
    missing = tmp_path / "nowhere.tar.gz"
    assert "not found" in _error([*base, archs[0], "--data", f"cifar10:{missing}"], capsys)
    assert "no architectures" in _error([*base, *DIGITS], capsys)
    assert "unknown torch device" in _error([*base, archs[0], *DIGITS, "--device", "tpu9"], capsys)
    assert "--supernet" in _error([*base, archs[0], *DIGITS, "--method", "supernet"], capsys)
    assert "not found" in _error([*base, archs[0], *DIGITS, "--archs-file", str(missing)], capsys)


def test_a_supernet_checkpoint_of_another_space_is_refused(
    digits_archs: tuple[list[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    threads = torch.get_num_threads()
    rc = main(
        ["supernet", "train", "hsconas-digits", "--data", "digits", "--subset", "300",
         "--val-fraction", "0.3", "--epochs", "1", "--batch-size", "64", "--out",
         str(tmp_path / "sn"), "--no-progress", "--json", "--threads", "1"]
    )  # fmt: skip
    torch.set_num_threads(threads)
    assert rc == 0
    archs, _ = digits_archs
    sn = ["--supernet", str(tmp_path / "sn"), "--calib-images", "64"]
    two = archs[:2]
    rows = _lines(["accuracy", "rank", "hsconas-digits", *two, *DIGITS, *sn, "--method", "supernet", "--json"], capsys)  # fmt: skip
    assert all(0.0 <= r["score"] <= 100.0 for r in rows)
    with_sn = _lines(["accuracy", "rank", "hsconas-digits", *two, *DIGITS, *sn, "--method", "params", "--json"], capsys)  # fmt: skip
    by_arch = {r["arch"]: r["score"] for r in rows}
    assert all(r["supernet_accuracy"] == by_arch[r["arch"]] for r in with_sn)
    nb = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    err = _error(["accuracy", "rank", "nb201", nb, *DIGITS, *sn, "--method", "supernet"], capsys)
    assert "hsconas-digits" in err and "nb201" in err
    assert np.isfinite([r["score"] for r in with_sn]).all()
