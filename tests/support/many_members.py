"""Many members at once, straight through the import service (tests of large rosters)."""

from __future__ import annotations

from collections.abc import Iterable

from server.auth.principal import WHOLE_TREE
from server.db.session import write_session
from server.services.member_import import import_members_csv
from tests.support.databases import Db


async def import_members(db: Db, numbers: Iterable[str], org: str = "a1a") -> None:
    """Ordinary members of `org` with these numbers, named 党员<n>."""
    rows = "".join(f"{number},党员{i},{org},ordinary\n" for i, number in enumerate(numbers))
    async with write_session(db) as session:
        await import_members_csv(
            session, WHOLE_TREE, "test", ("member_no,name,org_code,category\n" + rows).encode()
        )
