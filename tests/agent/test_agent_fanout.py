"""``--executor ray``: measurements spread over two live agents on loopback and over Ray nodes with a
custom resource, on a local Ray instance started by this module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import LiveAgent, live_agent

from hsconas.cli.main import main
from hsconas.hardware.remote import use_token_file
from hsconas.store import ResultStore

ray = pytest.importorskip("ray")

# one worker of `make test` (-n 2 --dist loadgroup) runs the module: one Ray instance, two agents
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.xdist_group("ray-fanout")]

ARCHS = [
    "nb201:|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "nb201:|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|",
    "nb201:|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|",
    "nb201:|skip_connect~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|",
]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """A local Ray instance (2 CPUs, one unit of the custom resource ``device:test``)."""
    ray.init(num_cpus=2, resources={"device:test": 1}, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


TOKEN = "shared-t0k3n-of-both-boards-0123456789abcdef"

_OTHER_CPU = """
import importlib.util
import sys


class _OtherBoard:
    # another CPU model in the fingerprint: a board of a different kind
    def find_spec(self, name, path=None, target=None):
        if name != "hsconas.hardware.fingerprint":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.cpu_model = lambda: "Other Board CPU @ 1.5GHz"

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _OtherBoard())
"""


@pytest.fixture(scope="module")
def agents(
    tmp_path_factory: pytest.TempPathFactory, ray_local: Any
) -> Iterator[tuple[LiveAgent, LiveAgent]]:
    """Two agents with one token: two units of the same device, as two boards set up alike."""
    base = tmp_path_factory.mktemp("fanout")
    with (
        live_agent(base / "a1", token_text=TOKEN) as a1,
        live_agent(base / "a2", token_text=TOKEN) as a2,
    ):
        yield a1, a2


@pytest.fixture(autouse=True)
def _forget_token_file() -> None:
    use_token_file(None)


def _served(agent: LiveAgent) -> int:
    return int(agent.info()["counters"]["measurements_served"])


def _keys(db: Path, kind: str | None = None) -> set[tuple[str, str, str]]:
    store = ResultStore(db)
    try:
        return {(m.space, m.kind, m.key) for m in store.measurements(kind=kind)}
    finally:
        store.close()


def test_measure_spreads_networks_over_both_agents_and_resumes_from_the_store(
    agents: tuple[LiveAgent, LiveAgent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a1, a2 = agents
    archs = tmp_path / "archs.jsonl"
    assert main(["spaces", "sample", "nb201", "-n", "4", "--seed", "3", "--json"]) == 0
    archs.write_text(capsys.readouterr().out)
    db = tmp_path / "m.db"
    argv = [
        "latency", "measure", str(archs), "--backend", f"remote:{a1.url}", "--backend",
        f"remote:{a2.url}", "--executor", "ray", "--token-file", str(a1.token_file), "--json",
        "--max-time", "0.05", "--reference", "--store", str(db), "--device", "two-boards",
    ]  # fmt: skip
    before = _served(a1), _served(a2)
    assert main(argv) == 0, capsys.readouterr().err
    docs = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(docs) == 4
    assert all(d["backend"] == "remote" and d["median_ms"] > 0 for d in docs)
    units = {d["fingerprint"]["remote"] for d in docs}
    assert units == {a1.url, a2.url}  # both agents timed networks
    after = _served(a1), _served(a2)
    assert after[0] > before[0] and after[1] > before[1]
    # one reference calibration (on one agent), every network stored with the pool's settings
    store = ResultStore(db)
    refs = store.measurements(kind="reference")
    nets = store.measurements(kind="network")
    store.close()
    assert len(refs) == 1 and len(nets) == 4
    assert {m.extra["unit"] for m in nets} == {f"remote:{a1.url}", f"remote:{a2.url}"}
    assert len({json.dumps(m.settings["agent"]) for m in nets}) == 1
    assert all(m.settings["agent"].startswith("*/") for m in nets)
    # a rerun (as after an interruption) takes every network from the store
    assert main(argv) == 0
    assert (_served(a1), _served(a2)) == after


@pytest.fixture
def few_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiles collect only the blocks of the networks they time end to end (sampled with seed
    + 1), not NB201's 5675 blocks."""
    from hsconas.latency.hsconas import lut

    real = lut.collect_blocks

    def e2e_blocks(space: Any, *, seed: int = 0, **kw: Any) -> Any:
        return real(space, seed=seed + 1, **{**kw, "max_samples": 3, "patience": 3})

    monkeypatch.setattr(lut, "collect_blocks", e2e_blocks)


