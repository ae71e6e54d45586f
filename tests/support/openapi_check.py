"""Checking real answers against openapi.yaml: the status is documented, a request body matches
its schema, and an answer matches its documented schema exactly (no undocumented fields), its
content type and its headers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.support.client import Client

ROOT = Path(__file__).resolve().parents[2]


def load_spec() -> dict[str, Any]:
    """openapi.yaml, parsed."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text("utf-8"))
    return data


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method in item:
            operation: dict[str, Any] = item[method]
            return operation
    raise AssertionError(f"{method.upper()} {path} is not in openapi.yaml")


def _inline(spec: dict[str, Any], node: Any) -> Any:
    """The schema with every local $ref replaced by what it points to (ours are not recursive)."""
    if isinstance(node, list):
        return [_inline(spec, item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return _inline(spec, {**target, **rest})
    return {key: _inline(spec, value) for key, value in node.items()}


def _strict(node: Any, *, top: bool = True) -> Any:
    """An inlined answer schema where an object may hold only the properties it documents, so
    an undocumented field in an answer fails (a branch of allOf is closed at the allOf)."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "allOf":
            out[key] = [_strict(branch, top=False) for branch in value]
        elif key in ("properties", "patternProperties"):
            out[key] = {name: _strict(schema) for name, schema in value.items()}
        elif key in ("enum", "const", "required", "default", "examples"):
            out[key] = value
        else:
            out[key] = _strict(value)
    closed = "additionalProperties" in node or "unevaluatedProperties" in node
    if top and not closed and (node.get("type") == "object" or "allOf" in node):
        out["unevaluatedProperties"] = False
    return out


def validate_json(instance: Any, schema: dict[str, Any]) -> None:
    """The instance matches the JSON schema, formats (date-time, …) included."""
    jsonschema.validate(
        instance, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _response(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    response = _operation(spec, method, path)["responses"].get(str(status))
    assert response is not None, f"{method.upper()} {path} answered {status}, undocumented"
    resolved: dict[str, Any] = _inline(spec, response)
    return resolved


def response_schema(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    """The documented JSON schema of an answer, closed to undocumented fields."""
    schema: dict[str, Any] = _response(spec, method, path, status)["content"]["application/json"][
        "schema"
    ]
    strict: dict[str, Any] = _strict(schema)
    return strict


def _request_schema(spec: dict[str, Any], method: str, path: str, content_type: str) -> Any:
    body = _inline(spec, _operation(spec, method, path).get("requestBody"))
    assert body is not None, f"{method.upper()} {path} takes a body, undocumented"
    assert content_type in body["content"], f"{method.upper()} {path} takes {content_type}?"
    return body["content"][content_type]["schema"]


async def check(
    client: Client, spec: dict[str, Any], method: str, path: str, expected: int, **kwargs: Any
) -> Any:
    """Send; the status is the expected one and documented; a successful request's JSON body
    matches the documented request schema; the answer matches the documented response: its
    JSON schema (no undocumented fields), content type, headers, or an empty body."""
    bare = path.split("?")[0]
    if "json" in kwargs and expected < 300:
        validate_json(kwargs["json"], _request_schema(spec, method, bare, "application/json"))
    response = await client.request(method.upper(), path, **kwargs)
    raw = await response.read()
    assert response.status == expected, raw[:2000]
    documented = _response(spec, method, bare, response.status)
    for name, header in documented.get("headers", {}).items():
        if header.get("required"):
            assert response.headers.get(name), f"{method.upper()} {path}: no {name} header"
    content = documented.get("content")
    if content is None:
        assert raw == b"", f"{method.upper()} {path} {expected} documents no body"
        return None
    assert response.content_type in content, (response.content_type, list(content))
    if response.content_type != "application/json":
        return raw.decode(response.charset or "utf-8")
    body = await response.json()
    validate_json(body, response_schema(spec, method, bare, response.status))
    return body
