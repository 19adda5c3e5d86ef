"""Staff operations benchmark (bot.ops, not run in CI).

Seeds the TinyDB store with N realistic cases (bench/store.py's generator,
snapshot written directly), opens it and times what the API and the web
workspace do: a queue page (50 rows) unfiltered, by platform, overdue only,
a text search; one case's detail; the statistics; the CSV export; the
store's own list() alone; and the longest the event loop is held while the
statistics are computed. Each figure is the median of --repeat runs, in ms.

    .venv/bin/python bench/ops.py [--sizes 10000,100000] [--repeat 5]

The last line is one JSON object. Targets (issue 11, TinyDB): queue page at
10k <= 200 ms, statistics at 100k <= 500 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import store as store_bench  # noqa: E402  (bench/store.py)

from bot import ops  # noqa: E402
from bot.store import open_store  # noqa: E402
from bot.store.logged_tinydb import seed_snapshot  # noqa: E402

PLATFORMS = ["weibo", "douyin", "xiaohongshu", "zhihu", "微博"]
PROVINCES = ["shanghai", "zhejiang", "guangdong", "北京"]


def cases(n: int):
    for i, c in enumerate(store_bench.make_cases(n)):
        c["platform"] = PLATFORMS[i % len(PLATFORMS)]
        c["province"] = PROVINCES[i % len(PROVINCES)]
        if c["status"] == "closed" and i % 3 == 0:
            c["satisfaction"] = {"score": 1 + i % 5, "comment": "", "at": c["updated_at"]}
        yield c


async def timed(repeat: int, fn) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        runs.append(time.perf_counter() - t)
    return round(statistics.median(runs) * 1000, 1)


async def max_block(work) -> float:
    """Run ``work`` beside a ticker; the longest gap between ticks, in ms."""
    gaps, done = [], False

    async def tick():
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    await work
    done = True
    await ticker
    return round(max(gaps) * 1000, 1)


async def measure(n: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        seed_snapshot(d, cases(n))
        store = open_store(d)
        try:
            docs = await store.list(limit=1)
            now = store_bench.T0 + timedelta(days=n // 200 + 30)
            days = 7
            some_id = docs[0]["id"]
            out = {"cases": n}
            out["queue_page_ms"] = await timed(repeat, lambda: ops.list_cases(store, {}, now=now, days=days))
            out["queue_platform_ms"] = await timed(
                repeat, lambda: ops.list_cases(store, {"platform": "小红书"}, now=now, days=days))
            out["queue_overdue_ms"] = await timed(
                repeat, lambda: ops.list_cases(store, {"overdue": "true"}, now=now, days=days))
            out["queue_search_ms"] = await timed(
                repeat, lambda: ops.list_cases(store, {"q": some_id[-4:]}, now=now, days=days))
            out["detail_ms"] = await timed(repeat, lambda: ops.case_detail(store, some_id, now=now, days=days))
            out["stats_ms"] = await timed(repeat, lambda: ops.stats(store, {}, now=now, days=days))
            out["export_ms"] = await timed(max(1, repeat // 2),
                                           lambda: ops.export_csv(store, {}, now=now, days=days))
            # the longest the event loop was held while the statistics were computed
            out["stats_max_block_ms"] = await max_block(ops.stats(store, {}, now=now, days=days))
            out["store_list_ms"] = await timed(repeat, lambda: store.list())
            return out
        finally:
            await store.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    results = {}
    for n in [int(x) for x in args.sizes.split(",")]:
        r = await measure(n, args.repeat)
        print(json.dumps(r), flush=True)
        results[str(n)] = r
    summary = {f"{k}_{n}": v for n, r in results.items() for k, v in r.items() if k != "cases"}
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
