"""The PostgreSQL store where it differs from the embedded ones: several
store instances (as several workers would hold) on one real database,
advisory locks, the outbox's claims, migrations, the append-only history
under the service role's grants, an unreachable server."""

import asyncio
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from bot.store import CaseNotFound, StoreError, open_store
from bot.store.migrations import LATEST, SchemaOutdated, check_schema, migrate
from tests.pg import Cluster, database, find_bindir, require_cluster

T0 = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
ALICE = {"messenger": "telegram", "user_id": "1001"}
BOB = {"messenger": "telegram", "user_id": "2002"}


def iso(dt):
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def case(owner=ALICE, **extra):
    return dict({"owner": dict(owner), "type": "rumor", "platform": "微博"}, **extra)


@pytest.fixture
async def url():
    return await database("huqi_pg_tests")


@pytest.fixture
async def stores(url):
    """open(): another store instance on the same database (another worker)."""
    opened = []

    def open_(**kw):
        s = open_store(None, backend="postgres", url=url, **kw)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        await s.close()


# -- several workers on one case --------------------------------------------------


async def test_concurrent_writes_from_two_workers_lose_nothing(stores):
    a, b = stores(), stores()
    c = await a.create(case())

    async def staff(i):
        await a.append_event(c["id"], {"who": "staff", "note": f"s{i}", "to": "accepted" if i % 2 else "submitted"})

    async def owner(i):
        await b.update(c["id"], {f"f{i}": i}, owner=ALICE)
        await b.append_event(c["id"], {"who": "user", "note": f"u{i}"}, owner=ALICE)

    await asyncio.gather(*(f(i) for i in range(30) for f in (staff, owner)))
    final = await b.get(c["id"])
    notes = [e["note"] for e in final["history"]]
    assert sorted(notes) == sorted([f"s{i}" for i in range(30)] + [f"u{i}" for i in range(30)])
    assert all(final[f"f{i}"] == i for i in range(30))
    # Each status change saw the status the previous one left: serialised.
    changes = [e for e in final["history"] if "to" in e]
    for prev, nxt in zip(changes, changes[1:]):
        assert nxt["from"] == prev["to"]
    assert final["status"] == changes[-1]["to"]


async def test_lifecycle_changes_by_staff_and_owner(stores):
    """Staff and the owner change one case's status at once through the
    lifecycle: both land in order; a change the lifecycle forbids is refused."""
    from dialogs.lifecycle import TransitionRefused, record

    a, b = stores(), stores()
    c = await a.create(case(status="submitted", channel="platform"))
    results = await asyncio.gather(
        record(a, c["id"], "accepted", who="staff", now=T0),
        record(b, c["id"], "rejected", who="user", reason="平台认为不构成侵权", now=T0, owner=ALICE),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, TransitionRefused)]
    final = await a.get(c["id"])
    assert [e["to"] for e in final["history"]] in (["accepted", "rejected"], ["rejected", "accepted"],
                                                   ["accepted"], ["rejected"])
    with pytest.raises(TransitionRefused):
        await record(b, c["id"], "draft", who="user", now=T0, owner=ALICE)
    assert (await a.get(c["id"]))["history"] == final["history"]


async def test_ids_unique_across_workers(stores):
    a, b = stores(), stores()
    made = await asyncio.gather(*(s.create(case()) for s in (a, b) for _ in range(40)))
    assert len({c["id"] for c in made}) == 80
    assert len(await b.list()) == 80


async def test_owner_cannot_see_or_touch_another_owners_case(stores):
    a, b = stores(), stores()
    c = await a.create(case())
    assert await b.get(c["id"], owner=BOB) is None
    with pytest.raises(CaseNotFound):
        await b.append_event(c["id"], {"note": "x"}, owner=BOB)
    assert await b.list(owner=BOB) == []
    assert await b.due_reminders(T0 + timedelta(days=9), owner=BOB) == []


async def test_any_text_round_trips(stores):
    a = stores()
    odd = "含\x00空字符\ud800与\u2028换行 'quote' \"dq\" \\ 😀"
    c = await a.create(case(description=odd, links=[odd]))
    await a.append_event(c["id"], {"note": odd})
    got = await stores().get(c["id"])
    assert got["description"] == odd and got["links"] == [odd] and got["history"][0]["note"] == odd


# -- reminders by index --------------------------------------------------------------


