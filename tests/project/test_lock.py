"""The hashed locks requirements*.txt agree with pyproject.toml, with one another and with what is
installed; the agent's lock stays lean; the audit's verdict rules."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.audit import Finding, judge, parse_accepted

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
# Which pyproject groups each lock is made from.
GROUPS = {
    "requirements-agent.txt": [],
    "requirements.txt": ["server"],
    "requirements-test.txt": ["server", "test"],
}
SERVER_ONLY = {"sqlalchemy", "alembic", "asyncpg", "aiosqlite", "redis", "jinja2", "openpyxl"}
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\$")


@dataclass
class Pin:
    """One locked package."""

    version: str
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def read_lock(name: str) -> dict[str, Pin]:
    """A pip-compile lock file as {canonical name: Pin}."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in (LOCKS / name).read_text("utf-8").splitlines():
        stripped = line.strip()
        if match := PIN.match(line):
            current = pins.setdefault(canonicalize_name(match[1]), Pin(match[2]))
        elif current is not None and stripped.startswith("--hash=sha256:"):
            current.hashes.append(stripped.removeprefix("--hash=sha256:").rstrip(" \\"))
        elif current is not None and stripped.startswith("# via "):
            current.via.add(stripped.removeprefix("# via ").strip())
        elif current is not None and stripped.startswith("#   "):
            current.via.add(stripped.removeprefix("#").strip())
    return pins


def direct_requirements(groups: list[str]) -> list[Requirement]:
    """pyproject's requirements for the core and the named optional groups."""
    texts = list(PYPROJECT["project"]["dependencies"])
    for group in groups:
        texts += PYPROJECT["project"]["optional-dependencies"][group]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize("lock", sorted(GROUPS))
def test_lock_pins_every_requirement_of_pyproject(lock: str) -> None:
    pins = read_lock(lock)
    wanted = {canonicalize_name(r.name): r for r in direct_requirements(GROUPS[lock])}
    for name, requirement in wanted.items():
        assert name in pins, f"{lock} lacks {requirement}: run `make lock`"
        assert requirement.specifier.contains(pins[name].version, prereleases=True), (
            f"{lock} pins {name}=={pins[name].version}, pyproject asks {requirement}:"
            " run `make lock`"
        )
    from_pyproject = {name for name, pin in pins.items() if "hetang (pyproject.toml)" in pin.via}
    assert from_pyproject == set(wanted), (
        f"{lock} was made from another pyproject.toml: run `make lock`"
    )
    build = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]
    for requirement in build:
        assert canonicalize_name(requirement.name) in pins, f"{lock} lacks the build backend"


@pytest.mark.parametrize("lock", sorted(GROUPS))
def test_every_pin_has_hashes(lock: str) -> None:
    pins = read_lock(lock)
    assert pins
    for name, pin in pins.items():
        assert pin.hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in pin.hashes), name


def test_locks_agree_on_every_version() -> None:
    full = read_lock("requirements-test.txt")
    for lock in ("requirements.txt", "requirements-agent.txt"):
        for name, pin in read_lock(lock).items():
            assert full[name].version == pin.version, (
                f"{lock} and requirements-test.txt differ on {name}"
            )
            assert set(pin.hashes) <= set(full[name].hashes), name


def test_agent_lock_has_no_server_or_test_packages() -> None:
    agent = set(read_lock("requirements-agent.txt"))
    assert not agent & SERVER_ONLY
    assert not agent & {"pytest", "mypy", "ruff", "playwright", "pip-tools", "pip-audit"}
    assert {"aiohttp", "aiortc", "av"} <= agent


def test_installed_environment_is_the_lock() -> None:
    wrong = {
        name: (pin.version, installed)
        for name, pin in read_lock("requirements-test.txt").items()
        if (installed := metadata.version(name)) != pin.version
    }
    assert not wrong, f"installed versions differ from requirements-test.txt: {wrong}"


def test_every_requirement_of_pyproject_is_pinned_to_the_lock() -> None:
    """Nothing floats: every direct dependency (and the build backend) names exactly the version
    the locks install, so pyproject.toml alone cannot bring in an untested one."""
    full = read_lock("requirements-test.txt")
    requirements = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]
    for group in ([], ["server"], ["test"]):
        requirements.extend(direct_requirements(group))
    for requirement in requirements:
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{requirement} is not pinned"
        locked = full[canonicalize_name(requirement.name)].version
        assert specs[0].version == locked, f"pyproject pins {requirement}, the lock {locked}"


FINDING = Finding("somepkg", "1.0", "GHSA-aaaa-bbbb-cccc", ("CVE-2026-1",), ("1.1",))


def test_audit_fails_on_a_vulnerability_not_accepted() -> None:
    verdict = judge([FINDING], [], {})
    assert not verdict.ok and verdict.failing == [FINDING]


def test_audit_accepts_by_id_or_alias_for_that_package_only() -> None:
    assert judge([FINDING], [], {"GHSA-aaaa-bbbb-cccc": "somepkg"}).ok
    assert judge([FINDING], [], {"CVE-2026-1": "somepkg"}).ok
    assert not judge([FINDING], [], {"CVE-2026-1": "otherpkg"}).ok


def test_audit_names_stale_acceptances_and_unaudited_packages() -> None:
    verdict = judge([], ["av==18.1.0"], {"GHSA-gone": "somepkg"})
    assert verdict.ok
    assert verdict.stale_acceptances == ["GHSA-gone"]
    assert verdict.unaudited == ["av==18.1.0"]


def test_accepted_file_parses_and_refuses_a_line_without_reason() -> None:
    text = "# comment\nGHSA-1 SomePkg only the CLI  # trailing\n\n"
    assert parse_accepted(text) == {"GHSA-1": "somepkg"}
    with pytest.raises(ValueError, match="expected"):
        parse_accepted("GHSA-1 somepkg\n")
    parse_accepted((ROOT / "tools" / "audit-accepted.txt").read_text("utf-8"))


def test_agent_imports_only_what_its_lock_installs() -> None:
    """venue_agent/ and passthrough/ import the standard library, each other and agent.txt."""
    allowed = set(read_lock("requirements-agent.txt"))
    distributions = metadata.packages_distributions()
    outside: set[str] = set()
    for folder in ("venue_agent", "passthrough"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                names = (
                    [alias.name for alias in node.names] if isinstance(node, ast.Import)
                    else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                    and node.module else []
                )  # fmt: skip
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in {"venue_agent", "passthrough"}:
                        continue
                    owners = {canonicalize_name(d) for d in distributions.get(top, [top])}
                    if not owners & allowed:
                        outside.add(f"{path.relative_to(ROOT)}: {name}")
    assert not outside, sorted(outside)
