"""Agent startup: no token no service, loopback and TLS rules, token files; one line and exit 2."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hsconas.agent.server import (
    AgentStartupError,
    TokenFileError,
    is_loopback,
    read_token_file,
    startup_token,
    write_token_file,
)
from hsconas.cli.main import main


def test_token_file_is_written_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "t" / "agent.token"
    token = write_token_file(path)
    assert len(token) >= 40 and read_token_file(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(TokenFileError, match="exists"):
        write_token_file(path)
    assert write_token_file(path, force=True) != token


@pytest.mark.parametrize(
    ("text", "reason"),
    [("short", "at least 16"), ("two words here and there", "without spaces"), ("", "0 char")],
)
def test_unusable_token_files_are_refused(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "tok"
    path.write_text(text)
    with pytest.raises(TokenFileError, match=reason):
        read_token_file(path)
    with pytest.raises(TokenFileError, match="cannot read"):
        read_token_file(tmp_path / "missing")


def test_startup_rules(tmp_path: Path) -> None:
    tok = tmp_path / "tok"
    write_token_file(tok)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    with pytest.raises(AgentStartupError, match="needs --token-file"):
        startup_token("127.0.0.1", None)
    assert startup_token("127.0.0.1", None, insecure_loopback=True) is None
    with pytest.raises(AgentStartupError, match="loopback address only"):
        startup_token("0.0.0.0", None, insecure_loopback=True)
    with pytest.raises(AgentStartupError, match="without TLS"):
        startup_token("0.0.0.0", tok)
    assert startup_token("0.0.0.0", tok, tls=True) == read_token_file(tok)
    assert startup_token("0.0.0.0", tok, allow_plain_http=True) == read_token_file(tok)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "needs --token-file"),
        (["--insecure-loopback", "--host", "0.0.0.0"], "loopback address only"),
        (["--token-file", "TOK", "--host", "0.0.0.0"], "without TLS"),
        (["--token-file", "TOK", "--tls-cert", "c.pem"], "go together"),
        (["--token-file", "MISSING"], "cannot read token file"),
    ],
    ids=["no-token", "insecure-off-loopback", "plain-off-loopback", "half-tls", "missing-token"],
)
def test_serve_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    tok = tmp_path / "tok"
    write_token_file(tok)
    argv = [a.replace("TOK", str(tok)).replace("MISSING", str(tmp_path / "nope")) for a in args]
    rc = main(["device", "serve", "--port", "0", "--cache-dir", str(tmp_path / "c"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1


def test_device_token_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.token"
    assert main(["device", "token", "--out", str(out)]) == 0
    assert len(read_token_file(out)) >= 40
    assert main(["device", "token", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
