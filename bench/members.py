"""Import 250,000 members through `hetang members import`, then time the member search page and
the organization tree page at that size. Prints rows/s and p50/p95 latencies, each next to a
floor measured in the same run (a raw SQLite insert; a raw SQL query; the health check)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BENCH_PASSWORD,
    bench_env,
    csrf_from,
    hetang,
    prepare,
    server,
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
        async with http.get("/login") as response:
            token = csrf_from(await response.text())
        async with http.post(
            "/login", data={"username": "bench", "password": password, "csrf_token": token}
        ) as response:
            if "/login" in str(response.url):
                raise SystemExit("could not sign in")

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


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=250_000)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    rng = random.Random(20261126)
    with temp_dir("hetang-bench-") as directory:
        env = bench_env(directory / "data")
        tree = build_tree(counties=8, committees=5, branches=10)
        branches = [code for code, _, level, _ in tree if level == "branch"]
        csv_path = directory / "members.csv"
        write_members(csv_path, args.members, branches, rng)
        prepare(env)
        password = BENCH_PASSWORD
        api_token = hetang(env, "token", "create", "bench").strip()
        with server(env) as base:
            asyncio.run(create_tree(base, api_token, tree))
        started = time.perf_counter()
        hetang(env, "members", "import", str(csv_path))
        import_s = time.perf_counter() - started
        floor_s = raw_sqlite_insert(csv_path, directory)
        needles = [rng.choice(SURNAMES) + rng.choice(GIVEN) for _ in range(args.rounds)]
        with server(env) as base:
            timings = asyncio.run(time_pages(base, password, needles, args.rounds))
        raw = raw_search(directory / "data" / "hetang.sqlite3", needles)
    print(f"members: {args.members:,} in {len(tree)} organizations ({len(branches)} branches)")
    print(
        f"import  (hetang members import): {args.members / import_s:9,.0f} rows/s "
        f"({import_s:.1f} s, includes process start, checks and one audit entry per member)"
    )
    print(
        f"floor   (bare SQLite executemany): {args.members / floor_s:9,.0f} rows/s "
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