async def test_due_reminders_by_owner_and_limit(stores):
    a = stores()
    x = await a.create(case())
    y = await a.create(case(owner=BOB))
    for i, c in enumerate((x, y, x)):
        await a.set_reminder(c["id"], T0 + timedelta(hours=i), f"k{i}")
    due = await a.due_reminders(T0 + timedelta(days=1))
    assert [(r["case_id"], r["kind"]) for r in due] == [(x["id"], "k0"), (y["id"], "k1"), (x["id"], "k2")]
    assert [r["kind"] for r in await a.due_reminders(T0 + timedelta(days=1), owner=ALICE)] == ["k0", "k2"]
    assert [r["kind"] for r in await a.due_reminders(T0 + timedelta(days=1), limit=2)] == ["k0", "k1"]
    # A case handed to another owner takes its reminders along.
    await a.update(x["id"], {"owner": BOB})
    assert await a.due_reminders(T0 + timedelta(days=1), owner=ALICE) == []
    assert len(await a.due_reminders(T0 + timedelta(days=1), owner=BOB)) == 3


# -- conversation states ---------------------------------------------------------------


async def test_states_shared_between_workers(stores):
    a, b = stores(), stores()
    assert await a.get_state("telegram:1") is None
    await a.put_state("telegram:1", {"step": "where", "case": {"type": "rumor"}})
    await b.put_state("web:ab12", {"step": "start"})
    got = await b.get_state("telegram:1")
    assert got == {"step": "where", "case": {"type": "rumor"}}
    got["step"] = "changed"
    assert (await a.get_state("telegram:1"))["step"] == "where"
    await b.put_state("telegram:1", {"step": "done"})
    assert await a.get_state("telegram:1") == {"step": "done"}
    assert await a.count_states() == 2
    await a.delete_state("telegram:1")
    await a.delete_state("telegram:1")
    assert await b.get_state("telegram:1") is None and await b.count_states() == 1
    with pytest.raises(TypeError):
        await a.put_state("telegram:2", ["not", "a", "dict"])


# -- outbox ------------------------------------------------------------------------------


async def test_outbox_claimed_by_two_workers_each_message_once(stores):
    a, b = stores(), stores()
    for i in range(300):
        await a.outbox_add({"case_id": f"HQ-2611-{i:04d}", "owner": ALICE, "text_key": "status", "n": i}, now=T0)
    claimed = {a: [], b: []}

    async def worker(store):
        while True:
            got = await store.outbox_claim(T0, limit=7, lease_seconds=60)
            if not got:
                return
            for m in got:
                assert m["status"] == "claimed"
                claimed[store].append(m["id"])
                await store.outbox_sent(m["id"], T0)
            await asyncio.sleep(0)

    await asyncio.gather(worker(a), worker(b), worker(a), worker(b))
    ids = claimed[a] + claimed[b]
    assert len(ids) == 300 and len(set(ids)) == 300
    assert claimed[a] and claimed[b]  # both took part
    assert (await b.outbox_counts())["sent"] == 300


async def test_outbox_lease_expiry_retry_and_final_states(stores):
    a, b = stores(), stores()
    m1 = await a.outbox_add({"chat_id": "-100", "text": "新案件"}, now=T0)
    m2 = await a.outbox_add({"owner": ALICE, "case_id": "HQ-2611-AAAA", "next_at": T0 + timedelta(minutes=5)}, now=T0)
    assert m1["status"] == "pending" and m1["attempts"] == 0 and m1["next_at"] == iso(T0)
    assert m1["id"] < m2["id"] and m2["next_at"] == iso(T0 + timedelta(minutes=5))
    # a claims m1 and dies; m2 is not due yet.
    assert [m["id"] for m in await a.outbox_claim(T0, lease_seconds=60)] == [m1["id"]]
    assert await b.outbox_claim(T0 + timedelta(seconds=59)) == []
    # After the lease, another worker gets it (and m2, now due).
    later = T0 + timedelta(minutes=5)
    got = await b.outbox_claim(later)
    assert [m["id"] for m in got] == [m1["id"], m2["id"]]
    await b.outbox_retry(m1["id"], later + timedelta(seconds=30), "timeout")
    await b.outbox_fail(m2["id"], "blocked", "403 Forbidden")
    r1 = await a.outbox_get(m1["id"])
    assert (r1["status"], r1["attempts"], r1["last_error"], r1["text"]) == ("pending", 1, "timeout", "新案件")
    assert (await a.outbox_get(m2["id"]))["status"] == "blocked"
    assert [m["id"] for m in await a.outbox_list(case_id="HQ-2611-AAAA")] == [m2["id"]]
    assert await a.outbox_claim(later + timedelta(seconds=29)) == []
    assert [m["id"] for m in await a.outbox_claim(later + timedelta(seconds=30))] == [m1["id"]]
    await a.outbox_sent(m1["id"], later + timedelta(seconds=31))
    assert await a.outbox_counts() == {"pending": 0, "claimed": 0, "sent": 1, "blocked": 1, "parked": 0}
    assert await a.outbox_get("999999") is None
    with pytest.raises(ValueError):
        await a.outbox_fail(m1["id"], "sent", "x")


