"""Case store benchmark (not run in CI).

For N = 1k, 10k, 100k cases: seed a store with N realistic cases (fast path:
the snapshot is written directly), open it, then time 2,000 ``create`` and
2,000 ``append_event`` calls (each one fsync'd), with no snapshot running;
then 2,000 more appends while background snapshots run every 500 writes.
Then conversation states (``put_state`` with 100 and with 10,000 states
stored: the cost must not grow; 200 chats writing at once), reminders (``due_reminders`` with 10,000
due, the longest stretch it holds the event loop, one owner's, the first 50)
and the outbox (``outbox_add``, ``outbox_claim`` with the outbox full).  Beside it, in the same run,
sqlite3 in WAL mode with synchronous=FULL does the same writes at the same
sizes (``id TEXT PRIMARY KEY, doc TEXT`` JSON; an event append is the same
read-modify-write: select, decode, append, encode, update, commit).

Open time and resident memory at 100k are measured in a fresh subprocess that
only opens the store.

    .venv/bin/python bench/store.py [--sizes 1000,10000,100000] [--ops 2000] [--states 10000]

The last line of output is one JSON object with the figures.  Targets:
write p99 <= 3 ms at 100k and within 3x of sqlite3; open 100k <= 3 s;
RSS 100k <= 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.caseid import new_case_id  # noqa: E402
from bot.store.logged_tinydb import LoggedTinyDBStore, seed_snapshot  # noqa: E402

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)

PLATFORMS = ["微博", "抖音", "小红书", "知乎", "百度贴吧", "微信公众号", "快手", "B站", "今日头条"]
PROVINCES = ["北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "山东", "福建", "河南"]
TYPES = {
    "rumor": ["rumor.exaggerated_difficulty", "rumor.product_quality", "rumor.executive"],
    "impersonation": ["impersonation.official_account", "impersonation.customer_service"],
    "extortion": ["extortion.paid_deletion"],
    "doxxing": ["doxxing.executive_privacy"],
    "clickbait": ["clickbait.misleading_title"],
}
STATUSES = ["draft", "submitted", "replied", "escalated", "closed", "closed", "closed"]
NOTES = [
    "已向平台提交举报材料，等待平台回复处理结果。",
    "平台回复已受理，预计七个工作日内处理完毕。",
    "补充营业执照副本和授权委托书。",
    "平台未在规定时限内处理，转向12377举报中心。",
    "侵权内容已删除，案件办结。",
    "对方账号仍在发布类似内容，继续跟进。",
]
DESCRIPTIONS = [
    "有自媒体账号发布文章称我公司资金链断裂、即将破产，与事实严重不符，已造成客户恐慌和合作方询问。",
    "有人冒用我公司名义开设账号，发布虚假招聘和优惠信息，多名消费者上当受骗后向我公司投诉。",
    "某账号以曝光负面为由联系我公司，要求支付费用或投放广告才肯删除相关帖子。",
    "网上出现我公司董事长的身份证号、家庭住址和手机号码，并伴有辱骂性言论。",
]


def make_case(rnd: random.Random, i: int, cid: str, created: datetime) -> dict:
    """A realistic case document, about 1.5 KB of JSON."""
    typ = rnd.choice(list(TYPES))
    status = rnd.choice(STATUSES)
    history = []
    when = created
    prev = "draft"
    for k in range(rnd.randint(2, 5)):
        when += timedelta(hours=rnd.randint(1, 72))
        to = status if k == 0 else None
        ev = {
            "when": when.isoformat(timespec="seconds"),
            "who": rnd.choice(["user", "bot", "operator"]),
            "channel": rnd.choice(["platform", "12377", "provincial"]),
            "note": rnd.choice(NOTES),
        }
        if to:
            ev.update({"from": prev, "to": to, "ref": "TS%08d" % rnd.randrange(10**8)})
        history.append(ev)
    doc = {
        "id": cid,
        "owner": {"messenger": rnd.choice(["telegram", "terminal"]), "user_id": str(100000 + i % 40000)},
        "status": status,
        "created_at": created.isoformat(timespec="seconds"),
        "updated_at": when.isoformat(timespec="seconds"),
        "enterprise": {
            "name": "某某%s科技有限公司" % rnd.choice(PROVINCES),
            "credit_code": "91330100MA2%07d" % i,
            "contact": "张经理",
            "phone": "138%08d" % rnd.randrange(10**8),
        },
        "type": typ,
        "subtype": rnd.choice(TYPES[typ]),
        "flags": rnd.sample(["extortion", "repeat", "minor_involved", "mass_spread"], rnd.randint(0, 2)),
        "platform": rnd.choice(PLATFORMS),
        "province": rnd.choice(PROVINCES),
        "description": rnd.choice(DESCRIPTIONS),
        "links": ["https://example.com/p/%d" % rnd.randrange(10**9) for _ in range(rnd.randint(1, 3))],
        "plan": ["platform", "12377"],
        "evidence": [
            {"kind": "screenshot", "title": "帖子截图%d" % j, "file": "ev/%012x.png" % rnd.randrange(16**12)}
            for j in range(rnd.randint(1, 3))
        ],
        "history": history,
    }
    if status == "closed":
        doc["closed_at"] = when.isoformat(timespec="seconds")
    if rnd.random() < 0.3 and status != "closed":
        doc["reminders"] = [
            {"case_id": cid, "kind": "follow_up", "due": (when + timedelta(days=7)).isoformat(timespec="seconds")}
        ]
    return doc


def make_cases(n: int, seed: int = 1):
    rnd = random.Random(seed)
    taken: set[str] = set()
    for i in range(n):
        created = T0 + timedelta(minutes=5 * i)
        cid = new_case_id(created, taken.__contains__)
        taken.add(cid)
        yield make_case(rnd, i, cid, created)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(seconds):
    return round(seconds * 1000, 3)


# -- huqi store ----------------------------------------------------------------


async def bench_store(data_dir: str, n: int, ops: int) -> dict:
    rnd = random.Random(n)
    t = time.perf_counter()
    store = LoggedTinyDBStore(data_dir)  # default settings
    open_s = time.perf_counter() - t
    ids = list(store._docs)
    new_docs = [make_case(rnd, n + i, "", T0) for i in range(ops)]
    for d in new_docs:
        del d["id"]
    create_lat, update_lat = [], []
    for d in new_docs:
        t = time.perf_counter()
        await store.create(d)
        create_lat.append(time.perf_counter() - t)
    for i in range(ops):
        cid = rnd.choice(ids)
        ev = {"who": "operator", "channel": "platform", "note": rnd.choice(NOTES), "ref": "TS%d" % i}
        t = time.perf_counter()
        await store.append_event(cid, ev)
        update_lat.append(time.perf_counter() - t)
    # The same appends again, now with a snapshot every ops/4 writes: the
    # snapshot is written by a background thread while the writes go on.
    store._compact_every = max(1, ops // 4)
    compacting_lat = []
    for i in range(ops):
        cid = rnd.choice(ids)
        ev = {"who": "operator", "channel": "platform", "note": rnd.choice(NOTES), "ref": "TC%d" % i}
        t = time.perf_counter()
        await store.append_event(cid, ev)
        compacting_lat.append(time.perf_counter() - t)
    if store._compactor is not None:
        store._compactor.join()
    t = time.perf_counter()
    await store.list(type="rumor", province="浙江", status="submitted")
    query_s = time.perf_counter() - t
    t = time.perf_counter()
    await store.close()  # compacts: a full snapshot
    close_s = time.perf_counter() - t
    return {
        "open_s": round(open_s, 3),
        "create_lat": create_lat,
        "update_lat": update_lat,
        "compacting_lat": compacting_lat,
        "query_ms": ms(query_s),
        "close_compact_s": round(close_s, 3),
    }


# -- states, reminders, outbox --------------------------------------------------------


def make_state(rnd: random.Random) -> dict:
    """A conversation state about the size of a real one (~0.6 KB)."""
    return {
        "state": {"step": "describe", "answers": {"description": rnd.choice(DESCRIPTIONS),
                                                  "platform": rnd.choice(PLATFORMS),
                                                  "province": rnd.choice(PROVINCES)}},
        "buttons": {str(k): f"choice:{k}" for k in range(6)},
        "next": 7,
        "reminded": [],
    }


async def timed(calls) -> list:
    lat = []
    for call in calls:
        t = time.perf_counter()
        await call()
        lat.append(time.perf_counter() - t)
    return lat


async def max_block(coro) -> tuple:
    """(result, seconds it took, longest stretch the loop was held meanwhile
    in wall time and in this thread's CPU time; the difference is the OS
    giving the core to other processes)."""
    gaps: list = []
    cpu_gaps: list = []
    done = asyncio.Event()

    async def monitor() -> None:
        while not done.is_set():
            t, c = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0)
            gaps.append(time.perf_counter() - t)
            cpu_gaps.append(time.thread_time() - c)

    task = asyncio.create_task(monitor())
    await asyncio.sleep(0)
    t = time.perf_counter()
    result = await coro
    took = time.perf_counter() - t
    done.set()
    await task
    return result, took, max(gaps, default=took), max(cpu_gaps, default=took)


async def bench_states(data_dir: str, n: int, ops: int) -> dict:
    """put_state with 100 and with ``n`` states stored: two stores side by
    side, written alternately so the machine's noise hits both alike."""
    rnd = random.Random(5)
    few_store = LoggedTinyDBStore(data_dir + "-100")
    store = LoggedTinyDBStore(data_dir)
    await few_store.put_states({f"telegram:{i}": make_state(rnd) for i in range(100)})
    await store.put_states({f"telegram:{i}": make_state(rnd) for i in range(n)})
    few, many = [], []
    for _ in range(ops):
        for target, size, lat in ((few_store, 100, few), (store, n, many)):
            state = make_state(rnd)
            key = f"telegram:{rnd.randrange(size)}"
            t = time.perf_counter()
            await target.put_state(key, state)
            lat.append(time.perf_counter() - t)
    gets = await timed((lambda k=rnd.randrange(n): store.get_state(f"telegram:{k}")) for _ in range(ops))
    # 200 chats at once, each writing its state 5 times (writes share fsyncs).
    together: list = []

    async def chat(k: int) -> None:
        for _ in range(5):
            state = make_state(rnd)
            t = time.perf_counter()
            await store.put_state(f"telegram:{k}", state)
            together.append(time.perf_counter() - t)

    t = time.perf_counter()
    await asyncio.gather(*(chat(k) for k in range(200)))
    together_s = time.perf_counter() - t
    assert await store.count_states() == n
    await few_store.close()
    await store.close()
    t = time.perf_counter()
    store = LoggedTinyDBStore(data_dir)
    open_s = time.perf_counter() - t
    await store.close()
    return {"few": few, "many": many, "get": gets, "open_s": open_s,
            "together": together, "together_per_s": len(together) / together_s}


