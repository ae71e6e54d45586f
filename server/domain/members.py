"""Member rules: the fields of a member and the yearly hour requirement per category."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from server.domain import validation as v
from server.domain.self_checkin import normal_last4
from server.domain.vocabulary import MEMBER_CATEGORIES

REQUIRED_HOURS = MappingProxyType(
    {"ordinary": Decimal(32), "secretary": Decimal(56), "committee": Decimal(56)}
)


def hours_number(value: Decimal) -> int | float:
    """Credit hours as a number for JSON and spreadsheets: 3, not "3.00"; 1.5 stays 1.5."""
    return int(value) if value == value.to_integral_value() else float(value)


CSV_COLUMNS = ("member_no", "name", "org_code", "category", "card_code")


@dataclass(frozen=True)
class MemberFields:
    """A member as given by a form, a JSON body or a CSV row, already checked."""

    member_no: str
    name: str
    org_code: str
    category: str
    card_code: str | None
    # Self check-in's second factor (domain/self_checkin.py): checked, kept only as a hash.
    id_last4: str | None = None


def parse_member(raw: Mapping[str, object]) -> tuple[MemberFields | None, v.Problems]:
    """Check one member's fields; return them or the problems found."""
    problems = v.Problems()
    member_no = v.code(raw, "member_no", problems)
    name = v.text(raw, "name", problems, max_len=100)
    org_code = v.code(raw, "org_code", problems)
    category = v.choice(raw, "category", MEMBER_CATEGORIES, problems)
    card_code = v.text(raw, "card_code", problems, max_len=128, optional=True)
    given_last4 = v.text(raw, "id_last4", problems, max_len=8, optional=True)
    id_last4 = normal_last4(given_last4) if given_last4 is not None else None
    if given_last4 is not None and id_last4 is None:
        problems["id_last4"] = "must be the last four characters of the ID number"
    if problems or member_no is None or name is None or org_code is None or category is None:
        return None, problems
    return MemberFields(member_no, name, org_code, category, card_code, id_last4), problems
