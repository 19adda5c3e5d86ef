"""Durability of the TinyDB case store: SIGKILL at random moments, torn log
lines, the data-directory lock, file modes, compaction."""

import asyncio
import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.store import StoreCorrupt, StoreError, StoreLocked, open_store
from bot.store.logged_tinydb import LOG, SNAPSHOT, LoggedTinyDBStore

ROOT = Path(__file__).resolve().parent.parent
OWNER = {"messenger": "telegram", "user_id": "42"}
T0 = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)

# The writer: opens the store, then loops over random writes and prints one
# line per write *after* the write has returned (= acknowledged).
WRITER = textwrap.dedent(
    """
    import asyncio, json, os, random, sys
    from bot.store.logged_tinydb import LoggedTinyDBStore

    def ack(doc):
        rems = {r["kind"]: r["due"] for r in doc.get("reminders", [])}
        line = {"id": doc["id"], "n": doc.get("n"), "h": len(doc["history"]),
                "s": doc["status"], "r": rems}
        os.write(1, (json.dumps(line) + "\\n").encode())

    async def main(data_dir, seed):
        rnd = random.Random(seed)
        store = LoggedTinyDBStore(data_dir, compact_every=40)
        ids = [c["id"] for c in await store.list()]
        os.write(1, b'{"ready": true}\\n')
        i = 0
        while True:
            i += 1
            op = rnd.random()
            if op < 0.25 or not ids:
                doc = await store.create({
                    "owner": {"messenger": "telegram", "user_id": "42"},
                    "n": 0, "type": "rumor", "platform": "微博",
                    "enterprise": {"name": "某某科技有限公司", "note": "造谣" * rnd.randint(1, 200)},
                })
                ids.append(doc["id"])
            elif op < 0.55:
                cid = rnd.choice(ids)
                cur = await store.get(cid)
                doc = await store.update(cid, {"n": cur["n"] + 1, "blob": "证据" * rnd.randint(1, 300)})
            elif op < 0.9:
                to = rnd.choice([None, None, "submitted", "closed", "replied"])
                doc = await store.append_event(rnd.choice(ids), {"note": f"e{i}", "to": to})
            else:
                cid = rnd.choice(ids)
                await store.set_reminder(cid, f"2026-12-{rnd.randint(1, 28):02d}T00:00:00+00:00",
                                         rnd.choice(["follow_up", "deadline"]))
                doc = await store.get(cid)
            ack(doc)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def state_of(doc):
    rems = {r["kind"]: r["due"] for r in doc.get("reminders", [])}
    return {"n": doc.get("n"), "h": len(doc["history"]), "s": doc["status"], "r": rems}


def spawn_writer(data_dir, seed, out_path):
    out = open(out_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir), str(seed)],
        stdout=out,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    out.close()
    return proc


def read_acks(out_path):
    """Complete lines only: a line cut by the kill was not acknowledged."""
    data = Path(out_path).read_bytes()
    lines = data.split(b"\n")[:-1]
    return [json.loads(line) for line in lines]


def wait_ready(proc, out_path, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(out_path).read_bytes().startswith(b'{"ready": true}\n'):
            return True
        if proc.poll() is not None:
            raise AssertionError("writer died: " + proc.stderr.read().decode(errors="replace"))
        time.sleep(0.005)
    raise AssertionError("writer did not start")


def test_nothing_acknowledged_is_lost_across_30_kills(tmp_path):
    data_dir = tmp_path / "data"
    rnd = random.Random(20261105)
    acked: dict[str, dict] = {}  # case id -> last known state
    total_acks = 0
    kills = 0
    started = time.monotonic()
    while kills < 30:
        out_path = tmp_path / f"out{kills}.txt"
        proc = spawn_writer(data_dir, rnd.randrange(10**9), out_path)
        if kills % 6 == 5:
            # Sometimes kill while the store is still opening / replaying.
            time.sleep(rnd.uniform(0.0, 0.25))
        else:
            wait_ready(proc, out_path)
            time.sleep(rnd.uniform(0.02, 0.35))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        kills += 1

        acks = [a for a in read_acks(out_path) if "id" in a]
        total_acks += len(acks)
        for a in acks:
            acked[a["id"]] = {k: a[k] for k in ("n", "h", "s", "r")}

        # Open the store (replaying logs, cutting a torn tail) and check that
        # every acknowledged write is there.  Alternate between closing with
        # and without compaction so logs also pile up across kills.
        store = LoggedTinyDBStore(str(data_dir), compact_on_close=kills % 3 == 0)
        try:
            current = {c["id"]: state_of(c) for c in asyncio.run(_list(store))}
        finally:
            asyncio.run(store.close())
        missing = set(acked) - set(current)
        assert not missing, f"kill {kills}: acknowledged cases lost: {sorted(missing)}"
        # At most one write was in flight (written, not yet acknowledged):
        # the store may be exactly one write ahead of the acks, never behind.
        differing = [cid for cid in current if current[cid] != acked.get(cid)]
        assert len(differing) <= 1, f"kill {kills}: {len(differing)} cases differ from their acks"
        for cid in differing:
            if cid in acked:
                before, after = acked[cid], current[cid]
                assert (
                    after["n"] == before["n"] + 1
                    or after["h"] == before["h"] + 1
                    or after["r"] != before["r"]
                ), f"kill {kills}: {cid} is not one write ahead: {before} -> {after}"
        acked = current
    elapsed = time.monotonic() - started
    assert total_acks > 300, f"only {total_acks} writes acknowledged; the test proves little"
    assert elapsed < 90


async def _list(store):
    return await store.list()


async def test_torn_last_line_is_cut_off(tmp_path):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    ids = [(await store.create({"owner": OWNER, "k": i}))["id"] for i in range(3)]
    await store.close()
    log_path = d / LOG
    good = log_path.read_bytes()
    assert good.count(b"\n") == 1 + 3  # the {"begin": ...} header and 3 entries

    # A write that died half-way: no newline at the end.
    whole = json.dumps({"seq": 4, "op": "put", "table": "cases", "id": "HQ-2611-2222",
                        "doc": {"id": "HQ-2611-2222", "owner": OWNER}}).encode()
    with open(log_path, "ab") as f:
        f.write(whole[: len(whole) // 2])
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    assert sorted(c["id"] for c in await store.list()) == sorted(ids)
    assert log_path.read_bytes() == good  # truncated to the last good newline
    # The store keeps working on top of the repaired log.
    more = await store.create({"owner": OWNER, "k": 3})
    await store.close()

    # A garbled last line *with* a newline (e.g. zero-filled block), too.
    with open(log_path, "ab") as f:
        f.write(b'{"seq": 9, "op": "pu\x00\x00\x00\n')
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    assert sorted(c["id"] for c in await store.list()) == sorted(ids + [more["id"]])
    await store.close()
    assert log_path.read_bytes().endswith(b"}\n")


async def test_damage_before_the_last_line_is_not_silently_dropped(tmp_path):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    for i in range(3):
        await store.create({"owner": OWNER, "k": i})
    await store.close()
    lines = (d / LOG).read_bytes().split(b"\n")
    lines[1] = lines[1][:20]  # damage the middle entry
    (d / LOG).write_bytes(b"\n".join(lines))
    with pytest.raises(StoreCorrupt):
        LoggedTinyDBStore(str(d))
    # ... and the failed open released the lock.
    with pytest.raises(StoreCorrupt):
        LoggedTinyDBStore(str(d))


LOCKER = textwrap.dedent(
    """
    import sys, time
    from bot.store import open_store, StoreLocked
    try:
        store = open_store(sys.argv[1])
    except StoreLocked as exc:
        print("LOCKED", exc, flush=True)
        sys.exit(3)
    print("OPEN", flush=True)
    if sys.argv[2] == "hold":
        time.sleep(60)
    """
)


def run_locker(data_dir, mode="try", **kw):
    return subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(data_dir), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        **kw,
    )


async def test_second_process_gets_store_locked(tmp_path):
    d = tmp_path / "data"
    store = open_store(str(d))
    try:
        proc = run_locker(d)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 3, err.decode()
        msg = out.decode()
        assert "已被另一个 huqi 进程使用" in msg
        assert f"pid {os.getpid()}" in msg
        assert str(d) in msg
        # A second open in the same process is refused as well.
        with pytest.raises(StoreLocked):
            open_store(str(d))
    finally:
        await store.close()
    # Released on close.
    proc = run_locker(d)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.startswith(b"OPEN"), err.decode()


async def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    d = tmp_path / "data"
    holder = run_locker(d, "hold")
    assert holder.stdout.readline().startswith(b"OPEN")
    with pytest.raises(StoreLocked) as info:
        open_store(str(d))
    assert info.value.pid == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    holder.stderr.close()
    store = open_store(str(d))
    await store.close()


async def test_files_are_private_whatever_the_umask(tmp_path):
    d = tmp_path / "data"
    old = os.umask(0)
    try:
        store = LoggedTinyDBStore(str(d), compact_every=5)
        for i in range(12):  # enough to rotate and snapshot in the background
            await store.create({"owner": OWNER, "k": i})
        await store.close()
        store = LoggedTinyDBStore(str(d))
        await store.create({"owner": OWNER, "k": 99})
        names = sorted(os.listdir(d))
        assert {SNAPSHOT, LOG, "huqi.lock"} <= set(names)
        for name in names:
            mode = stat.S_IMODE(os.stat(d / name).st_mode)
            assert mode == 0o600, f"{name}: {oct(mode)}"
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        await store.close()
    finally:
        os.umask(old)


async def test_background_compaction_and_reopen(tmp_path):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d), compact_every=25)
    case = await store.create({"owner": OWNER, "n": 0})
    others = [await store.create({"owner": OWNER, "n": i}) for i in range(10)]
    for i in range(200):
        await store.append_event(case["id"], {"note": f"e{i}"})
    await store.set_reminder(case["id"], T0, "follow_up")
    store._compactor.join()
    # The log was rotated and compacted: only the tail since the last
    # snapshot remains; no rotated segments are left behind.
    assert store.log_entries < 25
    assert not [n for n in os.listdir(d) if n.startswith(LOG + ".")]
    expected = await store.list()
    # Reopen without the close-time compaction: snapshot + log tail.
    store._compact_on_close = False
    await store.close()
    store = LoggedTinyDBStore(str(d))
    assert await store.list() == expected
    assert len((await store.get(case["id"]))["history"]) == 200
    assert len(await store.due_reminders(T0)) == 1
    assert len(expected) == 1 + len(others)
    await store.close()
    # After a compacting close the log holds no entries (only its header)
    # and the snapshot is valid JSON.
    assert [json.loads(x) for x in (d / LOG).read_bytes().splitlines()] == [{"begin": 212}]  # 1 + 10 + 200 + 1 writes
    snap = json.loads((d / SNAPSHOT).read_text("utf-8"))
    assert set(snap["cases"]) == {c["id"] for c in expected}
    assert snap["cases"][case["id"]]["history"][-1]["note"] == "e199"


async def test_interrupted_compaction_is_recovered(tmp_path):
    """A crash after rotating the log but before the new snapshot replaced
    the old one: the rotated segment is replayed on open."""
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    a = await store.create({"owner": OWNER, "n": 1})
    store._rotate()  # rotate, then "crash" before writing the snapshot
    b = await store.create({"owner": OWNER, "n": 2})
    await store.update(a["id"], {"n": 5})
    await store.close()
    assert [n for n in os.listdir(d) if n.startswith(LOG + ".")]
    (d / (SNAPSHOT + ".tmp")).write_bytes(b'{"meta": half')  # a half-written snapshot
    store = LoggedTinyDBStore(str(d))
    assert (await store.get(a["id"]))["n"] == 5
    assert (await store.get(b["id"]))["n"] == 2
    await store.close()
    assert sorted(os.listdir(d)) == sorted([SNAPSHOT, LOG, "huqi.lock"])
    store = LoggedTinyDBStore(str(d))
    assert (await store.get(a["id"]))["n"] == 5
    await store.close()


async def test_logs_do_not_contain_case_content(tmp_path, caplog):
    d = tmp_path / "data"
    caplog.set_level("DEBUG", logger="huqi")
    store = LoggedTinyDBStore(str(d), compact_every=3)
    secret = {"phone": "13912345678", "id_number": "330102199001011234", "address": "文三路90号"}
    c = await store.create({"owner": OWNER, "enterprise": secret})
    await store.update(c["id"], {"evidence": [{"file": "截图.png", "note": "文三路90号"}]})
    await store.append_event(c["id"], {"note": "13912345678", "to": "closed"})
    await store.set_reminder(c["id"], T0, "follow_up")
    await store.purge(timedelta(days=-1))
    await store.close()
    text = caplog.text
    assert c["id"] in text
    for value in ("13912345678", "330102199001011234", "文三路90号", "截图.png"):
        assert value not in text


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b[:-4],  # closing lines missing
        lambda b: b"garbage" + b,  # not a snapshot
        lambda b: b.replace(b'"index": {', b'"index": ['),
        lambda b: b.replace(b'"owner":"telegram:42"', b'"owner":"telegram:42'),  # bad index JSON
    ],
)
async def test_damaged_snapshot_is_refused(tmp_path, damage):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d))
    for i in range(5):
        await store.create({"owner": OWNER, "k": i})
    await store.close()
    snap = d / SNAPSHOT
    original = snap.read_bytes()
    damaged = damage(original)
    assert damaged != original
    snap.write_bytes(damaged)
    with pytest.raises(StoreCorrupt):
        LoggedTinyDBStore(str(d))


async def test_empty_store_round_trips(tmp_path):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d))
    c = await store.create({"owner": OWNER})
    await store.purge(timedelta(days=-1))  # nothing closed: nothing purged
    await store.update(c["id"], {"status": "closed"})
    assert await store.purge(timedelta(days=-1)) == [c["id"]]
    await store.close()
    assert json.loads((d / SNAPSHOT).read_text()) == {
        "meta": {"format": "huqi-cases", "version": 2, "seq": 3, "cases": 0, "states": 0,
                 "outbox": 0, "outbox_next": 1},
        "index": {},
        "cases": {},
        "states": {},
        "outbox": {},
        "retired": [c["id"]],
    }
    store = LoggedTinyDBStore(str(d))
    assert await store.list() == []
    await store.close()


# -- a missing snapshot is noticed ----------------------------------------------------


async def _ten_cases_then_one(d):
    store = LoggedTinyDBStore(str(d))
    ids = [(await store.create({"owner": OWNER, "k": i}))["id"] for i in range(10)]
    await store.close()  # compacts: the ten are in cases.json only
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    ids.append((await store.create({"owner": OWNER, "k": 10}))["id"])
    await store.close()
    return ids


async def test_missing_snapshot_is_refused_not_silently_emptied(tmp_path):
    d = tmp_path / "data"
    ids = await _ten_cases_then_one(d)
    snap = d / SNAPSHOT
    saved = snap.read_bytes()
    snap.unlink()
    log_before = (d / LOG).read_bytes()
    for _ in range(2):  # refused every time, and the failed open released the lock
        with pytest.raises(StoreCorrupt) as err:
            LoggedTinyDBStore(str(d))
        assert SNAPSHOT in str(err.value)
    assert (d / LOG).read_bytes() == log_before  # nothing compacted away
    assert not snap.exists()
    snap.write_bytes(saved)  # restored from a backup: everything is there
    store = LoggedTinyDBStore(str(d))
    assert sorted(c["id"] for c in await store.list()) == sorted(ids)
    await store.close()


async def test_missing_snapshot_with_an_empty_log_is_refused(tmp_path):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d))
    for i in range(3):
        await store.create({"owner": OWNER, "k": i})
    await store.put_state("telegram:1", {"n": 1})
    await store.close()  # compacted: the log has no entries left
    (d / SNAPSHOT).unlink()
    with pytest.raises(StoreCorrupt, match=SNAPSHOT):
        LoggedTinyDBStore(str(d))


async def test_old_log_without_header_and_missing_snapshot_is_refused(tmp_path):
    d = tmp_path / "data"
    await _ten_cases_then_one(d)
    (d / SNAPSHOT).unlink()
    lines = (d / LOG).read_bytes().splitlines(keepends=True)
    assert json.loads(lines[0]) == {"begin": 10}
    (d / LOG).write_bytes(b"".join(lines[1:]))  # a log written before headers existed
    with pytest.raises(StoreCorrupt, match=SNAPSHOT):
        LoggedTinyDBStore(str(d))


async def test_missing_log_segment_is_refused(tmp_path):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    await store.create({"owner": OWNER, "n": 1})
    store._rotate()  # segment cases.log.1; crash before the snapshot
    await store.create({"owner": OWNER, "n": 2})
    store._rotate()  # segment cases.log.2
    await store.create({"owner": OWNER, "n": 3})
    await store.close()
    segments = sorted(n for n in os.listdir(d) if n.startswith(LOG + "."))
    assert segments == [LOG + ".1", LOG + ".2"]
    (d / segments[0]).unlink()
    with pytest.raises(StoreCorrupt):
        LoggedTinyDBStore(str(d))


# -- states and the outbox survive SIGKILL --------------------------------------------

# Writes states and outbox changes from 8 concurrent tasks (so writes share
# fsyncs); one line per acknowledged write.
STATE_WRITER = textwrap.dedent(
    """
    import asyncio, json, os, random, sys
    from bot.store.logged_tinydb import LoggedTinyDBStore

    def ack(**kw):
        os.write(1, (json.dumps(kw) + "\\n").encode())

    async def task(store, rnd, j, run):
        n = run * 10**6  # grows across runs too
        while True:
            n += 1
            op = rnd.random()
            key = f"telegram:{j}-{rnd.randrange(5)}"  # each task its own keys
            if op < 0.5:
                await store.put_state(key, {"n": n, "text": "对话" * rnd.randint(1, 200)})
                ack(state=key, n=n)
            elif op < 0.55:
                await store.delete_state(key)
                ack(state=key, n=None)
            elif op < 0.8:
                m = await store.outbox_add({"text": "通知", "n": n}, now="2026-11-05T08:00:00+00:00")
                ack(msg=m["id"], status="pending")
            else:
                got = await store.outbox_claim("2026-11-05T09:00:00+00:00", limit=3)
                for m in got:
                    await store.outbox_sent(m["id"], "2026-11-05T09:00:00+00:00")
                    ack(msg=m["id"], status="sent")

    async def main(data_dir, seed, run):
        store = LoggedTinyDBStore(data_dir, compact_every=60)
        ack(ready=True)
        await asyncio.gather(*(task(store, random.Random(seed + j), j, run) for j in range(TASKS)))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
).replace("TASKS", "8")