async def bench_reminders(data_dir: str, n: int, ops: int) -> dict:
    now = T0 + timedelta(days=3650)
    cases = []
    for c in make_cases(n, seed=3):
        c["status"] = "submitted"
        c.pop("closed_at", None)
        c["reminders"] = [{"case_id": c["id"], "kind": "no_news", "due": c["created_at"]}]
        cases.append(c)
    seed_snapshot(data_dir, cases)
    owner = cases[n // 2]["owner"]
    del cases
    store = LoggedTinyDBStore(data_dir, compact_on_close=False)
    rems, took, block, cpu_block = await max_block(store.due_reminders(now))
    assert len(rems) == n
    first50 = await timed((lambda: store.due_reminders(now, limit=50)) for _ in range(50))
    mine = await timed((lambda: store.due_reminders(now, owner=owner)) for _ in range(50))
    none_due = await timed((lambda: store.due_reminders(T0 - timedelta(days=1))) for _ in range(50))
    # The outbox: n adds (each one fsync'd), then claim 50 at a time and
    # mark them sent until it is empty.
    adds = await timed(
        (lambda i=i: store.outbox_add({"case_id": rems[i]["case_id"], "text": "提醒"}, now=now)) for i in range(n)
    )
    claims = []
    t = time.perf_counter()
    while True:
        t1 = time.perf_counter()
        got = await store.outbox_claim(now, limit=50)
        claims.append(time.perf_counter() - t1)
        if not got:
            break
        for m in got:
            await store.outbox_sent(m["id"], now)
    drain_s = time.perf_counter() - t
    await store.close()
    return {"all_s": took, "block_s": block, "cpu_block_s": cpu_block, "first50": first50, "mine": mine, "none": none_due,
            "adds": adds, "claims": claims, "drain_per_s": n / drain_s}


# -- sqlite3 baseline --------------------------------------------------------------


def bench_sqlite(path: str, cases: list, n: int, ops: int) -> dict:
    rnd = random.Random(n)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE cases (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO cases VALUES (?, ?)",
        ((d["id"], json.dumps(d, ensure_ascii=False, separators=(",", ":"))) for d in cases),
    )
    con.execute("COMMIT")
    ids = [d["id"] for d in cases]
    taken = set(ids)
    new_docs = [make_case(rnd, n + i, "", T0) for i in range(ops)]
    create_lat, update_lat = [], []
    for d in new_docs:
        t = time.perf_counter()
        d["id"] = new_case_id(T0, taken.__contains__)
        taken.add(d["id"])
        con.execute("BEGIN IMMEDIATE")
        con.execute(
            "INSERT INTO cases VALUES (?, ?)",
            (d["id"], json.dumps(d, ensure_ascii=False, separators=(",", ":"))),
        )
        con.execute("COMMIT")
        create_lat.append(time.perf_counter() - t)
    for i in range(ops):
        cid = rnd.choice(ids)
        ev = {"who": "operator", "channel": "platform", "note": rnd.choice(NOTES), "ref": "TS%d" % i}
        t = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        (raw,) = con.execute("SELECT doc FROM cases WHERE id = ?", (cid,)).fetchone()
        doc = json.loads(raw)
        doc["history"].append(ev)
        doc["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        con.execute(
            "UPDATE cases SET doc = ? WHERE id = ?",
            (json.dumps(doc, ensure_ascii=False, separators=(",", ":")), cid),
        )
        con.execute("COMMIT")
        update_lat.append(time.perf_counter() - t)
    con.close()
    return {"create_lat": create_lat, "update_lat": update_lat}


# -- fresh-process open + RSS ------------------------------------------------------

PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
from bot.store.logged_tinydb import LoggedTinyDBStore
t = time.perf_counter()
store = LoggedTinyDBStore(sys.argv[1], compact_on_close=False)
open_s = time.perf_counter() - t
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
kb = lambda k: int(status[k].split()[0])
print(json.dumps({"cases": len(store), "open_s": open_s,
                  "rss_mb": kb("VmRSS") / 1024, "hwm_mb": kb("VmHWM") / 1024}))
"""


def probe(data_dir: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, data_dir, str(ROOT)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--dir", default=None, help="where to put the data (default: a temp dir)")
    ap.add_argument("--states", type=int, default=10000,
                    help="stored states and due reminders for that part (0: skip it)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base = tempfile.mkdtemp(prefix="huqi-bench-", dir=args.dir)
    result: dict = {}
    started = time.perf_counter()
    try:
        for n in sizes:
            label = f"{n // 1000}k" if n % 1000 == 0 else str(n)
            t = time.perf_counter()
            cases = list(make_cases(n))
            size = sum(len(json.dumps(c, ensure_ascii=False).encode()) for c in cases[:1000]) / min(n, 1000)
            data_dir = os.path.join(base, f"store-{label}")
            seed_snapshot(data_dir, cases)
            print(f"[{label}] seeded {n} cases (avg {size:.0f} B JSON) in {time.perf_counter() - t:.1f} s", flush=True)

            p = probe(data_dir)
            print(f"[{label}] fresh process: open {p['open_s']:.2f} s, RSS {p['rss_mb']:.0f} MB "
                  f"(peak {p['hwm_mb']:.0f} MB)", flush=True)

            s = asyncio.run(bench_store(data_dir, n, args.ops))
            q = bench_sqlite(os.path.join(base, f"sqlite-{label}.db"), cases, n, args.ops)
            del cases
            w = s["create_lat"] + s["update_lat"]
            qw = q["create_lat"] + q["update_lat"]
            figures = {
                f"write_p50_ms_{label}": ms(pct(w, 50)),
                f"write_p99_ms_{label}": ms(pct(w, 99)),
                f"create_p50_ms_{label}": ms(pct(s["create_lat"], 50)),
                f"create_p99_ms_{label}": ms(pct(s["create_lat"], 99)),
                f"update_p50_ms_{label}": ms(pct(s["update_lat"], 50)),
                f"update_p99_ms_{label}": ms(pct(s["update_lat"], 99)),
                f"write_max_ms_{label}": ms(max(w)),
                f"update_p50_ms_{label}_while_compacting": ms(pct(s["compacting_lat"], 50)),
                f"update_p99_ms_{label}_while_compacting": ms(pct(s["compacting_lat"], 99)),
                f"update_max_ms_{label}_while_compacting": ms(max(s["compacting_lat"])),
                f"sqlite_write_p50_ms_{label}": ms(pct(qw, 50)),
                f"sqlite_write_p99_ms_{label}": ms(pct(qw, 99)),
                f"sqlite_create_p99_ms_{label}": ms(pct(q["create_lat"], 99)),
                f"sqlite_update_p99_ms_{label}": ms(pct(q["update_lat"], 99)),
                f"open_s_{label}": round(p["open_s"], 3),
                f"rss_mb_{label}": round(p["rss_mb"], 1),
                f"rss_peak_mb_{label}": round(p["hwm_mb"], 1),
                f"query_ms_{label}": s["query_ms"],
                f"close_compact_s_{label}": s["close_compact_s"],
                f"doc_bytes_{label}": round(size),
            }
            for k, v in figures.items():
                print(f"  {k} = {v}", flush=True)
            result.update(figures)
            shutil.rmtree(data_dir, ignore_errors=True)
        if args.states:
            n = args.states
            st = asyncio.run(bench_states(os.path.join(base, "states"), n, args.ops))
            rm = asyncio.run(bench_reminders(os.path.join(base, "reminders"), n, args.ops))
            label = f"{n // 1000}k" if n % 1000 == 0 else str(n)
            figures = {
                "put_state_p50_ms_100": ms(pct(st["few"], 50)),
                "put_state_p99_ms_100": ms(pct(st["few"], 99)),
                f"put_state_p50_ms_{label}": ms(pct(st["many"], 50)),
                f"put_state_p99_ms_{label}": ms(pct(st["many"], 99)),
                f"put_state_p50_ratio_{label}_vs_100": round(pct(st["many"], 50) / pct(st["few"], 50), 2),
                f"get_state_p50_ms_{label}": ms(pct(st["get"], 50)),
                "put_state_200_chats_per_s": round(st["together_per_s"], 1),
                "put_state_200_chats_p99_ms": ms(pct(st["together"], 99)),
                f"open_s_{label}_states": round(st["open_s"], 3),
                f"due_reminders_all_ms_{label}_due": ms(rm["all_s"]),
                f"due_reminders_max_block_ms_{label}_due": ms(rm["block_s"]),
                f"due_reminders_max_block_cpu_ms_{label}_due": ms(rm["cpu_block_s"]),
                f"due_reminders_first50_p50_ms_{label}_due": ms(pct(rm["first50"], 50)),
                f"due_reminders_one_owner_p50_ms_{label}_due": ms(pct(rm["mine"], 50)),
                f"due_reminders_none_due_p50_ms_{label}": ms(pct(rm["none"], 50)),
                "outbox_add_p50_ms": ms(pct(rm["adds"], 50)),
                "outbox_add_p99_ms": ms(pct(rm["adds"], 99)),
                f"outbox_claim50_p50_ms_{label}_queued": ms(pct(rm["claims"], 50)),
                f"outbox_claim50_max_ms_{label}_queued": ms(max(rm["claims"])),
                "outbox_claim_sent_per_s": round(rm["drain_per_s"], 1),
            }
            for k, v in figures.items():
                print(f"  {k} = {v}", flush=True)
            result.update(figures)
        result["bench_s"] = round(time.perf_counter() - started, 1)
        result["cpus"] = os.cpu_count()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
