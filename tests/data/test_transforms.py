"""The transforms reproduce torchvision's documented semantics (and match it where it imports)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from hsconas.data import transforms as T


def _image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


def test_random_resized_crop_draws_area_and_ratio_in_range() -> None:
    img = _image(200, 100)
    torch.manual_seed(0)
    areas, ratios = [], []
    for _ in range(2000):
        i, j, h, w = T.RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
        assert i >= 0 and i + h <= 100 and j >= 0 and j + w <= 200
        areas.append(h * w / (200 * 100))
        ratios.append(w / h)
    # area share within the range (up to pixel rounding), aspect within 3/4..4/3 (rounding)
    assert min(areas) > 0.07 and max(areas) <= 1.0
    assert min(ratios) > 0.7 and max(ratios) < 1.4
    # log-uniform ratio: about as many wide crops as tall ones
    wide = np.mean(np.asarray(ratios) > 1.0)
    assert 0.4 < wide < 0.6
    out = T.RandomResizedCrop(32)(img)
    assert out.size == (32, 32)


def test_random_resized_crop_falls_back_to_the_clamped_central_crop() -> None:
    # scale above 1 can never fit: after 10 tries the central crop, ratio clamped to 4/3
    wide = _image(100, 20)
    assert T.RandomResizedCrop.get_params(wide, (5.0, 6.0), (3 / 4, 4 / 3)) == (0, 36, 20, 27)
    tall = _image(20, 100)
    assert T.RandomResizedCrop.get_params(tall, (5.0, 6.0), (3 / 4, 4 / 3)) == (36, 0, 27, 20)
    square = _image(50, 50)
    assert T.RandomResizedCrop.get_params(square, (5.0, 6.0), (3 / 4, 4 / 3)) == (0, 0, 50, 50)


def test_flip_resize_center_crop_and_tensor() -> None:
    img = _image(64, 48)
    arr = np.asarray(img)
    np.testing.assert_array_equal(np.asarray(T.RandomHorizontalFlip(p=1.0)(img)), arr[:, ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(img) is img
    torch.manual_seed(0)
    flips = sum(T.RandomHorizontalFlip()(img) is not img for _ in range(400))
    assert 150 < flips < 250
    # shorter side to 32, the longer int(32 * 64 / 48) = 42
    assert T.Resize(32)(img).size == (42, 32)
    assert T.Resize(32)(_image(48, 64)).size == (32, 42)
    # centre crop of 64x48 to 32: offsets round((48-32)/2)=8, round((64-32)/2)=16
    np.testing.assert_array_equal(np.asarray(T.CenterCrop(32)(img)), arr[8:40, 16:48])
    padded = np.asarray(T.CenterCrop(52)(img))  # taller than the image: zero rows top and bottom
    assert padded.shape == (52, 52, 3) and padded[:2].max() == 0 and padded[-2:].max() == 0
    x = T.ToTensor()(img)
    assert x.shape == (3, 48, 64) and x.dtype == torch.float32
    assert torch.allclose(x[:, 5, 7] * 255, torch.tensor(arr[5, 7], dtype=torch.float32))
    n = T.Normalize((0.5, 0.25, 0.0), (0.5, 0.25, 1.0))(x)
    assert torch.allclose(n[0], (x[0] - 0.5) / 0.5) and torch.allclose(n[2], x[2])


def test_random_crop_with_padding_is_a_shift() -> None:
    img = _image(32, 32)
    arr = np.asarray(img)
    torch.manual_seed(1)
    for _ in range(20):
        out = np.asarray(T.RandomCrop(32, padding=4)(img))
        padded = np.zeros((40, 40, 3), np.uint8)
        padded[4:36, 4:36] = arr
        hits = [
            (i, j)
            for i in range(9)
            for j in range(9)
            if np.array_equal(padded[i : i + 32, j : j + 32], out)
        ]
        assert hits


def test_pipelines_by_resolution() -> None:
    img = _image(300, 200)
    tr = T.train_transform(64, (0.5,) * 3, (0.25,) * 3, use_torchvision=False)
    ev = T.eval_transform(64, (0.5,) * 3, (0.25,) * 3, use_torchvision=False)
    assert tr(img).shape == (3, 64, 64) and ev(img).shape == (3, 64, 64)
    # evaluation: resize the shorter side to floor(64 / 0.875) = 73, then the centre 64
    ref = T.CenterCrop(64)(T.Resize(73)(img))
    expect = (torch.from_numpy(np.asarray(ref).transpose(2, 0, 1).copy()) / 255 - 0.5) / 0.25
    assert torch.allclose(ev(img), expect)
    assert torch.equal(ev(img), ev(img))  # deterministic
    with pytest.raises(ValueError, match="crop"):
        T.train_transform(32, (0.5,) * 3, (0.25,) * 3, crop="bogus")


@pytest.mark.skipif(not T.torchvision_available(), reason="torchvision does not import here")
def test_same_output_as_torchvision() -> None:
    img = _image(120, 90)
    for size in (32, 64):
        for build in (T.train_transform, T.eval_transform):
            ours = build(size, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3), use_torchvision=False)
            theirs = build(size, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3), use_torchvision=True)
            torch.manual_seed(3)
            a = ours(img)
            torch.manual_seed(3)
            b = theirs(img)
            assert math.isclose(float((a - b).abs().max()), 0.0, abs_tol=2 / 255 / 0.2)
