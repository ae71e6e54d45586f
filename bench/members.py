"""Import 200,000 members through POST /api/v1/members/import on a real server process, three
times on fresh databases, and once through the members page's form (cookie sign-in, CSRF,
multipart), then schedule a session whose roster file names all of them; print the median
rows/s and the server's peak resident memory above its idle size (VmHWM after the import minus
VmRSS before it), next to a floor measured in the same run (a bare SQLite insert of the same
rows). Then time the member search page and the organization tree page at that size: p50/p95
latencies beside a raw SQL query and the health check."""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BENCH_PASSWORD,
    bench_env,
    csrf_from,
    hetang,
    peak_rss_mb,
    prepare,
    server,
    server_process,
    summary,
    temp_dir,
)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬飞桂兰梅鑫波斌"
    "宇浩凯健俊帆帅旭宁龙林欢阳建国建华志强志明海燕小红春梅文华德明永强卫东"
)
CATEGORIES = ("ordinary",) * 17 + ("secretary", "committee", "committee")


def build_tree(counties: int, committees: int, branches: int) -> list[tuple[str, str, str, str]]:
    """(code, name, level, parent) rows of a city."""
    rows = [("city", "滁州市", "city", "")]
    for c in range(counties):
        rows.append((f"c{c}", f"第{c + 1}县", "county", "city"))
        for m in range(committees):
            rows.append((f"c{c}-m{m}", f"第{c + 1}县第{m + 1}镇党委", "committee", f"c{c}"))
            for b in range(branches):
                rows.append(
                    (f"c{c}-m{m}-b{b}", f"第{m + 1}镇第{b + 1}村党支部", "branch", f"c{c}-m{m}")
                )
    return rows


def write_members(path: Path, count: int, branches: list[str], rng: random.Random) -> None:
    """A member CSV with plausible names."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["member_no", "name", "org_code", "category", "card_code"])
        for i in range(count):
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
            writer.writerow(
                [f"3411{i:08d}", name, rng.choice(branches), rng.choice(CATEGORIES), f"C{i:08d}"]
            )


def raw_sqlite_insert(csv_path: Path, directory: Path) -> float:
    """Floor: the same rows straight into a bare SQLite table (one transaction, FULL sync)."""
    directory.mkdir()
    connection = sqlite3.connect(directory / "floor.sqlite3")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE m (id INTEGER PRIMARY KEY, member_no TEXT UNIQUE, name TEXT,"
        " org TEXT, category TEXT, card TEXT UNIQUE)"
    )
    started = time.perf_counter()
    with csv_path.open(encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        with connection:
            connection.executemany(
                "INSERT INTO m (member_no, name, org, category, card) VALUES (?, ?, ?, ?, ?)",
                reader,
            )
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def raw_search(db_path: Path, needles: list[str]) -> list[float]:
    """Floor: the search's core query in raw SQL on the server's own database."""
    connection = sqlite3.connect(db_path)
    timings = []
    for needle in needles:
        started = time.perf_counter()
        connection.execute(
            "SELECT member_no, name FROM members WHERE name LIKE ? ORDER BY member_no LIMIT 51",
            (f"%{needle}%",),
        ).fetchall()
        timings.append(time.perf_counter() - started)
    connection.close()
    return timings


async def time_pages(
    base: str, password: str, needles: list[str], rounds: int
) -> dict[str, list[float]]:
    """Sign in like a browser, then time the pages."""
    timings: dict[str, list[float]] = {"health": [], "search": [], "browse": [], "tree": []}
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for 127.0.0.1
    async with aiohttp.ClientSession(base, cookie_jar=jar) as http:
        await sign_in(http, password)

        async def timed(kind: str, url: str) -> None:
            started = time.perf_counter()
            async with http.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"{url} answered {response.status}")
            timings[kind].append(time.perf_counter() - started)

        for i in range(rounds):
            await timed("health", "/healthz")
            await timed("search", f"/members?q={needles[i % len(needles)]}")
            await timed("browse", f"/members?page={1 + i * 37 % 4000}")
            await timed("tree", "/organizations")
    return timings


def rss_mb(pid: int) -> float:
    """The resident memory of a process now (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def sign_in(http: aiohttp.ClientSession, password: str) -> None:
    """Sign in like a browser: the login form's CSRF token, then the form."""
    async with http.get("/login") as response:
        token = csrf_from(await response.text())
    async with http.post(
        "/login", data={"username": "bench", "password": password, "csrf_token": token}
    ) as response:
        if "/login" in str(response.url):
            raise SystemExit("could not sign in")


async def post_import(base: str, token: str, csv_path: Path, page: bool) -> str:
    """Send the file once, through the API (streamed from disk) or the page's multipart form."""
    if not page:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(base, headers=headers, timeout=timeout) as http:
            with csv_path.open("rb") as handle:
                async with http.post("/api/v1/members/import", data=handle) as response:
                    body = await response.text()
                    if response.status != 200:
                        raise SystemExit(f"API import answered {response.status}: {body[:500]}")
                    return body
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(
        base, cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=600)
    ) as http:
        await sign_in(http, BENCH_PASSWORD)
        async with http.get("/members") as response:
            csrf = csrf_from(await response.text())
        with csv_path.open("rb") as handle:
            form = aiohttp.FormData()
            form.add_field("csrf_token", csrf)
            form.add_field("file", handle, filename="members.csv", content_type="text/csv")
            async with http.post("/members/import", data=form) as response:
                body = await response.text()
                if response.status != 200 or "/members/import" in str(response.url):
                    raise SystemExit(f"page import answered {response.status}: {body[-2000:]}")
                return str(response.url)


