"""openapi.yaml describes exactly the server's API, and real answers match its schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate

from server.app import create_app
from server.settings import Settings
from tests.conftest import World

ROOT = Path(__file__).resolve().parent.parent
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text("utf-8"))
    return data


def test_spec_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)  # type: ignore[arg-type]


def _api_routes(settings: Settings) -> set[tuple[str, str]]:
    found = set()
    for route in create_app(settings).router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method in ("HEAD", "OPTIONS") or not (
            path.startswith("/api/") or path == "/healthz"
        ):
            continue
        found.add((route.method.lower(), path))
    return found


def test_every_api_route_is_described_and_nothing_else(
    spec: dict[str, Any], settings: Settings
) -> None:
    described = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
    served = _api_routes(settings)
    assert served - described == set(), "routes missing from openapi.yaml"
    assert described - served == set(), "openapi.yaml describes routes the server lacks"


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method in item:
            operation: dict[str, Any] = item[method]
            return operation
    raise AssertionError(f"{method.upper()} {path} is not in openapi.yaml")


def _response_schema(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    response = _operation(spec, method, path)["responses"].get(str(status))
    assert response is not None, f"{method.upper()} {path} answered {status}, undocumented"
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return {"components": spec["components"], **schema}


async def _check(
    client: Any, spec: dict[str, Any], method: str, path: str, expected: int, **kwargs: Any
) -> Any:
    response = await client.request(method.upper(), path, **kwargs)
    body = await response.json()
    assert response.status == expected, body
    jsonschema.validate(body, _response_schema(spec, method, path.split("?")[0], response.status))
    return body


async def test_answers_match_the_schemas(client: Any, world: World, spec: dict[str, Any]) -> None:
    admin = world.auth("admin", "a")
    await _check(client, spec, "get", "/healthz", 200)
    await _check(client, spec, "get", "/api/v1/me", 200, headers=admin)
    await _check(client, spec, "get", "/api/v1/me", 401)
    await _check(client, spec, "get", "/api/v1/organizations", 200, headers=admin)
    await _check(client, spec, "get", "/api/v1/organizations/a1", 200, headers=admin)
    await _check(client, spec, "get", "/api/v1/organizations/b1", 404, headers=admin)
    await _check(
        client,
        spec,
        "post",
        "/api/v1/organizations",
        201,
        headers=admin,
        json={"code": "a2", "name": "小溪河镇党委", "level": "committee", "parent_code": "a"},
    )
    await _check(
        client,
        spec,
        "post",
        "/api/v1/organizations",
        409,
        headers=admin,
        json={"code": "a2", "name": "重复", "level": "committee", "parent_code": "a"},
    )
    await _check(
        client,
        spec,
        "post",
        "/api/v1/organizations",
        422,
        headers=admin,
        json={"code": "a3", "name": "x", "level": "planet", "parent_code": "a"},
    )
    await _check(
        client,
        spec,
        "post",
        "/api/v1/members",
        201,
        headers=admin,
        json={
            "member_no": "M001",
            "name": "张三",
            "org_code": "a1a",
            "category": "ordinary",
            "card_code": "C001",
        },
    )
    await _check(
        client,
        spec,
        "post",
        "/api/v1/members/import",
        200,
        headers={**admin, "Content-Type": "text/csv"},
        data="member_no,name,org_code,category\nM002,李四,a1a,secretary\n".encode(),
    )
    await _check(
        client,
        spec,
        "post",
        "/api/v1/members/import",
        422,
        headers={**admin, "Content-Type": "text/csv"},
        data=b"member_no,name,org_code,category\nM003,,a1a,secretary\n",
    )
    await _check(client, spec, "get", "/api/v1/members?q=M00", 200, headers=admin)
    await _check(client, spec, "get", "/api/v1/members", 200, headers=admin)
    await _check(client, spec, "get", "/api/v1/members/M001", 200, headers=admin)
    await _check(
        client, spec, "get", "/api/v1/members/M001", 404, headers=world.auth("reviewer", "b")
    )
    venue = await _check(
        client,
        spec,
        "post",
        "/api/v1/venues",
        201,
        headers=admin,
        json={"code": "v-a", "name": "西泉镇党校", "org_code": "a1"},
    )
    await _check(client, spec, "get", "/api/v1/venues", 200, headers=admin)
    await _check(client, spec, "get", "/api/v1/venues/v-a", 200, headers=admin)
    await _check(
        client,
        spec,
        "post",
        "/api/v1/agent/hello",
        200,
        headers={"Authorization": f"Bearer {venue['token']}"},
        json={"agent_version": "0.1.0", "hostname": "pc-1"},
    )
    rotated = await _check(client, spec, "post", "/api/v1/venues/v-a/token", 200, headers=admin)
    assert rotated["token"] != venue["token"]
    await _check(
        client,
        spec,
        "post",
        "/api/v1/agent/hello",
        401,
        headers={"Authorization": f"Bearer {venue['token']}"},
        json={"agent_version": "0.1.0", "hostname": "pc-1"},
    )
