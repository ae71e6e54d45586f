"""deploy/agent (issue 17): the systemd unit and the settings file of a Linux venue PC say what
the real agent reads. The unit's command parses with the agent's own parser, its data directory
is the one systemd makes for it, every variable of the settings file is one the agent knows,
and the agent's configuration loads from them (with a private token file)."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

from venue_agent.__main__ import _flags, _parser
from venue_agent.config import AgentConfig

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "deploy" / "agent"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys keep case
    unit.read_string((AGENT / "hetang-agent.service").read_text("utf-8"))
    return unit


def _settings() -> dict[str, str]:
    """The settings file's variables, those commented out included."""
    text = (AGENT / "agent.env").read_text("utf-8")
    return dict(re.findall(r"^#?(HETANG_[A-Z_]+)=(.*)$", text, re.MULTILINE))


def test_the_unit_runs_the_agent_with_its_token_file_and_state_directory() -> None:
    service = _unit()["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[0].endswith("/.venv-agent/bin/hetang-agent")
    args = _parser().parse_args(command[1:])
    assert args.command == "run"
    assert args.token is None  # never on the command line, where ps shows it
    assert args.token_file == "/etc/hetang-agent/token"
    assert args.data_dir == "/var/lib/" + service["StateDirectory"]
    assert service["StateDirectoryMode"] == "0700"
    assert service["Restart"] == "always"
    assert service["User"] != "root"
    assert service["EnvironmentFile"].lstrip("-") == "/etc/hetang-agent/agent.env"


def test_every_setting_is_one_the_agent_reads() -> None:
    read = set(
        re.findall(r"HETANG_AGENT_[A-Z_]+", (ROOT / "venue_agent" / "config.py").read_text())
    )
    assert set(_settings()) <= read
    guide = (AGENT / "INSTALL-linux.md").read_text("utf-8")
    assert "hetang-agent.service" in guide and "/etc/hetang-agent/token" in guide


def test_the_agent_loads_its_configuration_from_them(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("hv_" + "t" * 40 + "\n")
    token.chmod(0o600)
    command = shlex.split(_unit()["Service"]["ExecStart"])
    args = _parser().parse_args(command[1:])
    flags = {**_flags(args), "--token-file": str(token), "--data-dir": str(tmp_path / "state")}
    environ = {**_settings(), "HETANG_AGENT_SCANNER": "stdin"}  # no scanner device here
    config = AgentConfig.load(flags, environ)
    assert config.server.url == _settings()["HETANG_AGENT_SERVER"]
    assert config.ui_port == int(_settings()["HETANG_AGENT_UI_PORT"])
    assert config.data_dir == tmp_path / "state"