def _profile_argv(
    db: Path, out: Path, token_file: Path | None, *backends: str, executor: str
) -> list[str]:
    argv = ["latency", "profile", "nb201", "--samples", "3", "--max-time", "0.03",
            "--no-reference", "--token-file", str(token_file), "--out", str(out),
            "--store", str(db), "--device", "two-boards", "--executor", executor]  # fmt: skip
    for b in backends:
        argv += ["--backend", b]
    return argv


@pytest.mark.usefixtures("few_blocks")
def test_profile_through_two_agents_builds_one_model_from_both(
    agents: tuple[LiveAgent, LiveAgent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hsconas.latency.hsconas.model import HSCoNASModel

    a1, a2 = agents
    before = _served(a1), _served(a2)
    db, out = tmp_path / "ray.db", tmp_path / "ray.json"
    pool = f"remote:{a1.url}", f"remote:{a2.url}"
    assert main(_profile_argv(db, out, a1.token_file, *pool, executor="ray")) == 0, (
        capsys.readouterr().err
    )
    model = HSCoNASModel.load(out)
    assert model.backend == "remote" and model.lut.settings["agent"].startswith("*/")
    assert model.info["fingerprint"]["units"] == list(pool)
    after = _served(a1), _served(a2)
    assert after[0] > before[0] and after[1] > before[1]  # both agents' counters show work
    assert sum(after) - sum(before) == len(_keys(db))  # each block and network timed once
    assert len(model.lut) == len(_keys(db, "block")) > 0 and len(_keys(db, "network")) == 3


@pytest.mark.slow  # 30-40 s on the loaded 2-core machine (two profiles)
@pytest.mark.usefixtures("few_blocks")
def test_profile_through_two_agents_measures_the_keys_of_a_local_profile(
    agents: tuple[LiveAgent, LiveAgent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a1, a2 = agents
    ray_db, local_db = tmp_path / "ray.db", tmp_path / "local.db"
    pool = f"remote:{a1.url}", f"remote:{a2.url}"
    argv = _profile_argv(ray_db, tmp_path / "ray.json", a1.token_file, *pool, executor="ray")
    assert main(argv) == 0, capsys.readouterr().err
    # the local executor, on one agent, measures the same blocks and networks
    argv = _profile_argv(local_db, tmp_path / "l.json", a1.token_file, pool[0], executor="local")
    assert main(argv) == 0, capsys.readouterr().err
    ray_keys = _keys(ray_db)
    assert ray_keys == _keys(local_db)
    assert {k for k in ray_keys if k[1] == "network"} and {k for k in ray_keys if k[1] == "block"}


def test_agents_of_different_cpus_are_refused(
    agents: tuple[LiveAgent, LiveAgent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a1, _ = agents
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_OTHER_CPU)
    with live_agent(
        tmp_path / "other", token_text=TOKEN, env_extra={"PYTHONPATH": str(site)}
    ) as other:
        assert other.info()["fingerprint"]["cpu_model"] == "Other Board CPU @ 1.5GHz"
        argv = [
            "latency", "measure", ARCHS[0], "--backend", f"remote:{a1.url}", "--backend",
            f"remote:{other.url}", "--executor", "ray", "--token-file", str(a1.token_file),
        ]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "different devices" in err and "Other Board CPU" in err
        assert other.info()["counters"]["measurements_served"] == 0


def test_a_wrong_token_through_ray_is_one_line(
    agents: tuple[LiveAgent, LiveAgent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a1, a2 = agents
    bad = tmp_path / "bad.token"
    bad.write_text("not-the-token-of-these-boards-at-all\n")
    argv = [
        "latency", "measure", ARCHS[0], "--backend", f"remote:{a1.url}", "--backend",
        f"remote:{a2.url}", "--executor", "ray", "--token-file", str(bad),
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refused the token (wrong token)" in err


def test_ray_nodes_with_a_custom_resource_measure_with_their_local_backend(
    ray_local: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "nodes.db"
    argv = [
        "latency", "measure", ARCHS[1], "--backend", "ray:device:test:onnxruntime", "--executor",
        "ray", "--json", "--max-time", "0.05", "--store", str(db), "--device", "test-node",
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["backend"] == "onnxruntime" and doc["median_ms"] > 0
    assert doc["fingerprint"]["backend"] == "onnxruntime" and "remote" not in doc["fingerprint"]
    (m,) = ResultStore(db).measurements(kind="network")
    assert m.extra["unit"] == "ray:device:test:onnxruntime"
    # a resource no node offers is one line naming `ray start --resources`
    argv[4] = "ray:device:pi5:onnxruntime"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ray start" in err and "device:pi5" in err