# -- locks -------------------------------------------------------------------------------


async def test_chat_lock_serialises_one_chat_across_workers(stores):
    a, b = stores(), stores()
    inside, order, overlap = [], [], []

    async def turn(store, n):
        async with store.chat_lock("telegram:42"):
            if inside:
                overlap.append(n)
            inside.append(n)
            order.append(n)
            await asyncio.sleep(0.01)
            inside.remove(n)

    await asyncio.gather(*(turn(a if i % 2 else b, i) for i in range(20)))
    assert overlap == [] and sorted(order) == list(range(20))


async def test_chat_lock_other_chats_run_in_parallel(stores):
    a, b = stores(), stores()
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder():
        async with a.chat_lock("telegram:1"):
            held.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    async with asyncio.timeout(5):
        async with b.chat_lock("telegram:2"):  # another chat: not blocked
            pass
    blocked = asyncio.create_task(_enter(b, "telegram:1"))
    await asyncio.sleep(0.2)
    assert not blocked.done()  # same chat, other worker: waits
    release.set()
    await task
    async with asyncio.timeout(5):
        await blocked


async def _enter(store, key):
    async with store.chat_lock(key):
        return True


async def test_chat_lock_released_when_a_worker_dies(url, stores):
    b = stores()
    # A "worker" holding the lock on a raw connection, then killed.
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    from bot.store.postgres import NS_CHAT

    await conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (NS_CHAT, "telegram:7"))
    waiting = asyncio.create_task(_enter(b, "telegram:7"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await conn.close()  # the process is gone: its session and locks too
    async with asyncio.timeout(5):
        assert await waiting


async def test_singleton_is_held_by_one_worker(stores):
    a, b = stores(), stores()
    async with a.singleton("reminder-sweep") as got_a:
        assert got_a is True
        async with asyncio.timeout(5):
            async with b.singleton("reminder-sweep") as got_b:
                assert got_b is False
            async with b.singleton("other-job") as got_other:
                assert got_other is True
    async with b.singleton("reminder-sweep") as got_b:
        assert got_b is True


async def test_lock_connections_are_returned(stores):
    a = stores(lock_pool_size=2)
    for i in range(10):  # more turns than lock connections: each gives its back
        async with a.chat_lock(f"telegram:{i}"):
            pass
        async with a.singleton("job") as got:
            assert got


# -- migrations ----------------------------------------------------------------------------


async def test_migrate_from_empty_and_from_previous_version():
    c = require_cluster()
    url = c.create_database()
    with pytest.raises(SchemaOutdated, match="huqi db migrate"):
        await check_schema(url)
    assert await migrate(url, target=LATEST - 1) == list(range(1, LATEST))
    with pytest.raises(SchemaOutdated, match="huqi db migrate"):
        await check_schema(url)
    store = open_store(None, backend="postgres", url=url)
    with pytest.raises(SchemaOutdated, match="huqi db migrate"):
        await store.get("HQ-2611-AAAA")  # refuses to work on an outdated schema
    await store.close()
    # Data written at the previous version survives the upgrade.
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO cases (id, owner_key, status, created_at, updated_at, doc) VALUES"
            " ('HQ-2611-AAAA', 'telegram:1001', 'new', %s, %s, %s)",
            (iso(T0), iso(T0), '{"id":"HQ-2611-AAAA","owner":{"messenger":"telegram","user_id":"1001"},'
             '"status":"new","created_at":"%s","updated_at":"%s"}' % (iso(T0), iso(T0))),
        )
    assert await migrate(url) == [LATEST]
    assert await migrate(url) == []  # idempotent
    assert await check_schema(url) == LATEST
    async with open_store(None, backend="postgres", url=url) as store:
        got = await store.get("HQ-2611-AAAA", owner=ALICE)
        assert got["status"] == "new" and got["history"] == []
        await store.append_event(got["id"], {"note": "after upgrade"})
        await store.outbox_add({"case_id": got["id"]})
    # A database newer than the code is refused too.
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, 'future')", (LATEST + 1,))
    with pytest.raises(SchemaOutdated, match="升级"):
        await check_schema(url)


async def test_concurrent_migrations_apply_once():
    url = require_cluster().create_database()
    results = await asyncio.gather(migrate(url), migrate(url), migrate(url))
    assert sorted(v for r in results for v in r) == list(range(1, LATEST + 1))


# -- the service role's grants (docs/postgres.md) -------------------------------------------


