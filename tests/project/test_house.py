"""The house keeps its habits: no module-level mutable state, arrows that point down only, and
the vocabulary's words said once.

STYLE.md habit 1 and "The house": the first two read every module's source with `ast` (none is
imported), so a new module is checked the day it is written.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.domain.plans import RANGE_MESSAGES
from server.domain.sessions import OUTSIDE_THE_YEARS
from server.domain.vocabulary import FIRST_YEAR, LAST_YEAR

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "venue_agent", "passthrough", "tools")

# Calls that build a mutable container; a constant is a tuple, a frozenset or a MappingProxyType.
MUTABLE_CALLS = frozenset(
    {
        "list",
        "dict",
        "set",
        "bytearray",
        "defaultdict",
        "OrderedDict",
        "Counter",
        "deque",
        "ChainMap",
        "WeakSet",
        "WeakKeyDictionary",
        "WeakValueDictionary",
    }
)
MUTABLE_LITERALS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def modules(*packages: str) -> Iterator[Path]:
    """Every Python module under these top-level packages, sorted."""
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    """`server/api/sessions.py` → `server.api.sessions`."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def parse(path: Path) -> ast.Module:
    """The module's syntax tree."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import: the module's, and those nested in its if/try/with blocks."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If | ast.With | ast.For | ast.While):
            yield from top_level(stmt.body)
            yield from top_level(stmt.orelse if not isinstance(stmt, ast.With) else [])
        elif isinstance(stmt, ast.Try):
            yield from top_level(stmt.body)
            for handler in stmt.handlers:
                yield from top_level(handler.body)
            yield from top_level(stmt.orelse)
            yield from top_level(stmt.finalbody)


def is_mutable(value: ast.expr | None) -> bool:
    """Whether an assigned value builds a list, dict or set (or another mutable container)."""
    if isinstance(value, MUTABLE_LITERALS):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return name in MUTABLE_CALLS
    return False


def mutable_assignments(path: Path) -> list[str]:
    """`path:line name` for each module-level assignment of a mutable value."""
    found = []
    for stmt in top_level(parse(path).body):
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            targets, value = [stmt.target], stmt.value
        else:
            continue
        if is_mutable(value):
            names = ", ".join(ast.unparse(t) for t in targets)
            found.append(f"{path.relative_to(ROOT)}:{stmt.lineno} {names}")
    return found


def imported(tree: ast.Module, package: str) -> set[str]:
    """Every module a module of this package imports, anywhere in it (relative imports resolved);
    `from a import b` counts as importing both `a` and `a.b`, which may be a module."""
    parts = package.split(".")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def reaches(names: set[str], forbidden: tuple[str, ...]) -> list[str]:
    """The imported names that are, or lie inside, one of the forbidden modules."""
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))


def test_no_module_level_mutable_state() -> None:
    offenders = [found for path in modules(*PACKAGES) for found in mutable_assignments(path)]
    assert offenders == [], "use a tuple, a frozenset or types.MappingProxyType"


def test_the_check_sees_mutable_values() -> None:
    source = (
        "A = []\nB: dict[str, int] = {}\nC = {1}\nD = [x for x in ()]\nE = list()\n"
        "F = collections.defaultdict(list)\nif True:\n    G = {'a': 1}\n"
        "H = ()\nI = frozenset({1})\nJ = types.MappingProxyType({})\n"
    )
    flagged = []
    for stmt in top_level(ast.parse(source).body):
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and is_mutable(stmt.value):
            flagged.append(stmt.lineno)
    assert flagged == [1, 2, 3, 4, 5, 6, 8]


# (which modules, what they must never import)
LAYERS = (
    (("server.pages",), ("server.api",)),
    (
        ("server.domain",),
        ("server.db", "server.services", "server.api", "server.pages", "aiohttp", "sqlalchemy"),
    ),
    (("server.cli", "server.__main__"), ("server.api",)),
    (("venue_agent",), ("server",)),
)


@pytest.mark.parametrize(("importers", "forbidden"), LAYERS, ids=lambda v: "+".join(v))
def test_imports_point_down(importers: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    checked, crossings = 0, []
    for path in modules(*{i.split(".")[0] for i in importers}):
        name = module_name(path)
        if any(name == i or name.startswith(i + ".") for i in importers):
            checked += 1
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            names = imported(parse(path), package)
            crossings.extend(f"{name} → {n}" for n in reaches(names, forbidden))
    assert checked > 0, f"no module found for {importers}"
    assert crossings == []


def test_the_import_check_sees_every_form_of_import() -> None:
    source = (
        "import aiohttp.web\nfrom server.domain import times\nfrom . import labels\n"
        "from ..api import sessions\n"
        "def later() -> None:\n    from server.db.models import Member\n"
    )
    names = imported(ast.parse(source), "server.pages")
    assert reaches(names, ("aiohttp", "server.api", "server.db")) == [
        "aiohttp.web",
        "server.api",
        "server.api.sessions",
        "server.db.models",
        "server.db.models.Member",
    ]
    assert "server.pages.labels" in names
    assert reaches({"server.apis", "server.domain"}, ("server.api",)) == []


def test_messages_name_the_years_of_the_vocabulary() -> None:
    """Messages are written out for the translators; they must say the one pair of bounds."""
    years = f"{FIRST_YEAR} and {LAST_YEAR}"
    assert years in OUTSIDE_THE_YEARS
    assert years in RANGE_MESSAGES["year"]
