"""Audit a hashed lock for known vulnerabilities: `python -m tools.audit requirements-test.txt`.

pip-audit does the auditing (PyPI's advisory data, which is the PyPA advisory database). A release
pip-audit cannot look up — some networks answer only PyPI's project pages, not its per-release
pages — is looked up on the project page instead, whose advisories are those of the newest
release: exact for a locked version that is the newest, so `make lock` keeps them comparable.
A vulnerability fails the run unless tools/audit-accepted.txt accepts it (one line each:
`ID PACKAGE reason…`); an acceptance nothing matches any more is reported so it can be removed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCEPTED = Path(__file__).resolve().parent / "audit-accepted.txt"
PROJECT_URL = "https://pypi.org/pypi/{name}/json"


@dataclass(frozen=True)
class Finding:
    """One advisory that affects one locked package."""

    package: str
    version: str
    vuln_id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """What the audit concluded."""

    failing: list[Finding]
    accepted: list[Finding]
    unaudited: list[str]
    stale_acceptances: list[str]

    @property
    def ok(self) -> bool:
        return not self.failing


def parse_accepted(text: str) -> dict[str, str]:
    """`ID PACKAGE reason…` lines (comments with #) → {ID: package}."""
    accepted: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 3:
            raise ValueError(f"audit-accepted.txt: {raw!r}: expected `ID PACKAGE reason`")
        accepted[parts[0]] = parts[1].lower()
    return accepted


def judge(findings: list[Finding], unaudited: list[str], accepted: dict[str, str]) -> Verdict:
    """Split the findings into failing and accepted ones (an ID or any alias may be accepted)."""
    failing: list[Finding] = []
    kept: list[Finding] = []
    used: set[str] = set()
    for finding in findings:
        names = {finding.vuln_id, *finding.aliases}
        match = [name for name in names if accepted.get(name) == finding.package.lower()]
        if match:
            kept.append(finding)
            used.update(match)
        else:
            failing.append(finding)
    stale = sorted(set(accepted) - used)
    return Verdict(failing, kept, sorted(unaudited), stale)


def run_pip_audit(lock: Path) -> dict[str, Any]:
    """pip-audit's JSON report of the lock (hashes required, no virtual environment made)."""
    command = [
        sys.executable, "-m", "pip_audit", "--requirement", str(lock), "--require-hashes",
        "--disable-pip", "--progress-spinner", "off", "--format", "json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if not done.stdout.strip():
        raise RuntimeError(f"pip-audit produced no report:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def findings_of(report: dict[str, Any]) -> tuple[list[Finding], list[tuple[str, str]]]:
    """The report's advisories, and the (package, version) pairs it could not look up."""
    findings: list[Finding] = []
    skipped: list[tuple[str, str]] = []
    for dependency in report.get("dependencies", []):
        name = dependency["name"]
        if "skip_reason" in dependency:
            version = dependency["skip_reason"].rsplit("(", 1)[-1].rstrip(")")
            skipped.append((name, version))
            continue
        for vuln in dependency.get("vulns", []):
            findings.append(
                Finding(name, dependency["version"], vuln["id"], tuple(vuln.get("aliases", [])),
                        tuple(vuln.get("fix_versions", [])))
            )  # fmt: skip
    return findings, skipped


def project_findings(name: str, version: str) -> list[Finding] | None:
    """Advisories of `name==version` from its project page, or None when they can't be known."""
    try:
        with urllib.request.urlopen(PROJECT_URL.format(name=name), timeout=15) as answer:  # noqa: S310
            page: dict[str, Any] = json.load(answer)
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError):
        return None
    if page.get("info", {}).get("version") != version:
        return None
    return [
        Finding(name, version, vuln["id"], tuple(vuln.get("aliases") or ()),
                tuple(vuln.get("fixed_in") or ()))
        for vuln in page.get("vulnerabilities") or []
        if not vuln.get("withdrawn")
    ]  # fmt: skip


def audit(lock: Path, accepted_text: str) -> Verdict:
    """Audit the lock: pip-audit first, the project pages for what it could not look up."""
    findings, skipped = findings_of(run_pip_audit(lock))
    unaudited: list[str] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        looked_up = list(pool.map(lambda pair: project_findings(*pair), skipped))
    for (name, version), found in zip(skipped, looked_up, strict=True):
        if found is None:
            unaudited.append(f"{name}=={version}")
        else:
            findings.extend(found)
    return judge(findings, unaudited, parse_accepted(accepted_text))


def report(verdict: Verdict, lock: Path) -> str:
    """The verdict as the lines `make audit` prints."""
    lines: list[str] = []
    for finding in verdict.failing:
        fixed = ", ".join(finding.fixed_in) or "no fixed release yet"
        lines.append(
            f"VULNERABLE {finding.package}=={finding.version}: {finding.vuln_id}"
            f" ({', '.join(finding.aliases) or 'no aliases'}); fixed in {fixed}"
        )
    if verdict.failing:
        lines.append(
            "Upgrade: make lock LOCK_FLAGS=--upgrade-package=NAME. Or, if it cannot affect"
            f" Hetang, accept it with a reason in {ACCEPTED.name}: `ID PACKAGE reason`."
        )
    lines += [f"accepted {f.package}=={f.version}: {f.vuln_id}" for f in verdict.accepted]
    lines += [f"acceptance no longer needed: {vuln_id}" for vuln_id in verdict.stale_acceptances]
    if verdict.unaudited:
        lines.append(
            f"not audited ({len(verdict.unaudited)}: no advisory data reachable for an older"
            f" release): {' '.join(verdict.unaudited)}"
        )
    audited = "FAILED" if verdict.failing else "ok"
    lines.append(f"audit of {lock}: {audited} ({len(verdict.failing)} vulnerable)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Audit the lock named on the command line; exit 1 on a vulnerability not accepted."""
    parser = argparse.ArgumentParser(prog="python -m tools.audit", description=__doc__)
    parser.add_argument("lock", type=Path)
    args = parser.parse_args(argv)
    accepted_text = ACCEPTED.read_text("utf-8") if ACCEPTED.exists() else ""
    verdict = audit(args.lock, accepted_text)
    print(report(verdict, args.lock))
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
