"""docker-compose.yml (no Docker engine runs here): its services, ports and variables agree with
the settings the server really reads."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from server.cli.parser import build_parser
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return data


def _known_variables() -> set[str]:
    sources = (ROOT / "server" / "settings.py", ROOT / "server" / "domain" / "media.py")
    return {name for path in sources for name in re.findall(r"HETANG_[A-Z_]+", path.read_text())}


def test_services_and_volumes() -> None:
    compose = _compose()
    assert set(compose["services"]) == {
        "postgres",
        "redis",
        "hetang",
        "coturn",
        "janus-origin",
        "janus-edge",
    }
    assert {"pgdata", "hetangdata"} <= set(compose["volumes"])
    postgres = compose["services"]["postgres"]
    assert any(volume.startswith("pgdata:") for volume in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_server_service_matches_settings() -> None:
    server = _compose()["services"]["hetang"]
    environment: dict[str, str] = server["environment"]
    assert set(environment) <= _known_variables(), "compose sets a variable the server ignores"
    settings = Settings.from_env({**environment, "HETANG_SECRET_KEY": "k" * 40})
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in settings.database_url
    assert settings.redis_url == "redis://redis:6379/0"
    container_port = str(settings.port)
    assert any(port.endswith(f":{container_port}") for port in server["ports"])
    assert settings.host == "0.0.0.0"  # noqa: S104  (inside the container)
    assert any(
        volume.startswith("hetangdata:" + environment["HETANG_DATA_DIR"])
        for volume in server["volumes"]
    )


def test_migrations_at_start_and_health_check() -> None:
    server = _compose()["services"]["hetang"]
    command = " ".join(server["command"])
    assert command.index("hetang migrate") < command.index("hetang serve")
    # Several processes, which the server runs on PostgreSQL and Redis only (as here).
    serve = command.split("exec hetang ")[1].split()
    args = build_parser().parse_args(serve)
    assert args.command == "serve" and args.workers == 2
    assert "/healthz" in " ".join(server["healthcheck"]["test"])
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_dockerfile_ships_what_migrations_need() -> None:
    lines = (ROOT / "Dockerfile").read_text("utf-8").splitlines()
    copied = {word for line in lines if line.startswith("COPY ") for word in line.split()[1:-1]}
    assert {"alembic.ini", "migrations", "web", "server", "passthrough", "pyproject.toml"} <= copied
    assert "requirements.txt" in copied, "the image installs from the lock"


def test_janus_origin_and_edge_as_the_server_names_them() -> None:
    compose = _compose()
    server = compose["services"]["hetang"]
    settings = Settings.from_env({**server["environment"], "HETANG_SECRET_KEY": "k" * 40})
    assert settings.media.janus
    origin, edge = (urlsplit(url) for url in settings.media.janus_urls)
    api_port = _jcfg_port(ROOT / "deploy" / "janus" / "conf" / "janus.transport.http.jcfg")
    for url, name in ((origin, "janus-origin"), (edge, "janus-edge")):
        assert url.hostname == name and url.path == "/janus"
        assert url.port == api_port, "the API port is the one start.sh fills in by default"
        janus = compose["services"][name]
        assert janus["build"] == "./deploy/janus"
        assert janus["environment"]["HETANG_EVENTS_URL"] == (
            f"http://hetang:{settings.port}/janus/events"
        )
        # Its RTP port range (start.sh's second argument) is what the host publishes.
        first, last = janus["command"][1].split("-")
        assert f"{first}-{last}:{first}-{last}/udp" in janus["ports"]
        assert "media" in janus["networks"], "coturn relays only into the media network"
    ranges = [compose["services"][n]["command"][1] for n in ("janus-origin", "janus-edge")]
    assert len(set(ranges)) == 2


def test_the_janus_image_is_pinned_and_its_start_script_runs() -> None:
    dockerfile = (ROOT / "deploy" / "janus" / "Dockerfile").read_text("utf-8")
    assert "janus=1.1.2-1" in dockerfile
    start = ROOT / "deploy" / "janus" / "start.sh"
    assert start.stat().st_mode & 0o111, "start.sh is executable"
    assert subprocess.run(["sh", "-n", str(start)], check=False).returncode == 0
    template = ROOT / "deploy" / "janus" / "conf" / "janus.eventhandler.sampleevh.jcfg.in"
    text = template.read_text("utf-8")
    assert "@METRICS_TOKEN@" in text and "@SERVER@" in text
    events = re.search(r'events = "([a-z,]+)"', text)
    assert events is not None and "jsep" not in events.group(1).split(",")


def _jcfg_port(path: Path) -> int:
    text = path.read_text("utf-8").replace("@PORT@", "8088")
    found = re.search(r"^\s*port = (\d+)", text, re.MULTILINE)
    assert found is not None
    return int(found.group(1))
