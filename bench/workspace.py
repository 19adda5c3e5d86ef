"""The web workspace's page times (not run in CI).

Seeds the TinyDB store with N realistic cases (bench/store.py's generator, as bench/ops.py does),
serves huqi's application on a free port, signs in as an operator and times whole pages over HTTP:
the queue (first page, default order; overdue only; sorted by age, a later page), one case, the
statistics (five SVG charts with their tables). Each page is timed right after one case changed
(``*_after_change_ms``: the workspace re-reads that case and recomputes) and again with nothing
changed (``*_unchanged_ms``); ``first_queue_ms`` is the first page after start (every case decoded).
Figures are medians of --repeat runs, in ms; ``max_rss_mb`` is the process's peak memory.

    .venv/bin/python bench/workspace.py [--sizes 10000,100000] [--repeat 5]

The last line is one JSON object. Targets (issue 11, TinyDB): queue page at 10,000 cases <= 200 ms,
statistics at 100,000 cases <= 500 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

import ops as ops_bench  # noqa: E402  (bench/ops.py: the same cases)
import store as store_bench  # noqa: E402

from bot.config import load_settings  # noqa: E402
from bot.server import build_app  # noqa: E402
from bot.store import open_store  # noqa: E402
from bot.store.logged_tinydb import seed_snapshot  # noqa: E402

TOKEN = "bench-operator-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def get(http, url: str) -> tuple[float, int]:
    t = time.perf_counter()
    async with http.get(url) as resp:
        body = await resp.read()
        assert resp.status == 200, (url, resp.status)
    return (time.perf_counter() - t) * 1000, len(body)


async def timed(http, url: str, repeat: int, change) -> dict:
    """Median ms of a page: right after one case changed (the workspace re-reads that case and
    recomputes the page), and again with nothing changed (kept from the previous load)."""
    changed, same = [], []
    size = 0
    for i in range(repeat):
        await change(i)
        ms, size = await get(http, url)
        changed.append(ms)
        same.append((await get(http, url))[0])
    return {"after_change_ms": round(statistics.median(changed), 1),
            "unchanged_ms": round(statistics.median(same), 1), "bytes": size}


async def measure(n: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        seed_snapshot(str(data), ops_bench.cases(n))
        port = free_port()
        settings = load_settings({"HUQI_DATA_DIR": str(data), "HUQI_API_TOKENS": f"bench:{TOKEN}",
                                  "HUQI_HTTP_PORT": str(port), "HUQI_REMINDER_DAYS": "7"})
        t = time.perf_counter()
        store = open_store(str(data))
        open_ms = round((time.perf_counter() - t) * 1000, 1)
        now = store_bench.T0 + timedelta(days=n // 200 + 30)
        app = build_app(settings, store, clock=lambda: now)
        app.on_startup.clear()     # no reminder sweep: it would be working through the seeded due reminders
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.post(base + "/ops/login", data={"token": TOKEN}, allow_redirects=False) as resp:
                    assert resp.status == 303, resp.status
                some_id = (await store.list(limit=1))[0]["id"]

                async def change(i: int) -> None:
                    await store.update(some_id, {"description": f"bench change {i}"})
                out = {"cases": n, "store_open_ms": open_ms}
                out["first_queue_ms"] = round((await get(http, base + "/ops/cases"))[0], 1)   # decodes every case
                for name, path in (("queue", "/ops/cases"), ("queue_overdue", "/ops/cases?overdue=true"),
                                   ("queue_by_age_page_20", "/ops/cases?sort=-age&page=20"),
                                   ("case", f"/ops/cases/{some_id}"), ("stats", "/ops/stats")):
                    for k, v in (await timed(http, base + path, repeat, change)).items():
                        out[f"{name}_{k}"] = v
                out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                return out
        finally:
            await runner.cleanup()
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
        results[n] = r
    summary = {f"{k}_{n}": v for n, r in results.items() for k, v in r.items() if k.endswith("_ms")}
    if 10000 in results:
        summary["queue_10k_target_met"] = results[10000]["queue_after_change_ms"] <= 200
    if 100000 in results:
        summary["stats_100k_target_met"] = results[100000]["stats_after_change_ms"] <= 500
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
