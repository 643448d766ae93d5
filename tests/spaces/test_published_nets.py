"""Published OFA and ProxylessNAS networks: import, build, params/MACs, export round trip."""

from __future__ import annotations

import copy
import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsconas.errors import ConfigImportError, DataFormatError, DataNotFoundError
from hsconas.nn import build_model
from hsconas.nn.blocks import make_divisible
from hsconas.nn.counting import count_macs, count_params
from hsconas.space import get_space
from hsconas.spaces.published import (
    ImportedNet,
    export_net_config,
    import_net_config,
    load_net_configs,
)

OFA_JSONL = Path("ofa_mbv3") / "ofa_specialized_net_configs.jsonl"
OFA_CSV = Path("ofa_mbv3") / "ofa_specialized_subnets.csv"
PROXYLESS = ("mobile", "mobile_14", "cpu", "gpu")


def _ofa_net_ids() -> list[str]:
    root = Path(__file__).resolve().parents[2]
    path = Path(os.environ.get("HSCONAS_DATA_DIR", root / ".." / "shared" / "data")) / OFA_JSONL
    if not path.is_file():
        return ["<data missing>"]  # the data_dir fixture skips with the reason
    return [json.loads(line)["net_id"] for line in path.read_text().splitlines() if line.strip()]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ofa_nets(data_dir: Path) -> dict[str, tuple[ImportedNet, dict[str, Any]]]:
    """net_id -> (imported net, published net_config)."""
    path = data_dir / OFA_JSONL
    configs = {
        d["net_id"]: d["net_config"]
        for d in (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    }
    return {name: (imp, configs[name]) for name, imp in load_net_configs(path)}


@pytest.fixture(scope="module")
def ofa_published(data_dir: Path) -> dict[str, dict[str, str]]:
    with (data_dir / OFA_CSV).open() as f:
        return {row["net_id"]: row for row in csv.DictReader(f)}


def _millions(text: str) -> float:
    assert text.endswith("M"), text
    return float(text[:-1])


# One OFA subnet's README figure is off our count by 4.0% (75.8M counted vs 79M listed) while its
# parameters match (3.76M vs 3.8M); at 160 px every feature map divides evenly, the block list is
# unremarkable, and the 49 others agree within 1%. We keep a wider, explicit tolerance for it.
MAC_TOLERANCE = {"note10_lat-8ms_top1-71.4_finetune-25": 0.05}


@pytest.mark.parametrize("net_id", _ofa_net_ids())
def test_ofa_subnet_params_and_macs_match_published(
    net_id: str,
    ofa_nets: dict[str, tuple[ImportedNet, dict[str, Any]]],
    ofa_published: dict[str, dict[str, str]],
) -> None:
    imported, _ = ofa_nets[net_id]
    row = ofa_published[net_id]
    assert imported.image_size == int(row["image_size"])
    space = get_space(imported.arch.space)
    assert space.macro.family == row["family"]  # type: ignore[attr-defined]
    model = build_model(imported.arch)
    params_m = count_params(model) / 1e6
    macs_m = count_macs(model, imported.input_shape) / 1e6
    assert abs(params_m - _millions(row["params"])) <= 0.1, (params_m, row["params"])
    tol = MAC_TOLERANCE.get(net_id, 0.02)
    assert abs(macs_m / _millions(row["macs"]) - 1) <= tol, (macs_m, row["macs"])


def test_ofa_subnets_cover_all_three_elastic_spaces(
    ofa_nets: dict[str, tuple[ImportedNet, dict[str, Any]]],
) -> None:
    spaces = [imp.arch.space for imp, _ in ofa_nets.values()]
    assert len(spaces) == 50
    assert {s: spaces.count(s) for s in set(spaces)} == {
        "ofa-mbv3": 24,
        "ofa-mbv3-w1.2": 10,
        "proxylessnas": 16,
    }


def test_out_of_range_image_size_keeps_published_size(
    ofa_nets: dict[str, tuple[ImportedNet, dict[str, Any]]],
) -> None:
    big = [imp for imp, _ in ofa_nets.values() if imp.image_size > 224]
    assert sorted({imp.image_size for imp in big}) == [228, 236, 240, 260]
    for imp in big:
        space = get_space(imp.arch.space)
        assert space.input_shape(imp.arch) == (3, 224, 224)  # nearest choice
        assert imp.input_shape == (3, imp.image_size, imp.image_size)
    inside = [imp for imp, _ in ofa_nets.values() if imp.image_size <= 224]
    for imp in inside:
        assert get_space(imp.arch.space).input_shape(imp.arch) == imp.input_shape


def test_export_reproduces_every_published_ofa_config(
    ofa_nets: dict[str, tuple[ImportedNet, dict[str, Any]]],
) -> None:
    for name, (imp, published) in ofa_nets.items():
        assert export_net_config(imp.arch) == published, name
        wrapped = export_net_config(imp.arch, image_size=imp.image_size)
        assert wrapped == {"image_size": imp.image_size, "net_config": published}
        assert import_net_config(wrapped) == imp
        assert import_net_config(published, image_size=imp.image_size) == imp


# ---------------------------------------------------------------------- original ProxylessNAS

# Parameters: exact counts of an independent PyTorch/Gluon reimplementation that loads the
# authors' released weights (osmr/imgclsmob README, ImageNet-1K table: ProxylessNAS CPU 4,361,648;
# GPU 7,119,848; Mobile 4,080,512; Mob-14 6,857,568). Those also round to the 4.1M (mobile) and
# 7.1M (GPU) figures usually quoted for the paper's models.
# MACs: mobile 320M is the authors' figure (Cai et al., "Once-for-All", ICLR 2020, Table 1:
# ProxylessNAS 74.6% top-1, 320M MACs); GPU 465M is the figure quoted for ProxylessNAS-GPU in
# later comparison tables (e.g. MathNAS, citing Cai et al. 2019). For cpu and mobile_14 we did not
# find an authors' MAC figure; their values below are our own counts (439.2M, 580.9M), pinned as
# regression values, not as published numbers.
PROXYLESS_EXPECTED = {
    "mobile": ("proxylessnas-mobile", 4_080_512, 320.0),
    "mobile_14": ("proxylessnas-mobile14", 6_857_568, 580.9),
    "cpu": ("proxylessnas-cpu", 4_361_648, 439.2),
    "gpu": ("proxylessnas-gpu", 7_119_848, 465.0),
}


@pytest.mark.parametrize("net", PROXYLESS)
def test_proxylessnas_published_nets(net: str, data_dir: Path) -> None:
    path = data_dir / "proxylessnas" / f"proxyless_{net}.config"
    [(name, imp)] = load_net_configs(path)
    assert name == f"proxyless_{net}"
    space_name, params, macs_m = PROXYLESS_EXPECTED[net]
    assert imp.arch.space == space_name and imp.image_size == 224
    model = build_model(imp.arch)
    assert count_params(model) == params
    assert abs(count_params(model) / 1e6 - round(params / 1e6, 1)) <= 0.1
    assert abs(count_macs(model, imp.input_shape) / 1e6 / macs_m - 1) <= 0.02
    published = json.loads(path.read_text())
    assert export_net_config(imp.arch) == published
    assert import_net_config(export_net_config(imp.arch)) == imp


def test_proxylessnas_gpu_architecture_string(data_dir: Path) -> None:
    [(_, imp)] = load_net_configs(data_dir / "proxylessnas" / "proxyless_gpu.config")
    assert str(imp.arch) == (
        "k5e3-skip-skip-skip|k7e3-skip-skip-k3e3|k7e6-skip-skip-k5e3|k5e6-skip-k3e3-k5e3|"
        "k7e6-k7e6-k7e6-k5e6|k7e6"
    )


# ---------------------------------------------------------------------- sampled architectures


def _params_from_net_config(cfg: Mapping[str, Any]) -> int:
    """Parameter count computed from the JSON alone (independent of the builder)."""

    def conv(layer: Mapping[str, Any], k: int | None = None) -> int:
        cin, cout = layer["in_channels"], layer["out_channels"]
        kk = layer["kernel_size"] if k is None else k
        return cin * cout * kk * kk + (2 * cout if layer["use_bn"] else 0)

    total = conv(cfg["first_conv"])
    for block in cfg["blocks"]:
        m = block["mobile_inverted_conv"]
        if m["name"] == "ZeroLayer":
            continue
        cin, cout, k, e = m["in_channels"], m["out_channels"], m["kernel_size"], m["expand_ratio"]
        mid = m.get("mid_channels") or (cin if e == 1 else round(cin * e))
        if e != 1:
            total += cin * mid + 2 * mid
        total += mid * k * k + 2 * mid
        if m.get("use_se"):
            se = make_divisible(mid // 4, 8)
            total += 2 * mid * se + se + mid
        total += mid * cout + 2 * cout
    if "final_expand_layer" in cfg:
        total += conv(cfg["final_expand_layer"])
    total += conv(cfg["feature_mix_layer"])
    cls = cfg["classifier"]
    return int(total + cls["in_features"] * cls["out_features"] + cls["out_features"])


@pytest.mark.parametrize(
    "space_name",
    ["ofa-mbv3", "ofa-mbv3-w1.2", "proxylessnas", "proxylessnas-mobile", "proxylessnas-cpu"],
)
def test_sampled_architectures_round_trip_and_build_identically(space_name: str) -> None:
    space = get_space(space_name)
    for arch in space.sample_many(4, np.random.default_rng(5)):
        r = space.input_shape(arch)[1]
        cfg = export_net_config(arch)
        json.loads(json.dumps(cfg))  # JSON-serialisable
        assert import_net_config(cfg, image_size=r) == ImportedNet(arch, r)
        assert import_net_config(export_net_config(arch, image_size=r)).arch == arch
        params = count_params(build_model(arch))
        assert _params_from_net_config(cfg) == params
        assert count_params(build_model(import_net_config(cfg, image_size=r).arch)) == params


def test_num_classes_travels_through_the_config() -> None:
    arch = get_space("ofa-mbv3").sample(1)
    imp = import_net_config(export_net_config(arch, num_classes=10), image_size=160)
    assert imp.num_classes == 10 and imp.image_size == 160


# ---------------------------------------------------------------------- errors


def _ofa_config(seed: int = 0) -> dict[str, Any]:
    return export_net_config(get_space("ofa-mbv3").sample(seed))


def test_import_error_names_block_and_allowed_kernels() -> None:
    cfg = _ofa_config()
    bad = copy.deepcopy(cfg)
    bad["blocks"][3]["mobile_inverted_conv"]["kernel_size"] = 9
    with pytest.raises(ConfigImportError, match=r"block 3 .*kernel 9.*3, 5, 7"):
        import_net_config(bad)
    bad = copy.deepcopy(cfg)
    bad["blocks"][2]["mobile_inverted_conv"]["use_se"] = True
    with pytest.raises(ConfigImportError, match="block 2 use_se"):
        import_net_config(bad)
    bad = copy.deepcopy(cfg)
    bad["name"] = "ResNets"
    with pytest.raises(ConfigImportError, match="unknown network family 'ResNets'"):
        import_net_config(bad)
    bad = copy.deepcopy(cfg)
    bad["blocks"] = bad["blocks"][:-1]
    bad["blocks"] = [b for i, b in enumerate(bad["blocks"]) if i not in (1, 2)]  # unit 1 gone
    with pytest.raises(ConfigImportError, match="block 1"):
        import_net_config(bad)
    bad = copy.deepcopy(cfg)
    bad["feature_mix_layer"]["out_channels"] = 1024
    with pytest.raises(ConfigImportError, match="feature_mix_layer width is 1024"):
        import_net_config(bad)
    with pytest.raises(ConfigImportError, match="image_size"):
        import_net_config(cfg, image_size=0)


def test_import_error_for_too_deep_unit() -> None:
    space = get_space("ofa-mbv3")
    arch = space.from_string("r224|k3e3-k3e3-k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3")
    cfg = export_net_config(arch)
    extra = copy.deepcopy(cfg["blocks"][4])
    cfg["blocks"].insert(5, extra)
    with pytest.raises(ConfigImportError, match="at most 4 layers"):
        import_net_config(cfg)


def test_zero_layer_in_first_slot_is_rejected() -> None:
    cfg = export_net_config(get_space("proxylessnas-gpu").sample(0))
    cfg["blocks"][1] = {
        "name": "MobileInvertedResidualBlock",
        "mobile_inverted_conv": {"name": "ZeroLayer", "stride": 1},
        "shortcut": None,
    }
    with pytest.raises(ConfigImportError, match=r"ZeroLayer.*cannot be skipped"):
        import_net_config(cfg)


def test_load_net_configs_errors_and_forms(tmp_path: Path) -> None:
    missing = tmp_path / "nope.config"
    with pytest.raises(DataNotFoundError, match=r"nope\.config"):
        load_net_configs(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DataFormatError, match=r"broken\.json"):
        load_net_configs(broken)
    other = tmp_path / "other.json"
    other.write_text('{"foo": 1}')
    with pytest.raises(DataFormatError, match=r"other\.json"):
        load_net_configs(other)
    arch = get_space("ofa-mbv3").sample(2)
    wrapped = tmp_path / "mine.json"
    wrapped.write_text(json.dumps(export_net_config(arch, image_size=236)))
    [(name, imp)] = load_net_configs(wrapped)
    assert name == "mine" and imp.image_size == 236
    lines = tmp_path / "two.jsonl"
    docs = [
        {"net_id": f"n{i}", "image_size": 160 + 4 * i, "net_config": _ofa_config(i)}
        for i in range(2)
    ]
    lines.write_text("\n".join(json.dumps(d) for d in docs) + "\n\n")
    loaded = load_net_configs(lines)
    assert [n for n, _ in loaded] == ["n0", "n1"]
    assert [imp.image_size for _, imp in loaded] == [160, 164]
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text(json.dumps(docs[0]) + "\n[1, 2]\n")
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2"):
        load_net_configs(bad_line)
    cfg = _ofa_config()
    cfg["blocks"][3]["mobile_inverted_conv"]["kernel_size"] = 9
    unfit = tmp_path / "unfit.config"
    unfit.write_text(json.dumps(cfg))
    with pytest.raises(ConfigImportError, match=r"unfit.config.*block 3"):
        load_net_configs(unfit)
