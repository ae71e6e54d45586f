"""docker-compose.yml (no Docker engine runs here): its services, ports and variables agree with
the settings the server really reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from server.cli.parser import build_parser
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return data


def _known_variables() -> set[str]:
    return set(re.findall(r"HETANG_[A-Z_]+", (ROOT / "server" / "settings.py").read_text("utf-8")))


def test_services_and_volumes() -> None:
    compose = _compose()
    assert set(compose["services"]) == {"postgres", "redis", "hetang", "coturn"}
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
