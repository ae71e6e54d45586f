"""JSON handlers for organizations."""

from __future__ import annotations

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.organizations import parse_org
from server.domain.vocabulary import READERS
from server.http.body import checked, read_json, reply
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.services import organizations
from server.services.organizations import OrgView, TreeNode


def _org_json(view: OrgView) -> dict[str, str | None]:
    return {
        "code": view.code,
        "name": view.name,
        "level": view.level,
        "parent_code": view.parent_code,
    }


def _node_json(node: TreeNode) -> dict[str, str | int | None]:
    return {
        "code": node.code,
        "name": node.name,
        "level": node.level,
        "parent_code": node.parent_code,
        "members": node.own_members,
        "members_in_subtree": node.subtree_members,
    }


@allow("admin")
async def create_organization(request: web.Request) -> web.Response:
    """POST /api/v1/organizations"""
    fields = checked(parse_org(await read_json(request)))
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await organizations.create_org(session, principal.scope, principal.actor, fields)
    return reply(_org_json(view), status=201)


@allow(*READERS)
async def list_organizations(request: web.Request) -> web.Response:
    """GET /api/v1/organizations: the tree in the caller's scope with member counts."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        nodes = await organizations.list_tree(session, principal.scope)
    return reply({"organizations": [_node_json(node) for node in nodes]})


@allow(*READERS)
async def get_organization(request: web.Request) -> web.Response:
    """GET /api/v1/organizations/{code}"""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        org = await organizations.get_org(session, principal.scope, request.match_info["code"])
        parent = await organizations.parent_code(session, principal.scope, org)
    return reply(_org_json(OrgView(org.code, org.name, org.level, parent, org.path)))
