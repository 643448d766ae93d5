"""The remote:URL backend against a live agent: latency measure and profile through the CLI, the
agent's fingerprint in the results, the store filled as results arrive, token and URL errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import LiveAgent, live_agent
from torch import nn

from hsconas.cli.main import main
from hsconas.hardware.backends import get_backend
from hsconas.hardware.reference import Reference
from hsconas.hardware.remote import (
    AgentClient,
    RemoteAuthError,
    RemoteBackend,
    RemoteError,
    use_token_file,
)
from hsconas.hardware.timing import TimingConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = "nb201:|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(autouse=True)
def _forget_token_file() -> None:
    use_token_file(None)


def _measure_cli(agent: LiveAgent, store: Path, *extra: str) -> list[str]:
    return [
        "latency", "measure", ARCH, "--backend", f"remote:{agent.url}", "--json",
        "--max-time", "0.2", "--store", str(store), "--device", "agent-on-loopback", *extra,
    ]  # fmt: skip


def test_latency_measure_returns_the_agents_fingerprint_and_stores_it(
    agent: LiveAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "lat.db"
    argv = _measure_cli(agent, store, "--token-file", str(agent.token_file))
    served = agent.info()["counters"]["measurements_served"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    info = agent.info()
    assert doc["backend"] == "remote" and doc["median_ms"] > 0 and doc["n_runs"] >= 10
    fp = doc["fingerprint"]
    assert fp["remote"] == agent.url and fp["backend"] == "onnxruntime"
    for key in ("hostname", "cpu_model", "cpu_count", "onnxruntime", "os"):
        assert fp[key] == info["fingerprint"][key]
    assert info["counters"]["measurements_served"] == served + 1
    # the result went into the store: asked again, it comes from there, not from the agent
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["median_ms"] == doc["median_ms"]
    assert agent.info()["counters"]["measurements_served"] == served + 1


def test_a_wrong_token_is_one_line_and_exit_2(
    agent: LiveAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.token"
    bad.write_text("not-the-agents-token-at-all\n")
    refused = agent.info()["counters"]["requests_refused"]
    assert main(_measure_cli(agent, tmp_path / "s.db", "--token-file", str(bad))) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refused the token (wrong token)" in err
    assert agent.info()["counters"]["requests_refused"] >= refused + 1
    assert "(401): wrong token" in agent.log_text()


def test_token_from_the_environment(
    agent: LiveAgent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HSCONAS_DEVICE_TOKEN", str(agent.token))
    assert main(_measure_cli(agent, tmp_path / "env.db")) == 0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1", "http://", "http://127.0.0.1:1/path"])
def test_bad_agent_urls_are_one_line(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["latency", "measure", ARCH, "--backend", f"remote:{url}"]) == 2
    assert "bad agent URL" in capsys.readouterr().err


def test_an_unreachable_agent_is_retried_then_reported() -> None:
    client = AgentClient("http://127.0.0.1:9", None, timeout_s=2, retries=2, backoff_s=0.01)
    with pytest.raises(RemoteError, match="failed after 3 tries: ConnectError"):
        client.info()


def test_remote_backend_pairs_runs_with_a_reference_on_the_agent(agent: LiveAgent) -> None:
    ref = Reference("test:conv16", nn.Conv2d(3, 16, 3, padding=1).eval(), (3, 32, 32))
    be = get_backend(f"remote:{agent.url}", threads=1, reference=ref, token=agent.token)
    assert isinstance(be, RemoteBackend)
    quick = TimingConfig(max_time_s=0.2)
    calib = be.calibrate_reference(quick)
    assert ref.base_ms == calib.median_ms > 0
    big = nn.Conv2d(3, 128, 5, padding=2)
    paired = be.measure(big, (3, 32, 32), timing=quick)
    be.reference = None
    plain = be.measure(big, (3, 32, 32), timing=quick)
    assert 0.5 < paired.median_ms / plain.median_ms < 2.0  # the same milliseconds, drift-free
    settings = be.settings()
    assert settings["runtime"] == "onnxruntime" and settings["threads"] == 1
    assert settings["agent"] == f"{agent.info()['fingerprint']['hostname']}/" + str(
        agent.info()["fingerprint"]["cpu_model"]
    )


@pytest.mark.slow  # 25-30 s on the loaded 2-core machine (4 networks, about 20 blocks)
def test_latency_profile_through_the_agent_builds_a_model(
    agent: LiveAgent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from hsconas.latency.hsconas import lut
    from hsconas.latency.hsconas.model import HSCoNASModel

    real = lut.collect_blocks

    def e2e_blocks(space: Any, *, seed: int = 0, **kw: Any) -> Any:
        # only the blocks of the 4 networks the profile times end to end (sampled with seed + 1)
        # and of the 3 that `latency eval` samples (seed 12345), not NB201's 5675 blocks
        few = {**kw, "max_samples": 4, "patience": 4}
        return {**real(space, seed=seed + 1, **few), **real(space, seed=12345, **few)}

    monkeypatch.setattr(lut, "collect_blocks", e2e_blocks)
    out, store = tmp_path / "m.json", tmp_path / "p.db"
    argv = [
        "latency", "profile", "nb201", "--backend", f"remote:{agent.url}", "--token-file",
        str(agent.token_file), "--samples", "4", "--max-time", "0.05", "--no-reference",
        "--out", str(out), "--store", str(store), "--device", "agent-on-loopback",
    ]  # fmt: skip
    received = agent.info()["counters"]["models_received"]
    assert main(argv) == 0, capsys.readouterr().err
    model = HSCoNASModel.load(out)
    assert model.backend == "remote" and len(model.lut) > 0
    assert model.info["fingerprint"]["remote"] == agent.url
    first = agent.info()["counters"]
    assert first["models_received"] > received
    # a rerun (as after a broken connection) takes everything from the store
    assert main(argv) == 0
    assert agent.info()["counters"]["measurements_served"] == first["measurements_served"]
    capsys.readouterr()
    # evaluated on fresh networks through the same agent
    ev = ["latency", "eval", str(out), "--n", "3", "--max-time", "0.05", "--device",
          "agent-on-loopback", "--json"]  # fmt: skip
    assert main(ev) == 2
    assert "name the agent with --backend remote:" in capsys.readouterr().err
    remote = ["--backend", f"remote:{agent.url}", "--token-file", str(agent.token_file)]
    assert main([*ev, *remote]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["backend"] == "remote" and doc["n"] == 3 and "HSCoNAS" in doc["metrics"]


def test_models_the_agent_lost_are_sent_again(agent: LiveAgent) -> None:
    ref = Reference("test:conv8", nn.Conv2d(3, 8, 3, padding=1).eval(), (3, 32, 32))
    be = get_backend(f"remote:{agent.url}", threads=1, reference=ref, token=agent.token)
    quick = TimingConfig(max_time_s=0.1)
    be.calibrate_reference(quick)
    net = nn.Conv2d(3, 64, 3, padding=1)
    assert be.measure(net, (3, 32, 32), timing=quick).median_ms > 0
    received = agent.info()["counters"]["models_received"]
    for f in (agent.log.parent / "cache").glob("*.*"):  # the agent restarted with an empty cache
        f.unlink()
    assert be.measure(net, (3, 32, 32), timing=quick).median_ms > 0
    assert agent.info()["counters"]["models_received"] == received + 2  # network and reference


@pytest.mark.slow  # 15-20 s on the loaded 2-core machine (an agent with TLS starts)
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_agent_needs_its_certificate_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout",
         str(key), "-out", str(cert), "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    with live_agent(tmp_path / "a", "--tls-cert", str(cert), "--tls-key", str(key)) as a:
        assert a.url.startswith("https://127.0.0.1:")
        monkeypatch.delenv("HSCONAS_DEVICE_CA", raising=False)
        with pytest.raises(RemoteError, match=r"not trusted.*HSCONAS_DEVICE_CA"):
            AgentClient(a.url, a.token, retries=4).info()
        monkeypatch.setenv("HSCONAS_DEVICE_CA", str(cert))
        info = AgentClient(a.url, a.token).info()
        assert info["counters"]["requests_refused"] == 0 and info["fingerprint"]["cpu_model"]
        with pytest.raises(RemoteAuthError):
            AgentClient(a.url, "x" * 32).info()
