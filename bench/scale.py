"""Several ``huqi serve`` workers on one PostgreSQL: how far past one process.

A PostgreSQL 15 cluster (fsync and synchronous commit on, as in production)
is started in a temporary directory; 1, 2 and 4 ``huqi serve`` workers run
on one database in webhook mode behind the fake Bot API, and simulated users
(200, then 1,000 at once) post their updates to the workers in turn, as a
load balancer would.  Each user sends a run of messages (alternating /help
and /faq, whose replies differ); the fake records the replies: round trips
per second, p50/p99 from sending to the reply's last message, messages lost
and messages out of order within a chat (both must be 0).  Beside it, case
writes per second (``append_event`` from 32 concurrent tasks) against the
PostgreSQL store and the embedded TinyDB store on the same machine, and the
CPU each round trip costs the workers and the server (steadier than rates
when the machine is shared; the load average is printed too).

The harness (fake API recorder, calibration, load, figures) is
bench/telegram.py's.

Usage: python bench/scale.py [--quick]     (--quick: 200 users, 1 and 2 workers)
Prints one JSON object on its last line.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ would come first on the path and bench/telegram.py would hide PTB.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.telegram import (  # noqa: E402
    MESSAGES_PER_USER, SECRET, Recorder, calibrate, free_port, run_load, start, stop,
)
from tests.pg import Cluster, find_bindir  # noqa: E402

WRITERS = 32
WRITES = 3000


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def server_cpu(cluster: Cluster) -> float:
    """CPU of the PostgreSQL server: the postmaster and its children."""
    try:
        master = int(Path(cluster.datadir, "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = cpu_seconds(master)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                    total += cpu_seconds(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return total


async def bench_workers(fake: Recorder, cluster: Cluster, n_workers: int, sizes: list[int], tmp: Path) -> dict:
    from bot.store.migrations import migrate

    url = cluster.create_database(f"scale_{n_workers}")
    await migrate(url)
    base_env = dict(os.environ, HUQI_DATABASE_URL=url, HUQI_DATA_DIR=str(tmp / f"data{n_workers}"),
                    HUQI_TELEGRAM_TOKEN="123456:TEST-token", HUQI_TELEGRAM_API_URL=fake.base_url,
                    HUQI_WEBHOOK_SECRET=SECRET, PYTHONIOENCODING="utf-8")
    for k in ("HUQI_API_TOKEN", "HUQI_API_TOKENS", "HUQI_OPERATOR_CHAT_ID"):
        base_env.pop(k, None)
    hooks, procs = [], []
    try:
        for _ in range(n_workers):
            port = free_port()
            hook = f"http://127.0.0.1:{port}/hook"
            procs.append(await start([sys.executable, "-m", "bot.cli", "serve"],
                                     dict(base_env, HUQI_HTTP_PORT=str(port), HUQI_WEBHOOK_URL=hook)))
            hooks.append(hook)
        out = {}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            ids, turn = itertools.count(1), itertools.count()

            async def send(update: dict) -> None:  # any worker may get any update
                hook = hooks[next(turn) % len(hooks)]
                update = dict(update, update_id=next(ids))
                async with http.post(hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as r:
                    await r.read()

            shape = await calibrate(fake, send, 99)
            for n in sizes:
                workers0, server0 = sum(cpu_seconds(p.pid) for p in procs), server_cpu(cluster)
                out[n] = r = await run_load(fake, send, n, MESSAGES_PER_USER, shape)
                trips = max(1, n * MESSAGES_PER_USER - r["lost"])
                # CPU per round trip: steadier than rates on a shared machine.
                r["worker_cpu_ms_per_round_trip"] = round(
                    1000 * (sum(cpu_seconds(p.pid) for p in procs) - workers0) / trips, 2)
                r["pg_cpu_ms_per_round_trip"] = round(1000 * (server_cpu(cluster) - server0) / trips, 2)
        return out
    finally:
        await asyncio.gather(*(stop(p) for p in procs))


async def case_writes_per_s(store) -> float:
    """``append_event`` on distinct cases from WRITERS concurrent tasks."""
    owner = {"messenger": "telegram", "user_id": "1"}
    cases = [(await store.create({"owner": owner, "type": "rumor", "status": "submitted"}))["id"]
             for _ in range(WRITERS)]
    per_task = WRITES // WRITERS

    async def writer(cid: str) -> None:
        for i in range(per_task):
            await store.append_event(cid, {"who": "bench", "note": f"n{i}"})

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(c) for c in cases))
    return round(per_task * WRITERS / (time.perf_counter() - t0), 1)


async def main(quick: bool) -> dict:
    from bot.store import open_store
    from bot.store.migrations import migrate

    if find_bindir() is None:
        raise SystemExit("PostgreSQL server binaries (initdb, pg_ctl) not found")
    worker_counts = [1, 2] if quick else [1, 2, 4]
    sizes = [200] if quick else [200, 1000]
    cluster = Cluster(find_bindir(), durable=True).start()
    fake = Recorder()
    await fake.start()
    results: dict = {"messages_per_user": MESSAGES_PER_USER, "cores": os.cpu_count()}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = {}
            for n in worker_counts:
                runs[n] = await bench_workers(fake, cluster, n, sizes, Path(tmp))
            url = cluster.create_database("writes")
            await migrate(url)
            async with open_store(None, backend="postgres", url=url) as pg:
                pg_writes = await case_writes_per_s(pg)
            async with open_store(str(Path(tmp) / "tinydb"), backend="tinydb") as tiny:
                tiny_writes = await case_writes_per_s(tiny)
    finally:
        await fake.stop()
        cluster.destroy()
    for n, by_size in runs.items():
        for size, r in by_size.items():
            results[f"workers_{n}_users_{size}"] = r
    results.update(
        workers=worker_counts,
        round_trips_per_s=[runs[n][200]["round_trips_per_s"] for n in worker_counts],
        p50_ms=[runs[n][200]["p50_ms"] for n in worker_counts],
        p99_ms=[runs[n][200]["p99_ms"] for n in worker_counts],
        worker_cpu_ms_per_round_trip=[runs[n][200]["worker_cpu_ms_per_round_trip"] for n in worker_counts],
        pg_cpu_ms_per_round_trip=[runs[n][200]["pg_cpu_ms_per_round_trip"] for n in worker_counts],
        load_average=[round(x, 1) for x in os.getloadavg()],
        lost=sum(r["lost"] for by_size in runs.values() for r in by_size.values()),
        reordered=sum(r["reordered"] for by_size in runs.values() for r in by_size.values()),
        scaling_1_to_2=round(runs[2][200]["round_trips_per_s"] / max(0.1, runs[1][200]["round_trips_per_s"]), 2),
        pg_case_writes_per_s=pg_writes,
        tinydb_case_writes_per_s=tiny_writes,
    )
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main("--quick" in sys.argv)), ensure_ascii=False))