def _grants_from_docs() -> str:
    text = (Path(__file__).parent.parent / "docs" / "postgres.md").read_text(encoding="utf-8")
    m = re.search(r"```sql\n(.*?-- service role grants.*?)```", text, re.S)
    assert m, "docs/postgres.md lost its GRANT snippet"
    return m.group(1)


async def test_history_is_append_only_for_the_service_role():
    c = require_cluster()
    url = c.create_database()
    await migrate(url)
    dbname = url.split("@/", 1)[1].split("?")[0]
    snippet = _grants_from_docs().replace("huqi_db", dbname).replace("change-me", "pw")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("DROP ROLE IF EXISTS huqi_service")
        sql = "\n".join(line for line in snippet.splitlines() if not line.lstrip().startswith("--"))
        for stmt in [s.strip() for s in sql.split(";") if s.strip()]:
            await conn.execute(stmt)
    service_url = url.replace("postgresql://postgres@", "postgresql://huqi_service@")
    try:
        async with open_store(None, backend="postgres", url=service_url, clock=lambda: T0) as store:
            cse = await store.create(case())
            await store.append_event(cse["id"], {"to": "closed", "note": "结案"})
            await store.set_reminder(cse["id"], T0, "follow_up")
            await store.put_state("telegram:1", {"s": 1})
            m = await store.outbox_add({"case_id": cse["id"]})
            await store.outbox_claim(T0)
            await store.outbox_sent(m["id"], T0)
            async with store.chat_lock("telegram:1"):
                pass
            async with await psycopg.AsyncConnection.connect(service_url, autocommit=True) as conn:
                for sql in ("UPDATE case_history SET event = '{}'::json",
                            "DELETE FROM case_history",
                            "TRUNCATE case_history CASCADE"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        await conn.execute(sql)
            # Purging (retention) still removes a case with its history.
            assert await store.purge(T0 + timedelta(days=1)) == [cse["id"]]
            assert await store.get(cse["id"]) is None
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f'REVOKE ALL ON DATABASE "{dbname}" FROM huqi_service')
            await conn.execute("DROP OWNED BY huqi_service")
            await conn.execute("DROP ROLE huqi_service")


# -- an unreachable server ---------------------------------------------------------------------


@pytest.fixture
async def own_cluster():
    """A cluster of its own, to stop and start without disturbing the others."""
    if find_bindir() is None:
        require_cluster()
    c = Cluster(find_bindir(), durable=True).start()  # acknowledged = on disk
    yield c
    c.destroy()


async def test_ping_and_calls_fail_cleanly_while_the_server_is_down_then_recover(own_cluster):
    url = own_cluster.create_database("huqi")
    await migrate(url)
    store = open_store(None, backend="postgres", url=url, timeout=0.5)
    try:
        await store.ping()
        c = await store.create(case())
        own_cluster.stop_server("immediate")
        with pytest.raises(StoreError):
            await store.ping()
        with pytest.raises(StoreError):
            await store.get(c["id"])
        with pytest.raises(StoreError):
            async with store.chat_lock("telegram:1"):
                pass
        async with store.singleton("sweep") as got:
            assert got is False  # never blocks, never raises
        own_cluster.start_server()
        for _ in range(50):  # the pool reconnects on its own
            try:
                await store.ping()
                break
            except StoreError:
                await asyncio.sleep(0.2)
        assert (await store.get(c["id"]))["id"] == c["id"]
    finally:
        await store.close()
    with pytest.raises(StoreError):
        await store.ping()  # closed


async def test_staff_and_owner_closing_at_once_on_two_workers_record_one_closing(stores):
    """The lifecycle's check and its write happen under one per-case lock shared by the staff's
    operations and the owner's conversation, so two workers cannot both close a case."""
    from bot import ops
    from bot.session import Session
    from dialogs.engine import Engine
    from dialogs.lifecycle import record

    a, b = stores(), stores()
    engine = Engine()
    ids = []
    for _ in range(8):
        c = await a.create(case(status="draft"))
        await record(a, c["id"], "submitted", who="t", now=T0, channel="platform")
        await record(a, c["id"], "action_taken", who="t", now=T0, channel="platform", outcome="deleted")
        ids.append(c["id"])
    owner = Session(engine, b, dict(ALICE))
    await asyncio.gather(*(job for cid in ids for job in (
        ops.transition(a, cid, "closed", who="desk", now=T0, reason="resolved"),
        owner._transition({"case_id": cid, "to": "closed", "reason": "withdrawn"}))), return_exceptions=True)
    for cid in ids:
        closings = [e for e in (await a.get(cid))["history"] if e.get("to") == "closed"]
        assert len(closings) == 1, cid
