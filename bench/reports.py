"""A city of 250,000 members with 1,000,000 attendance results over a year, written straight into
the server's SQLite file (generating them through the API would take hours); then, through HTTP,
the city's monthly report (月报告), a branch's, members' yearly records, and the city's month of
results as CSV and XLSX exports (first byte and complete; the workbook also read back by
openpyxl). As the floor, the same run times one raw SQL aggregate over the same rows (results per
organization)."""

from __future__ import annotations

import argparse
import io
import json
import random
import secrets
import sqlite3
import statistics
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, hetang, prepare, server, summary, temp_dir
from server.domain.reports import Month, month_of

TZ = ZoneInfo("Asia/Shanghai")

CATEGORIES = ("ordinary",) * 17 + ("secretary", "committee", "committee")
HOURS = (200, 300, 300, 400)  # credit hours of a session, in hundredths
FLOOR_SQL = """
SELECT m.org_id, count(*), sum(a.status = 'present'), sum(a.reason = 'outage')
FROM attendance a
JOIN training_sessions s ON s.id = a.session_id
JOIN members m ON m.id = a.member_id
WHERE s.starts_at >= ? AND s.starts_at < ?
GROUP BY m.org_id
"""


def stamp(moment: datetime) -> str:
    """A UTC time as the server's models store it on SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def build_tree(connection: sqlite3.Connection, now: str) -> tuple[list[int], list[int]]:
    """City › 8 counties › 5 committees each › 10 branches each (449 organizations), with a
    venue in every county; returns the branch ids and the venue ids."""
    rows: list[tuple[Any, ...]] = []
    branches, counties = [], []
    next_id = 1

    def add(code: str, name: str, level: str, parent: int | None, parent_path: str) -> int:
        nonlocal next_id
        org_id, next_id = next_id, next_id + 1
        rows.append((org_id, code, name, level, parent, f"{parent_path}{org_id}/", now))
        return org_id

    city = add("city", "滁州市", "city", None, "/")
    for c in range(8):
        county = add(f"c{c}", f"第{c + 1}县", "county", city, f"/{city}/")
        counties.append(county)
        for m in range(5):
            committee = add(
                f"c{c}-m{m}", f"第{m + 1}镇党委", "committee", county, f"/{city}/{county}/"
            )
            for b in range(10):
                branches.append(
                    add(
                        f"c{c}-m{m}-b{b}",
                        f"第{b + 1}村党支部",
                        "branch",
                        committee,
                        f"/{city}/{county}/{committee}/",
                    )
                )
    connection.executemany(
        "INSERT INTO organizations (id, code, name, level, parent_id, path, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    venues = [(i + 1, f"V{i}", f"第{i + 1}县党校", county) for i, county in enumerate(counties)]
    connection.executemany(
        "INSERT INTO venues (id, code, name, org_id, token_digest, token_hint, token_rotated_at,"
        " created_at) VALUES (?, ?, ?, ?, ?, 'hv_x', ?, ?)",
        [(i, code, name, org, secrets.token_hex(32), now, now) for i, code, name, org in venues],
    )
    return branches, [venue[0] for venue in venues]


def build_members(
    connection: sqlite3.Connection, count: int, branches: list[int], rng: random.Random, now: str
) -> None:
    """`count` members spread over the branches."""
    connection.executemany(
        "INSERT INTO members (id, member_no, name, org_id, category, card_code, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
        (
            (
                i + 1,
                f"3411{i:08d}",
                f"党员{i}",
                rng.choice(branches),
                rng.choice(CATEGORIES),
                now,
                now,
            )
            for i in range(count)
        ),
    )


def build_sessions(
    connection: sqlite3.Connection,
    members: int,
    results: int,
    venues: list[int],
    venue_org: dict[int, int],
    rng: random.Random,
    year_start: datetime,
    days: int,
    year: int,
) -> int:
    """Sessions spread over `days` from `year_start`, each with its results (85% present, 8%
    partial — half of them for an outage —, 7% absent; a few conflicts and repeats) and the
    training records their credit writes; returns the number of sessions."""
    per_session = 2_000
    sessions = results // per_session
    policy = json.dumps(
        {
            "min_ratio": 0.8,
            "late_grace_min": 10,
            "early_grace_min": 10,
            "require_stream_verification": True,
            "stats_interval_s": 5,
        }
    )
    session_rows, attendance, records = [], [], []
    now = stamp(datetime.now(UTC))
    for sid in range(1, sessions + 1):
        starts = year_start + timedelta(days=rng.randrange(days), hours=1)
        hours = rng.choice(HOURS)
        venue = rng.choice(venues)
        session_rows.append(
            (
                sid,
                secrets.token_hex(6),
                f"培训班{sid}",
                f"T{sid % 97}",
                stamp(starts),
                stamp(starts + timedelta(hours=3)),
                hours,
                "approved",
                policy,
                venue_org[venue],
                venue,
                now,
                now,
            )
        )
        code = f'["V{venue - 1}"]'
        for member in rng.sample(range(1, members + 1), per_session):
            roll = rng.random()
            flags, reason, credit = "[]", None, 0
            if roll < 0.85:
                status, presence = "present", 10_800
                if roll < 0.017:
                    flags = '["repeat"]'
                elif roll < 0.027:
                    flags = '["conflict", "wrong_venue"]'
                    credit = hours
                else:
                    credit = hours
            elif roll < 0.93:
                status, presence = "partial", 9_000
                reason = "outage" if roll < 0.89 else "short_stay"
            else:
                status, presence, code_now = "absent", 0, "[]"
                attendance.append(
                    (sid, member, venue, code_now, status, "no_checkin", 0, 0, 0, flags, now)
                )
                continue
            attendance.append(
                (sid, member, venue, code, status, reason, presence, presence, credit, flags, now)
            )
            if credit:
                records.append(
                    (member, sid, venue, f"T{sid % 97}", year, stamp(starts), credit, now)
                )
    connection.executemany(
        "INSERT INTO training_sessions (id, public_id, title, topic_code, starts_at, ends_at,"
        " credit_hours, state, policy, org_id, main_venue_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        session_rows,
    )
    connection.executemany(
        "INSERT INTO attendance (session_id, member_id, assigned_venue_id, venues, status,"
        " reason, presence_seconds, verified_seconds, credit_hours, flags, computed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        attendance,
    )
    connection.executemany(
        "INSERT INTO training_records (member_id, session_id, venue_id, topic_code, year,"
        " starts_at, credit_hours, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        records,
    )
    return sessions


def get(base: str, path: str, token: str) -> tuple[float, dict[str, Any]]:
    """One timed GET with the bench admin's token."""
    request = urllib.request.Request(  # noqa: S310  (our own server)
        base + path, headers={"Authorization": f"Bearer {token}"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310  (our own server)
        body = json.loads(answer.read())
    return time.perf_counter() - started, body


def download(base: str, path: str, token: str) -> tuple[float, float, int]:
    """One timed file download: seconds to the first byte of the body, seconds to the last,
    and its size in bytes."""
    request = urllib.request.Request(  # noqa: S310  (our own server)
        base + path, headers={"Authorization": f"Bearer {token}"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as answer:  # noqa: S310  (our own server)
        size = len(answer.read(1))
        first = time.perf_counter() - started
        while chunk := answer.read(1 << 16):
            size += len(chunk)
    return first, time.perf_counter() - started, size


def workbook_rows(base: str, path: str, token: str) -> int:
    """Download a workbook whole and count its rows as openpyxl reads them (header included):
    the streamed file is checked to open, not only timed."""
    request = urllib.request.Request(  # noqa: S310  (our own server)
        base + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=300) as answer:  # noqa: S310  (our own server)
        body = answer.read()
    book = load_workbook(io.BytesIO(body), read_only=True)
    try:
        return sum(1 for _ in book.active.iter_rows(values_only=True))
    finally:
        book.close()


def wait_for_monthly_job(base: str, token: str) -> tuple[str, float]:
    """A server that starts keeps last month's city report at once (the job of the 1st, caught
    up) — a whole-city report running beside the first request. Wait for it, so the timings
    are of the requests alone; returns the month kept and the seconds it took."""
    kept = month_of(datetime.now(UTC), TZ).previous().label
    started = time.perf_counter()
    while time.perf_counter() - started < 300:
        _, body = get(base, f"/api/v1/reports/monthly/snapshots?org=city&month={kept}", token)
        if body["snapshots"]:
            break
        time.sleep(0.1)
    return kept, time.perf_counter() - started


def main() -> None:
    """Build the city, run the timings and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=250_000)
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--month", default="2026-11", help="the report month (YYYY-MM)")
    parser.add_argument("--rounds", type=int, default=5, help="timed city reports")
    parser.add_argument("--records", type=int, default=100, help="timed member records")
    parser.add_argument("--exports", type=int, default=3, help="timed month exports per kind")
    args = parser.parse_args()
    rng = random.Random(20261126)
    month = Month(int(args.month[:4]), int(args.month[5:]))
    year = month.year
    month_start, month_end = month.bounds(TZ)
    year_start = month.year_starts(TZ)
    with temp_dir("hetang-bench-") as directory:
        env = bench_env(directory / "data")
        prepare(env)
        token = hetang(env, "token", "create", "bench").strip()
        db_path = directory / "data" / "hetang.sqlite3"
        started = time.perf_counter()
        connection = sqlite3.connect(db_path)
        with connection:
            now = stamp(datetime(year - 1, 12, 1, tzinfo=UTC))
            branches, venues = build_tree(connection, now)
            venue_org = dict(connection.execute("SELECT id, org_id FROM venues").fetchall())
            build_members(connection, args.members, branches, rng, now)
            days = (month_end - year_start).days - 1
            sessions = build_sessions(
                connection,
                args.members,
                args.results,
                venues,
                venue_org,
                rng,
                year_start,
                days,
                year,
            )
        counts = {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("members", "attendance", "training_records")
        }
        build_s = time.perf_counter() - started
        floor = []
        for _ in range(args.rounds):
            began = time.perf_counter()
            connection.execute(FLOOR_SQL, (stamp(month_start), stamp(month_end))).fetchall()
            floor.append(time.perf_counter() - began)
        ytd_floor = []
        for _ in range(args.rounds):
            began = time.perf_counter()
            connection.execute(
                "SELECT member_id, sum(credit_hours) FROM training_records NOT INDEXED"
                " WHERE year = ? GROUP BY member_id",
                (year,),
            ).fetchall()
            ytd_floor.append(time.perf_counter() - began)
        connection.close()
        numbers = [f"3411{rng.randrange(args.members):08d}" for _ in range(args.records)]
        with server(env) as base:
            kept, job_s = wait_for_monthly_job(base, token)
            city_times, branch_times, record_times = [], [], []
            report: dict[str, Any] = {}
            for _ in range(args.rounds):
                elapsed, report = get(
                    base, f"/api/v1/reports/monthly?org=city&month={args.month}", token
                )
                city_times.append(elapsed)
            for _ in range(args.rounds):
                elapsed, _ = get(
                    base, f"/api/v1/reports/monthly?org=c3-m2-b7&month={args.month}", token
                )
                branch_times.append(elapsed)
            for number in numbers:
                elapsed, _ = get(base, f"/api/v1/members/{number}/record?year={year}", token)
                record_times.append(elapsed)
            exports = {
                kind: [
                    download(base, f"/api/v1/attendance.{kind}?org=city&month={args.month}", token)
                    for _ in range(args.exports)
                ]
                for kind in ("csv", "xlsx")
            }
            read_back = workbook_rows(
                base, f"/api/v1/attendance.xlsx?org=city&month={args.month}", token
            )
            _, page = get(base, f"/api/v1/attendance?org=city&month={args.month}", token)
            cabinet_times, cabinet = [], {}
            for _ in range(args.rounds):
                elapsed, cabinet = get(
                    base, f"/api/v1/organizations/c3-m2/cabinet?year={year}", token
                )
                cabinet_times.append(elapsed)
    city_median, floor_median = statistics.median(city_times), statistics.median(floor)
    print(
        f"city: {counts['members']:,} members in 449 organizations, {sessions} sessions, "
        f"{counts['attendance']:,} attendance results, {counts['training_records']:,} training "
        f"records (written in {build_s:.0f} s)"
    )
    print(
        f"server start-up: kept {kept}'s city report (the monthly job) within {job_s:.1f} s; "
        "waited for before timing"
    )
    print(
        f"city monthly report {args.month} (HTTP)   median {city_median * 1000:7.0f} ms   "
        f"first (cold) {city_times[0] * 1000:7.0f} ms   ({args.rounds} requests; "
        f"members_total {report['members_total']:,}, person_times {report['person_times']:,}, "
        f"trained YTD {report['members_trained_ytd']:,}, coverage {report['coverage_ytd_pct']}%)"
    )
    print(
        f"branch monthly report (HTTP)         median "
        f"{statistics.median(branch_times) * 1000:7.1f} ms   ({args.rounds} requests)"
    )
    print(
        f"member record (HTTP)                 {summary(record_times)}   "
        f"({len(record_times)} requests)"
    )
    print(
        f"committee cabinet 一党委一专柜 (HTTP)   median "
        f"{statistics.median(cabinet_times) * 1000:7.1f} ms   ({args.rounds} requests; "
        f"{cabinet['members_total']:,} members, {cabinet['complete']:,} complete)"
    )
    for kind, runs in exports.items():
        firsts, totals = [run[0] for run in runs], [run[1] for run in runs]
        print(
            f"city month export .{kind} (HTTP)    first byte median "
            f"{statistics.median(firsts) * 1000:7.0f} ms   complete median "
            f"{statistics.median(totals):5.1f} s   ({len(runs)} downloads; {page['total']:,} "
            f"results, {runs[0][2] / 1e6:.1f} MB)"
        )
    print(
        f"city month export .xlsx read back by openpyxl: {read_back:,} rows (the header included)"
    )
    print(
        f"floor: raw SQL, the month's results per organization   median "
        f"{floor_median * 1000:7.1f} ms"
    )
    print(
        f"       raw SQL, the year's hours per member            median "
        f"{statistics.median(ytd_floor) * 1000:7.1f} ms"
    )
    print(
        f"ratio city report / month floor: {city_median / floor_median:.1f}   "
        f"city report / year floor: {city_median / statistics.median(ytd_floor):.1f}"
    )


if __name__ == "__main__":
    main()