async def post_roster(base: str, token: str, csv_path: Path, count: int) -> None:
    """Schedule one session through the page's form with a roster file naming every member
    of the members file at one venue (created through the API first)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base, headers=headers) as http:
        body = {"code": "bench-v", "name": "会场", "org_code": "city"}
        async with http.post("/api/v1/venues", json=body) as response:
            if response.status != 201:
                raise SystemExit(f"creating the venue: {await response.text()}")
    roster = csv_path.with_name("roster.csv")
    with csv_path.open(encoding="utf-8") as source, roster.open("w", encoding="utf-8") as out:
        out.write("党员编号,会场代码\n")
        out.writelines(f"{line.split(',', 1)[0]},bench-v\n" for line in list(source)[1:])
    fields = {
        "title": "全县党员冬训",
        "topic_code": "T-2026-01",
        "starts_at": "2026-12-20T09:00",
        "ends_at": "2026-12-20T12:00",
        "credit_hours": "3",
        "main_venue": "bench-v",
        "min_ratio_pct": "80",
        "late_grace_min": "10",
        "early_grace_min": "10",
        "stats_interval_s": "60",
    }
    jar = aiohttp.CookieJar(unsafe=True)
    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(base, cookie_jar=jar, timeout=timeout) as http:
        await sign_in(http, BENCH_PASSWORD)
        async with http.get("/sessions/new") as response:
            form = aiohttp.FormData({"csrf_token": csrf_from(await response.text()), **fields})
        with roster.open("rb") as handle:
            form.add_field("roster_file", handle, filename="名单.csv", content_type="text/csv")
            async with http.post("/sessions", data=form, allow_redirects=False) as response:
                location = response.headers.get("Location", "")
                if response.status != 303 or f"roster={count}" not in location:
                    raise SystemExit(f"roster answered {response.status}: {location}")


def roster_run(directory: Path, csv_path: Path, count: int) -> tuple[float, float, float]:
    """(seconds, idle MB, peak MB above idle) of scheduling a session with the whole roster."""
    env = bench_env(directory / "data")
    token = hetang(env, "token", "create", "bench").strip()
    with server_process(env) as (base, pid):
        return measured(pid, post_roster(base, token, csv_path, count))


def measured(pid: int, work: Coroutine[Any, Any, object]) -> tuple[float, float, float]:
    """Run the work against the server: (seconds, idle MB before, peak MB above idle)."""
    time.sleep(0.5)
    idle = rss_mb(pid)
    started = time.perf_counter()
    asyncio.run(work)
    elapsed = time.perf_counter() - started
    return elapsed, idle, peak_rss_mb(pid) - idle


def one_import(
    directory: Path, tree: list[tuple[str, str, str, str]], csv_path: Path, page: bool
) -> tuple[float, float, float, Path]:
    """A fresh database and server: (seconds, idle MB, peak MB above idle, database file)."""
    directory.mkdir()
    env = bench_env(directory / "data")
    prepare(env)
    api_token = hetang(env, "token", "create", "bench").strip()
    with server_process(env) as (base, pid):
        asyncio.run(create_tree(base, api_token, tree))
        elapsed, idle, above = measured(pid, post_import(base, api_token, csv_path, page))
    return elapsed, idle, above, directory / "data" / "hetang.sqlite3"


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    rng = random.Random(20261126)
    with temp_dir("hetang-bench-") as directory:
        tree = build_tree(counties=8, committees=5, branches=10)
        branches = [code for code, _, level, _ in tree if level == "branch"]
        csv_path = directory / "members.csv"
        write_members(csv_path, args.members, branches, rng)
        size_mb = csv_path.stat().st_size / 1024 / 1024
        api_runs = [
            one_import(directory / f"api{run}", tree, csv_path, page=False)
            for run in range(args.runs)
        ]
        page_run = one_import(directory / "page", tree, csv_path, page=True)
        floor_s = statistics.median(
            raw_sqlite_insert(csv_path, directory / f"floor{run}") for run in range(args.runs)
        )
        needles = [rng.choice(SURNAMES) + rng.choice(GIVEN) for _ in range(args.rounds)]
        roster = roster_run(directory / "page", csv_path, args.members)
        env = bench_env(directory / "api0" / "data")
        with server(env) as base:
            timings = asyncio.run(time_pages(base, BENCH_PASSWORD, needles, args.rounds))
        raw = raw_search(api_runs[0][3], needles)
    print(
        f"members: {args.members:,} ({size_mb:.1f} MiB CSV) in {len(tree)} organizations "
        f"({len(branches)} branches)"
    )
    import_s = statistics.median(run[0] for run in api_runs)
    each = ", ".join(f"{args.members / run[0]:,.0f}" for run in api_runs)
    print(
        f"import  (POST /api/v1/members/import): {args.members / import_s:9,.0f} rows/s "
        f"({import_s:.1f} s, median of {args.runs}: {each} rows/s; checks, one transaction, "
        "one audit entry per member)"
    )
    rss = statistics.median(run[2] for run in api_runs)
    idle = statistics.median(run[1] for run in api_runs)
    print(
        f"server peak RSS above idle (API):     {rss:9.1f} MB "
        f"(idle {idle:.1f} MB; median of {args.runs}: "
        + ", ".join(f"{run[2]:.1f}" for run in api_runs)
        + " MB)"
    )
    print(
        f"import  (page form /members/import):  {args.members / page_run[0]:9,.0f} rows/s "
        f"({page_run[0]:.1f} s, one run)   peak RSS above idle {page_run[2]:.1f} MB "
        f"(idle {page_run[1]:.1f} MB)"
    )
    print(
        f"roster  (session form, roster file):  {args.members / roster[0]:9,.0f} rows/s "
        f"({roster[0]:.1f} s, one run, includes the members' lookup and the session's writes)"
        f"   peak RSS above idle {roster[2]:.1f} MB (idle {roster[1]:.1f} MB)"
    )
    print(
        f"floor   (bare SQLite executemany):    {args.members / floor_s:9,.0f} rows/s "
        f"({floor_s:.1f} s)   ratio import/floor: {floor_s / import_s:.2f}"
    )
    for kind, label in (
        ("search", "member search page "),
        ("browse", "member list page   "),
        ("tree", "org tree page      "),
        ("health", "health check       "),
    ):
        print(f"{label} {summary(timings[kind])}   ({len(timings[kind])} requests)")
    print(f"raw search SQL      {summary(raw)}")
    ratio = statistics.median(timings["search"]) / statistics.median(timings["health"])
    print(f"ratio search page / health check (median): {ratio:.1f}")


async def create_tree(base: str, token: str, tree: list[tuple[str, str, str, str]]) -> None:
    """Create the organizations through the JSON API."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base, headers=headers) as http:
        for code, name, level, parent in tree:
            body = {"code": code, "name": name, "level": level, "parent_code": parent or None}
            async with http.post("/api/v1/organizations", json=body) as response:
                if response.status != 201:
                    raise SystemExit(f"creating {code}: {await response.text()}")


if __name__ == "__main__":
    main()