def test_states_and_outbox_survive_kills(tmp_path):
    data_dir = tmp_path / "data"
    rnd = random.Random(20261201)
    states: dict = {}  # key -> last acknowledged n (None: deleted)
    msgs: dict = {}  # id -> last acknowledged status
    total = 0
    for kill in range(10):
        out_path = tmp_path / f"out{kill}.txt"
        out = open(out_path, "wb")
        proc = subprocess.Popen(
            [sys.executable, "-c", STATE_WRITER, str(data_dir), str(rnd.randrange(10**9)), str(kill)],
            stdout=out, stderr=subprocess.PIPE, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        out.close()
        wait_ready(proc, out_path)
        time.sleep(rnd.uniform(0.05, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        for a in read_acks(out_path):
            total += 1
            if "state" in a:
                states[a["state"]] = a["n"]
            elif "msg" in a:
                msgs[a["msg"]] = a["status"]
        store = LoggedTinyDBStore(str(data_dir), compact_on_close=kill % 2 == 0)

        async def check():
            # At most one write per task was in flight when the process died.
            ahead = 0
            for key, n in states.items():
                got = await store.get_state(key)
                if (got or {}).get("n") != n:
                    ahead += 1
                    assert got is None or got["n"] > (n or 0), f"kill {kill}: {key} went back"
            for mid, status in msgs.items():
                got = await store.outbox_get(mid)
                assert got is not None, f"kill {kill}: acknowledged message {mid} lost"
                if status == "sent":
                    assert got["status"] == "sent", f"kill {kill}: {mid} sent but now {got['status']}"
                assert got["status"] != "claimed"  # released on open
            assert ahead <= 8, f"kill {kill}: {ahead} states differ from their acks"
            for key in states:
                got = await store.get_state(key)
                states[key] = got["n"] if got else None
            for m in await store.outbox_list():
                msgs[m["id"]] = m["status"]
            await store.close()

        asyncio.run(check())
    assert total > 100, f"only {total} writes acknowledged; the test proves little"


async def test_ping_notices_a_vanished_data_directory(tmp_path):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    await store.put_state("telegram:1", {"n": 1})
    await store.ping()
    (d / LOG).unlink()
    with pytest.raises(StoreError):
        await store.ping()
    for name in os.listdir(d):
        os.unlink(d / name)
    os.rmdir(d)
    with pytest.raises(StoreError):
        await store.ping()
    await store.close()  # without compaction: nothing to write


async def test_files_of_the_previous_version_open(tmp_path):
    """A v1 snapshot and a log without a header (written before states and
    the outbox existed) open, and are upgraded by the next compaction."""
    d = tmp_path / "data"
    d.mkdir(mode=0o700)
    a = {"id": "HQ-2611-2222", "owner": {"messenger": "telegram", "user_id": "42"}, "status": "submitted",
         "created_at": "2026-11-05T08:00:00+00:00", "updated_at": "2026-11-05T08:00:00+00:00", "history": [],
         "reminders": [{"case_id": "HQ-2611-2222", "kind": "no_news", "due": "2026-11-12T08:00:00+00:00"}]}
    ix = {"owner": "telegram:42", "status": "submitted", "created_at": a["created_at"],
          "updated_at": a["updated_at"], "reminders": a["reminders"]}
    meta = {"format": "huqi-cases", "version": 1, "seq": 2, "cases": 1}
    (d / SNAPSHOT).write_text(
        '{"meta": %s,\n"index": {\n"%s": %s\n},\n"cases": {\n"%s": %s\n}}\n'
        % (json.dumps(meta), a["id"], json.dumps(ix), a["id"], json.dumps(a)), "utf-8")
    b = dict(a, id="HQ-2611-3333", reminders=[])
    (d / LOG).write_text(json.dumps({"seq": 3, "op": "put", "table": "cases", "id": b["id"], "doc": b}) + "\n")
    store = LoggedTinyDBStore(str(d))
    assert sorted(c["id"] for c in await store.list()) == [a["id"], b["id"]]
    assert [r["case_id"] for r in await store.due_reminders("2026-12-01T00:00:00+00:00")] == [a["id"]]
    await store.put_state("telegram:42", {"step": "start"})
    await store.close()
    assert json.loads((d / SNAPSHOT).read_text("utf-8"))["meta"]["version"] == 2
    store = LoggedTinyDBStore(str(d))
    assert len(await store.list()) == 2
    assert await store.get_state("telegram:42") == {"step": "start"}
    await store.close()


async def test_duplicated_or_skipped_log_entries_are_refused(tmp_path):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    for i in range(3):
        await store.create({"owner": OWNER, "k": i})
    await store.close()
    header, e1, e2, e3 = (d / LOG).read_bytes().splitlines(keepends=True)
    for damaged in (header + e1 + e2 + e1 + e3, header + e1 + e3):
        (d / LOG).write_bytes(damaged)
        with pytest.raises(StoreCorrupt):
            LoggedTinyDBStore(str(d))
    (d / LOG).write_bytes(header + e1 + e2 + e3)
    store = LoggedTinyDBStore(str(d))
    assert len(await store.list()) == 3
    await store.close()


async def test_concurrent_writes_share_fsyncs_and_all_land(tmp_path, monkeypatch):
    d = tmp_path / "data"
    store = LoggedTinyDBStore(str(d), compact_on_close=False)
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    case = await store.create({"owner": OWNER, "n": 0})
    calls.clear()
    await asyncio.gather(
        *(store.put_state(f"telegram:{i}", {"i": i}) for i in range(100)),
        *(store.append_event(case["id"], {"note": f"e{i}"}) for i in range(100)),
    )
    assert len(calls) < 100  # group commit: far fewer fsyncs than writes
    assert len((await store.get(case["id"]))["history"]) == 100  # no append lost
    await store.close()
    monkeypatch.undo()
    store = LoggedTinyDBStore(str(d))
    assert await store.count_states() == 100
    assert [e["note"] for e in (await store.get(case["id"]))["history"]] == [f"e{i}" for i in range(100)]
    await store.close()
    # Writes after close are refused cleanly.
    with pytest.raises(StoreError):
        await store.put_state("telegram:1", {})
