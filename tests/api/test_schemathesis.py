"""schemathesis walks every operation of openapi.yaml against a real `hetang serve`: no answer is a
5xx, and every answer is documented (status code, content type, body schema).

The user API is called with an admin's token (`hu_…`), the agent API with a venue's (`hv_…`). Path
parameters are either what hypothesis makes up or the codes of a small seeded world, so the
operations reach past 404. The number of examples per operation is bounded and the run is
derandomized, so the module takes the same path every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.procs import Server, new_server, server_template

pytestmark = pytest.mark.slow

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
EXAMPLES = 50  # per operation and generation mode; the module stays within a few minutes
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SKIPPED = {
    # A WebSocket: a plain HTTP request exercises nothing but the refusal to upgrade.
    ("GET", "/api/v1/agent/events"),
}

schema = schemathesis.openapi.from_path(
    SPEC,
    config=schemathesis.Config.from_dict(
        {"generation": {"mode": "all", "deterministic": True}, "seed": 20260501}
    ),
)

# The seeded world; the path parameters of these names may take these values. Only its own venue's
# token is ever rotated, so the agent calls keep theirs.
ROTATED = "v-rot"
KNOWN = {
    "code": ["st", "v-st"],
    "org": ["st"],
    "member_no": ["ST001"],
    "year": [2026],
}

# Filled by the `world` fixture: schemathesis's hooks run while cases are generated, where no
# fixture reaches, so what they need of the seeded world lives here.
OWN_TOKEN_IDS: set[int] = set()
SPARE_TOKEN_IDS: list[int] = []


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    """A running server with an organization, a member, a venue, a session and a plan; answers
    the server, the admin's user token and the venue's token."""
    root = tmp_path_factory.mktemp("schemathesis")
    server = new_server(server_template(root / "template"), root / "server")
    try:
        server.api(
            "POST",
            "organizations",
            {"code": "st", "name": "测试市委", "level": "city", "parent_code": None},
        )
        server.api(
            "POST",
            "members",
            {"member_no": "ST001", "name": "张三", "org_code": "st", "category": "ordinary"},
        )
        venue = server.api("POST", "venues", {"code": "v-st", "name": "党校", "org_code": "st"})
        server.api("POST", "venues", {"code": ROTATED, "name": "分会场", "org_code": "st"})
        now = datetime.now(UTC).replace(microsecond=0)
        session = server.api(
            "POST",
            "sessions",
            {
                "title": "首课",
                "topic_code": "ZZ-1",
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "credit_hours": 1,
                "main_venue": "v-st",
                "roster": [{"member_no": "ST001", "venue": "v-st"}],
            },
        )
        server.api("POST", "plans", {"org_code": "st", "year": 2026, "title": "年度计划"})
        KNOWN["id"] = [session["id"]]
        # DELETE tokens/{id} may hit the token the test calls with: it revokes a spare instead.
        tokens = server.api("GET", "tokens")["tokens"]
        OWN_TOKEN_IDS.update(t["id"] for t in tokens if server.admin_token.startswith(t["hint"]))
        SPARE_TOKEN_IDS.append(server.api("POST", "tokens", {"label": "spare"})["id"])
        yield server, server.admin_token, venue["token"]
    finally:
        server.stop()


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Half the time, the seeded objects' codes instead of made-up ones."""
    known = {name: KNOWN[name] for name in path_parameters or {} if name in KNOWN}
    if context.operation is not None and context.operation.path == "/api/v1/venues/{code}/token":
        known["code"] = [ROTATED]
    if not known:
        return st.just(path_parameters)
    seeded = st.fixed_dictionaries(
        {name: st.sampled_from(values) for name, values in known.items()}
    ).map(lambda chosen: {**path_parameters, **chosen})
    return st.one_of(st.just(path_parameters), seeded)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Half the sessions made up are well-formed ones at the seeded venue, so some are stored."""
    operation = context.operation
    if (
        operation is None
        or operation.path not in ("/api/v1/sessions", "/api/v1/sessions/{id}")
        or not isinstance(body, dict)
    ):
        return st.just(body)
    starts_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    at_home = {
        **body,
        "starts_at": starts_at.isoformat(),
        "ends_at": (starts_at + timedelta(hours=2)).isoformat(),
        "title": "专题课",
        "credit_hours": 2,
        "main_venue": "v-st",
        "branch_venues": [],
        "roster": [],
        "plan_class": None,
    }
    return st.one_of(st.just(body), st.just(at_home))


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
def test_operation_answers_as_documented(
    case: schemathesis.Case, world: tuple[Server, str, str]
) -> None:
    if (case.method.upper(), case.path) in SKIPPED:
        pytest.skip("a WebSocket endpoint; tests/api/test_live.py exercises it")
    server, user_token, venue_token = world
    if case.path == "/api/v1/tokens/{id}" and _token_id(case.path_parameters) in OWN_TOKEN_IDS:
        case.path_parameters = {**(case.path_parameters or {}), "id": str(SPARE_TOKEN_IDS[0])}
    token = venue_token if case.path.startswith("/api/v1/agent/") else user_token
    case.call_and_validate(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"},
        checks=CHECKS,
        timeout=30,
    )


def _token_id(path_parameters: dict[str, Any] | None) -> int | None:
    """The token id a path names, read as the server reads it (or None)."""
    try:
        return int(str((path_parameters or {}).get("id")))
    except ValueError:
        return None
