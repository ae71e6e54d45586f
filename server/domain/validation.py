"""Field rules shared by the JSON API, CSV imports and the CLI: pure, returning problems."""

from __future__ import annotations

import re
from collections.abc import Mapping

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

REQUIRED = "is required"
NOT_TEXT = "must be text"
TOO_LONG = "is too long"
BAD_CODE = "may contain only letters, digits, '.', '_' and '-' (at most 64)"
NOT_ALLOWED = "is not one of the allowed values"
CONTROL_CHARS = "contains control characters"


class Problems(dict[str, str]):
    """Field name → problem; empty means the input is fine."""


def text(
    raw: Mapping[str, object],
    name: str,
    problems: Problems,
    *,
    max_len: int = 200,
    optional: bool = False,
) -> str | None:
    """A trimmed, non-empty text field (or None when optional and absent or blank)."""
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if not optional:
            problems[name] = REQUIRED
        return None
    if not isinstance(value, str):
        problems[name] = NOT_TEXT
        return None
    value = value.strip()
    if len(value) > max_len:
        problems[name] = TOO_LONG
        return None
    if any(ord(ch) < 32 for ch in value):
        problems[name] = CONTROL_CHARS
        return None
    return value


def code(
    raw: Mapping[str, object], name: str, problems: Problems, *, optional: bool = False
) -> str | None:
    """A public code: letters, digits, '.', '_', '-'."""
    value = text(raw, name, problems, max_len=64, optional=optional)
    if value is not None and not CODE_PATTERN.match(value):
        problems[name] = BAD_CODE
        return None
    return value


def choice(
    raw: Mapping[str, object],
    name: str,
    allowed: tuple[str, ...],
    problems: Problems,
    *,
    default: str | None = None,
) -> str | None:
    """One of a fixed set of values."""
    value = raw.get(name)
    if value is None and default is not None:
        return default
    if value is None or value == "":
        problems[name] = REQUIRED
        return None
    if not isinstance(value, str) or value not in allowed:
        problems[name] = NOT_ALLOWED
        return None
    return value
