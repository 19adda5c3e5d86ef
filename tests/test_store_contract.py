"""The case store contract, run against every backend.

The memory backend is the reference; the TinyDB backend must behave the same,
and additionally keep everything across close/reopen.
"""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from bot.caseid import is_case_id
from bot.store import (
    OUTBOX_STATUSES,
    CaseExists,
    CaseNotFound,
    MessageNotFound,
    StoreClosed,
    StoreError,
    open_store,
)

T0 = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
ALICE = {"messenger": "telegram", "user_id": "1001"}
BOB = {"messenger": "telegram", "user_id": "2002"}
TERM = {"messenger": "terminal", "user_id": "1001"}  # same user id, other messenger


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


def iso(dt):
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def sample_case(owner=ALICE, **extra):
    case = {
        "owner": dict(owner),
        "enterprise": {"name": "杭州某某科技有限公司", "phone": "13800000000"},
        "type": "rumor",
        "subtype": "rumor.exaggerated_difficulty",
        "flags": ["extortion"],
        "platform": "微博",
        "province": "浙江",
        "links": ["https://weibo.com/1/abc"],
        "evidence": [{"kind": "screenshot", "file": "ev/1.png"}],
    }
    case.update(extra)
    return case


# Every backend the contract runs against (the one list; add new ones here).
BACKENDS = ["memory", "tinydb", "postgres"]
# Backends used by one process at a time (claims do not outlive the process).
SINGLE_PROCESS = {"memory", "tinydb"}


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def opener(backend, tmp_path, clock, monkeypatch):
    """opener() opens (or re-opens) the store under test."""
    opened = []
    if backend == "postgres":  # a real server (tests/pg.py); the directory holds no data
        from tests.pg import database

        monkeypatch.setenv("HUQI_DATABASE_URL", await database())
        (tmp_path / "data").mkdir()

    def open_():
        store = open_store(str(tmp_path / "data"), backend=backend, clock=clock)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture
async def store(opener):
    return opener()


@pytest.fixture
def durable(backend):
    if backend == "memory":
        pytest.skip("the memory backend keeps nothing across reopen")


async def reopen(store, opener):
    await store.close()
    return opener()


# -- create / get -------------------------------------------------------------


async def test_create_assigns_id_times_status(store, clock):
    case = await store.create(sample_case())
    assert is_case_id(case["id"]) and case["id"].startswith("HQ-2611-")
    assert case["created_at"] == case["updated_at"] == iso(T0)
    assert case["status"] == "new"
    assert case["history"] == []
    assert case["owner"] == ALICE
    assert "closed_at" not in case
    assert await store.get(case["id"]) == case


async def test_create_keeps_given_fields_and_id(store):
    case = await store.create(
        sample_case(id="HQ-2610-ABCD", status="draft", created_at="2026-10-01T10:00:00+08:00")
    )
    assert case["id"] == "HQ-2610-ABCD"
    assert case["status"] == "draft"
    assert case["created_at"] == "2026-10-01T02:00:00+00:00"  # canonical UTC
    got = await store.get("HQ-2610-ABCD")
    assert got["enterprise"] == {"name": "杭州某某科技有限公司", "phone": "13800000000"}
    with pytest.raises(CaseExists):
        await store.create(sample_case(id="HQ-2610-ABCD"))


async def test_create_normalises_owner_user_id(store):
    case = await store.create(sample_case(owner={"messenger": "telegram", "user_id": 1001}))
    assert case["owner"] == ALICE
    assert await store.get(case["id"], owner=ALICE) is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "rumor"},  # no owner
        {"owner": {"messenger": "telegram"}},
        {"owner": {"user_id": "1"}},
        {"owner": "telegram:1"},
    ],
)
async def test_create_requires_an_owner(store, bad):
    with pytest.raises(ValueError):
        await store.create(bad)


async def test_create_refuses_non_json(store):
    with pytest.raises(TypeError):
        await store.create(sample_case(extra={1, 2}))
    with pytest.raises(TypeError):
        await store.create(sample_case(extra=object()))
    assert await store.list() == []


async def test_ids_are_unique(store):
    ids = {(await store.create(sample_case()))["id"] for _ in range(50)}
    assert len(ids) == 50


async def test_get_accepts_typed_variants(store):
    case = await store.create(sample_case(id="HQ-2611-7K3Q"))
    for typed in ("hq 2611 7k3q", "HQ26117K3Q", "ＨＱ－２６１１－７Ｋ３Ｑ"):
        assert (await store.get(typed))["id"] == case["id"]
    assert await store.get("HQ-2611-7K3R") is None
    assert await store.get("garbage !!") is None
    assert await store.get(None) is None


# -- ownership ----------------------------------------------------------------


async def test_get_with_another_owner_reveals_nothing(store):
    case = await store.create(sample_case())
    assert (await store.get(case["id"], owner=ALICE))["id"] == case["id"]
    assert await store.get(case["id"], owner=BOB) is None
    assert await store.get(case["id"], owner=TERM) is None
    # Same answer as for a number that does not exist.
    assert await store.get("HQ-2611-2222", owner=BOB) is None


async def test_writes_by_another_owner_are_refused(store):
    case = await store.create(sample_case())
    with pytest.raises(CaseNotFound):
        await store.update(case["id"], {"platform": "抖音"}, owner=BOB)
    with pytest.raises(CaseNotFound):
        await store.append_event(case["id"], {"to": "closed"}, owner=BOB)
    with pytest.raises(CaseNotFound):
        await store.set_reminder(case["id"], T0, "follow_up", owner=BOB)
    with pytest.raises(CaseNotFound):
        await store.clear_reminder(case["id"], owner=BOB)
    assert await store.get(case["id"]) == case  # untouched
    # The owner may.
    await store.update(case["id"], {"platform": "抖音"}, owner=ALICE)
    await store.append_event(case["id"], {"note": "ok"}, owner=ALICE)


async def test_writes_to_missing_case_raise_not_found(store):
    with pytest.raises(CaseNotFound):
        await store.update("HQ-2611-2222", {"a": 1})
    with pytest.raises(CaseNotFound):
        await store.append_event("HQ-2611-2222", {"note": "x"})
    with pytest.raises(KeyError):  # CaseNotFound is a KeyError too
        await store.set_reminder("nope", T0)


# -- list -----------------------------------------------------------------------


async def test_list_filters(store, clock):
    a1 = await store.create(sample_case(type="rumor", platform="微博", province="浙江"))
    clock.advance(days=1)
    a2 = await store.create(sample_case(type="impersonation", platform="抖音", province="北京"))
    clock.advance(days=1)
    b1 = await store.create(sample_case(owner=BOB, type="rumor", platform="抖音", province="浙江"))
    clock.advance(days=1)
    t1 = await store.create(sample_case(owner=TERM, type="doxxing", platform=["微博", "知乎"]))
    await store.append_event(a2["id"], {"to": "submitted"})

    def ids(cases):
        return [c["id"] for c in cases]

    assert ids(await store.list()) == [a1["id"], a2["id"], b1["id"], t1["id"]]
    assert ids(await store.list(owner=ALICE)) == [a1["id"], a2["id"]]
    assert ids(await store.list(owner=TERM)) == [t1["id"]]
    assert ids(await store.list(status="submitted")) == [a2["id"]]
    assert ids(await store.list(status=["new", "submitted"], owner=ALICE)) == [a1["id"], a2["id"]]
    assert ids(await store.list(type="rumor")) == [a1["id"], b1["id"]]
    assert ids(await store.list(platform="抖音")) == [a2["id"], b1["id"]]
    assert ids(await store.list(platform="微博")) == [a1["id"], t1["id"]]  # list-valued field
    assert ids(await store.list(province="浙江", type="rumor", owner=BOB)) == [b1["id"]]
    assert ids(await store.list(type=("doxxing", "impersonation"))) == [a2["id"], t1["id"]]
    assert ids(await store.list(older_than=T0 + timedelta(days=1))) == [a1["id"]]
    assert ids(await store.list(newer_than=T0 + timedelta(days=2))) == [b1["id"], t1["id"]]
    assert ids(await store.list(older_than=timedelta(days=1))) == [a1["id"], a2["id"]]  # now is T0+3d
    assert ids(await store.list(older_than=iso(T0 + timedelta(days=2)), type="rumor")) == [a1["id"]]
    assert ids(await store.list(limit=2)) == [a1["id"], a2["id"]]
    # A field the store does not index still filters.
    assert ids(await store.list(subtype="rumor.exaggerated_difficulty", owner=BOB)) == [b1["id"]]
    assert ids(await store.list(flags="extortion", owner=TERM)) == [t1["id"]]
    assert await store.list(type="nothing") == []
    assert await store.list(owner={"messenger": "telegram", "user_id": "9"}) == []


async def test_list_returns_full_documents(store):
    case = await store.create(sample_case())
    [listed] = await store.list(owner=ALICE)
    assert listed == case


# -- update ---------------------------------------------------------------------


async def test_update_sets_fields_and_updated_at(store, clock):
    case = await store.create(sample_case())
    clock.advance(hours=2)
    updated = await store.update(case["id"], {"platform": "抖音", "plan": ["platform", "12377"]})
    assert updated["platform"] == "抖音"
    assert updated["plan"] == ["platform", "12377"]
    assert updated["updated_at"] == iso(T0 + timedelta(hours=2))
    assert updated["created_at"] == case["created_at"]
    assert updated["history"] == case["history"]
    assert await store.get(case["id"]) == updated


@pytest.mark.parametrize("field", ["history", "id", "reminders"])
async def test_update_refuses_protected_fields(store, field):
    case = await store.create(sample_case())
    await store.append_event(case["id"], {"note": "first"})
    before = await store.get(case["id"])
    with pytest.raises(ValueError):
        await store.update(case["id"], {field: [], "platform": "抖音"})
    assert await store.get(case["id"]) == before  # nothing applied


async def test_status_closed_sets_and_clears_closed_at(store, clock):
    case = await store.create(sample_case())
    clock.advance(days=3)
    closed = await store.update(case["id"], {"status": "closed"})
    assert closed["closed_at"] == iso(T0 + timedelta(days=3))
    clock.advance(days=1)
    reopened = await store.append_event(case["id"], {"to": "submitted", "note": "平台未处理"})
    assert reopened["status"] == "submitted"
    assert "closed_at" not in reopened
    clock.advance(days=1)
    closed = await store.append_event(case["id"], {"to": "closed"})
    assert closed["closed_at"] == iso(T0 + timedelta(days=5))


# -- history ----------------------------------------------------------------------


async def test_append_event(store, clock):
    case = await store.create(sample_case())
    clock.advance(minutes=5)
    ev = {"who": "user", "to": "submitted", "channel": "platform", "ref": "TS123", "note": "已提交"}
    c1 = await store.append_event(case["id"], ev)
    assert c1["status"] == "submitted"
    assert c1["updated_at"] == iso(T0 + timedelta(minutes=5))
    assert c1["history"] == [dict(ev, when=iso(T0 + timedelta(minutes=5)), **{"from": "new"})]
    clock.advance(minutes=5)
    c2 = await store.append_event(case["id"], {"note": "补充证据", "when": "2026-11-05T17:00:00+08:00"})
    assert c2["status"] == "submitted"  # no "to": status unchanged
    assert c2["history"][:1] == c1["history"]  # earlier events untouched
    assert c2["history"][1] == {"note": "补充证据", "when": "2026-11-05T09:00:00+00:00"}
    assert ev == {"who": "user", "to": "submitted", "channel": "platform", "ref": "TS123", "note": "已提交"}


async def test_history_is_append_only(store):
    case = await store.create(sample_case(history=[{"note": "created", "when": iso(T0)}]))
    seen = []
    for i in range(5):
        c = await store.append_event(case["id"], {"note": f"e{i}"})
        # Every earlier history is a prefix of every later one.
        assert c["history"][: len(seen)] == seen
        seen = c["history"]
    assert [e["note"] for e in seen] == ["created", "e0", "e1", "e2", "e3", "e4"]
    await store.update(case["id"], {"status": "closed", "note": "x"})
    assert (await store.get(case["id"]))["history"] == seen


async def test_bad_events_are_refused(store):
    case = await store.create(sample_case())
    with pytest.raises(TypeError):
        await store.append_event(case["id"], "closed")
    with pytest.raises(ValueError):
        await store.append_event(case["id"], {"to": ""})
    with pytest.raises(TypeError):
        await store.append_event(case["id"], {"note": {1, 2}})
    assert (await store.get(case["id"]))["history"] == []


# -- copy on read ----------------------------------------------------------------


async def test_returned_documents_do_not_share_memory_with_the_store(store):
    case = await store.create(sample_case())
    cid = case["id"]
    case["links"].append("https://evil")
    case["owner"]["user_id"] = "666"
    case["history"].append({"note": "forged"})
    got = await store.get(cid)
    assert got["links"] == ["https://weibo.com/1/abc"]
    assert got["owner"] == ALICE and got["history"] == []

    got["evidence"][0]["file"] = "changed"
    got["history"].append({"note": "forged"})
    [listed] = await store.list()
    listed["links"].clear()
    upd = await store.update(cid, {"platform": "知乎"})
    upd["flags"].append("x")
    ev = await store.append_event(cid, {"note": "real"})
    ev["history"][0]["note"] = "rewritten"
    rem = await store.set_reminder(cid, T0, "follow_up")
    rem["due"] = "2000-01-01T00:00:00+00:00"
    [due] = await store.due_reminders(T0)
    due["kind"] = "changed"

    final = await store.get(cid)
    assert final["evidence"][0]["file"] == "ev/1.png"
    assert final["links"] == ["https://weibo.com/1/abc"]
    assert final["flags"] == ["extortion"]
    assert final["history"] == [{"note": "real", "when": iso(T0)}]
    assert final["reminders"] == [{"case_id": cid, "kind": "follow_up", "due": iso(T0)}]


async def test_input_documents_are_copied(store):
    case_in = sample_case()
    case = await store.create(case_in)
    case_in["links"].append("https://later")
    changes = {"plan": ["a"]}
    await store.update(case["id"], changes)
    changes["plan"].append("b")
    event = {"note": "n", "refs": ["r1"]}
    await store.append_event(case["id"], event)
    event["refs"].append("r2")
    got = await store.get(case["id"])
    assert got["links"] == ["https://weibo.com/1/abc"]
    assert got["plan"] == ["a"]
    assert got["history"][0]["refs"] == ["r1"]


# -- concurrency -----------------------------------------------------------------


async def test_concurrent_appends_lose_nothing(store):
    case = await store.create(sample_case())
    results = await asyncio.gather(
        *(store.append_event(case["id"], {"note": f"n{i}"}) for i in range(200))
    )
    final = await store.get(case["id"])
    assert sorted(e["note"] for e in final["history"]) == sorted(f"n{i}" for i in range(200))
    # Each task saw its own event in the state it got back.
    for i, r in enumerate(results):
        assert f"n{i}" in {e["note"] for e in r["history"]}


async def test_concurrent_mixed_writes_lose_nothing(store):
    case = await store.create(sample_case())

    async def field(i):
        await store.update(case["id"], {f"f{i}": i})

    async def event(i):
        await store.append_event(case["id"], {"note": f"n{i}"})

    async def reminder(i):
        await store.set_reminder(case["id"], T0 + timedelta(hours=i), f"k{i}")

    await asyncio.gather(*(f(i) for i in range(40) for f in (field, event, reminder)))
    final = await store.get(case["id"])
    assert all(final[f"f{i}"] == i for i in range(40))
    assert len(final["history"]) == 40
    assert sorted(r["kind"] for r in final["reminders"]) == sorted(f"k{i}" for i in range(40))


async def test_concurrent_creates_get_distinct_ids(store):
    cases = await asyncio.gather(*(store.create(sample_case()) for _ in range(100)))
    assert len({c["id"] for c in cases}) == 100
    assert len(await store.list()) == 100


# -- reminders --------------------------------------------------------------------


async def test_reminders_due_with_injected_now(store, clock):
    a = await store.create(sample_case())
    b = await store.create(sample_case(owner=BOB))
    await store.set_reminder(a["id"], T0 + timedelta(days=3), "follow_up")
    await store.set_reminder(a["id"], T0 + timedelta(days=1), "deadline", note="7日内答复")
    await store.set_reminder(b["id"], T0 + timedelta(days=2), "follow_up")

    assert await store.due_reminders(T0) == []
    assert await store.due_reminders(T0 + timedelta(days=1) - timedelta(seconds=1)) == []
    due = await store.due_reminders(T0 + timedelta(days=1))  # due exactly now
    assert due == [
        {"case_id": a["id"], "kind": "deadline", "due": iso(T0 + timedelta(days=1)), "note": "7日内答复"}
    ]
    due = await store.due_reminders(T0 + timedelta(days=10))
    assert [(r["case_id"], r["kind"]) for r in due] == [
        (a["id"], "deadline"),
        (b["id"], "follow_up"),
        (a["id"], "follow_up"),
    ]
    # Default "now" is the store's clock.
    clock.advance(days=2)
    assert [r["kind"] for r in await store.due_reminders()] == ["deadline", "follow_up"]

    got = await store.get(a["id"])
    assert [r["kind"] for r in got["reminders"]] == ["deadline", "follow_up"]


async def test_reminder_reschedule_and_clear(store):
    a = await store.create(sample_case())
    await store.set_reminder(a["id"], T0 + timedelta(days=1), "follow_up")
    await store.set_reminder(a["id"], T0 + timedelta(days=5), "follow_up")  # reschedule
    await store.set_reminder(a["id"], T0 + timedelta(days=2), "deadline")
    assert [r["kind"] for r in await store.due_reminders(T0 + timedelta(days=3))] == ["deadline"]
    assert await store.clear_reminder(a["id"], "deadline") == 1
    assert await store.clear_reminder(a["id"], "deadline") == 0
    assert await store.due_reminders(T0 + timedelta(days=3)) == []
    assert len(await store.due_reminders(T0 + timedelta(days=5))) == 1
    await store.set_reminder(a["id"], T0, "x")
    assert await store.clear_reminder(a["id"]) == 2
    assert await store.due_reminders(T0 + timedelta(days=99)) == []
    assert "reminders" not in await store.get(a["id"])


async def test_reminders_given_at_create(store):
    a = await store.create(sample_case(reminders=[{"kind": "follow_up", "due": T0}]))
    assert a["reminders"] == [{"case_id": a["id"], "kind": "follow_up", "due": iso(T0)}]
    assert len(await store.due_reminders(T0)) == 1


async def test_reminders_survive_reopen(store, opener, durable):
    a = await store.create(sample_case())
    await store.set_reminder(a["id"], T0 + timedelta(days=1), "follow_up")
    await store.set_reminder(a["id"], T0 + timedelta(days=2), "deadline")
    await store.clear_reminder(a["id"], "deadline")
    store = await reopen(store, opener)
    due = await store.due_reminders(T0 + timedelta(days=9))
    assert due == [{"case_id": a["id"], "kind": "follow_up", "due": iso(T0 + timedelta(days=1))}]


# -- purge -------------------------------------------------------------------------


async def test_purge_removes_only_old_closed_cases(store, clock):
    old_closed = await store.create(sample_case())
    old_open = await store.create(sample_case())
    await store.set_reminder(old_closed["id"], T0 + timedelta(days=400), "follow_up")
    await store.append_event(old_closed["id"], {"to": "closed"})
    clock.advance(days=100)
    new_closed = await store.create(sample_case())
    await store.update(new_closed["id"], {"status": "closed"})
    reopened = await store.create(sample_case())
    await store.update(reopened["id"], {"status": "closed"})
    clock.advance(days=100)
    await store.append_event(reopened["id"], {"to": "submitted"})

    cutoff = T0 + timedelta(days=50)
    removed = await store.purge(cutoff)
    assert removed == [old_closed["id"]]
    assert await store.get(old_closed["id"]) is None
    assert await store.due_reminders(T0 + timedelta(days=999)) == []
    remaining = {c["id"] for c in await store.list()}
    assert remaining == {old_open["id"], new_closed["id"], reopened["id"]}
    assert await store.purge(cutoff) == []
    # Everything closed before "now" (timedelta form); open cases stay.
    assert await store.purge(timedelta(0)) == [new_closed["id"]]
    assert {c["id"] for c in await store.list()} == {old_open["id"], reopened["id"]}


async def test_purge_is_durable(store, opener, clock, durable, tmp_path):
    a = await store.create(sample_case(enterprise={"name": "要删除的企业"}))
    await store.update(a["id"], {"status": "closed"})
    clock.advance(days=10)
    assert await store.purge(timedelta(days=1)) == [a["id"]]
    # Purged content is gone from the files too, not just from memory.
    for f in (tmp_path / "data").iterdir():
        assert "要删除的企业".encode() not in f.read_bytes(), f.name
    store = await reopen(store, opener)
    assert await store.get(a["id"]) is None
    assert await store.list() == []


# -- reopen / close -------------------------------------------------------------------


async def test_reopen_keeps_everything(store, opener, clock, durable):
    for i in range(30):
        c = await store.create(sample_case(owner=ALICE if i % 2 else BOB, n=i))
        clock.advance(minutes=1)
        await store.append_event(c["id"], {"to": "submitted", "note": f"提交{i}"})
        if i % 3 == 0:
            await store.update(c["id"], {"status": "closed", "result": "已删除"})
        if i % 5 == 0:
            await store.set_reminder(c["id"], T0 + timedelta(days=i), "follow_up")
    before = await store.list()
    due_before = await store.due_reminders(T0 + timedelta(days=99))
    store = await reopen(store, opener)
    assert await store.list() == before
    assert await store.due_reminders(T0 + timedelta(days=99)) == due_before
    assert await store.list(owner=ALICE, status="closed") == [
        c for c in before if c["owner"] == ALICE and c["status"] == "closed"
    ]
    # And again, after more writes on top of the reopened state.
    await store.append_event(before[0]["id"], {"note": "after reopen"})
    store = await reopen(store, opener)
    assert (await store.get(before[0]["id"]))["history"][-1]["note"] == "after reopen"


async def test_closed_store_refuses_calls(store):
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreClosed):
        await store.get("HQ-2611-2222")
    with pytest.raises(StoreClosed):
        await store.create(sample_case())


# -- case numbers are never issued twice -------------------------------------------


def _fixed_draws(monkeypatch, draws):
    """Make the random part of new case numbers come from ``draws``."""
    import bot.caseid

    seq = iter(draws)
    monkeypatch.setattr(bot.caseid, "_random_part", lambda width: next(seq))


async def test_purged_case_numbers_are_not_issued_again(store, opener, backend, clock, monkeypatch):
    _fixed_draws(monkeypatch, ["AAAA", "AAAA", "BBBB"] + ["CCCC"] * 3)
    a = await store.create(sample_case())
    assert a["id"].endswith("-AAAA")
    await store.update(a["id"], {"status": "closed"})
    clock.advance(days=2)
    assert await store.purge(timedelta(days=1)) == [a["id"]]
    if backend != "memory":
        store = await reopen(store, opener)
    b = await store.create(sample_case())  # same month, same first draw
    assert b["id"].endswith("-BBBB")
    with pytest.raises(CaseExists):
        await store.create(sample_case(id=a["id"]))


# -- due reminders: owner, limit, index kept in step ------------------------------


async def test_due_reminders_by_owner_and_limit(store):
    cases = []
    for i in range(6):
        c = await store.create(sample_case(owner=ALICE if i % 2 else BOB))
        await store.set_reminder(c["id"], T0 + timedelta(hours=6 - i), "follow_up")
        cases.append(c)
    now = T0 + timedelta(days=1)
    everyone = await store.due_reminders(now)
    assert [r["due"] for r in everyone] == sorted(r["due"] for r in everyone)
    assert len(everyone) == 6
    alice = await store.due_reminders(now, owner=ALICE)
    assert {r["case_id"] for r in alice} == {c["id"] for c in cases if c["owner"] == ALICE}
    assert alice == [r for r in everyone if r["case_id"] in {x["case_id"] for x in alice}]
    assert await store.due_reminders(now, limit=2) == everyone[:2]
    assert await store.due_reminders(now, owner=BOB, limit=1) == [
        r for r in everyone if r["case_id"] not in {x["case_id"] for x in alice}
    ][:1]
    assert await store.due_reminders(now, owner={"messenger": "web", "user_id": "x"}) == []
    assert await store.due_reminders(now, limit=0) == []
    with pytest.raises(ValueError):
        await store.due_reminders(now, limit=-1)


async def test_due_reminder_index_follows_every_change(store, opener, backend, clock):
    a = await store.create(sample_case())
    await store.set_reminder(a["id"], T0, "follow_up")
    await store.set_reminder(a["id"], T0 + timedelta(days=9), "follow_up")  # moved later
    assert await store.due_reminders(T0 + timedelta(days=1)) == []
    await store.update(a["id"], {"owner": BOB})  # a new owner takes the reminder along
    assert await store.due_reminders(T0 + timedelta(days=10), owner=ALICE) == []
    assert len(await store.due_reminders(T0 + timedelta(days=10), owner=BOB)) == 1
    await store.append_event(a["id"], {"note": "x"})  # other writes keep it
    assert len(await store.due_reminders(T0 + timedelta(days=10))) == 1
    if backend != "memory":
        store = await reopen(store, opener)
    assert len(await store.due_reminders(T0 + timedelta(days=10), owner=BOB)) == 1
    await store.clear_reminder(a["id"])
    assert await store.due_reminders(T0 + timedelta(days=10)) == []


async def test_due_reminders_are_private_copies(store):
    a = await store.create(sample_case())
    await store.set_reminder(a["id"], T0, "follow_up", note="n")
    got = await store.due_reminders(T0)
    got[0]["note"] = "changed"
    got[0]["due"] = "2000-01-01T00:00:00+00:00"
    assert await store.due_reminders(T0) == [{"case_id": a["id"], "kind": "follow_up", "due": iso(T0), "note": "n"}]


# -- conversation states ----------------------------------------------------------


async def test_states_round_trip_replace_delete(store):
    assert await store.get_state("telegram:1") is None
    assert await store.count_states() == 0
    state = {"state": {"step": "where", "answers": {"平台": "微博"}}, "buttons": {"1": "x"}, "next": 2}
    await store.put_state("telegram:1", state)
    await store.put_state("web:ab12", {"step": "start"})
    assert await store.get_state("telegram:1") == state
    assert await store.count_states() == 2
    await store.put_state("telegram:1", {"step": "done"})  # replaces, not merges
    assert await store.get_state("telegram:1") == {"step": "done"}
    await store.delete_state("telegram:1")
    await store.delete_state("telegram:1")  # no error
    await store.delete_state("telegram:999")
    assert await store.get_state("telegram:1") is None
    assert await store.get_state("web:ab12") == {"step": "start"}
    assert await store.count_states() == 1


async def test_states_are_private_copies(store):
    state = {"a": [1, 2], "b": {"c": "d"}}
    await store.put_state("telegram:1", state)
    state["a"].append(3)
    got = await store.get_state("telegram:1")
    assert got == {"a": [1, 2], "b": {"c": "d"}}
    got["b"]["c"] = "x"
    assert await store.get_state("telegram:1") == {"a": [1, 2], "b": {"c": "d"}}


@pytest.mark.parametrize("key", ["", " telegram:1", 'a"b', "a\\b", "a\nb", None, 5, "x" * 201])
async def test_bad_state_keys_are_refused(store, key):
    with pytest.raises(ValueError):
        await store.put_state(key, {})
    with pytest.raises(ValueError):
        await store.get_state(key)


async def test_bad_states_are_refused(store):
    with pytest.raises(TypeError):
        await store.put_state("telegram:1", ["not", "a", "dict"])
    with pytest.raises(TypeError):
        await store.put_state("telegram:1", {"when": datetime.now()})
    assert await store.get_state("telegram:1") is None


async def test_states_survive_reopen(store, opener, durable):
    for i in range(20):
        await store.put_state(f"telegram:{i}", {"n": i, "text": "你好" * i})
    await store.put_state("telegram:3", {"n": 33})
    await store.delete_state("telegram:4")
    await store.put_states({f"web:{i}": {"w": i} for i in range(700)})  # more than one batch
    store = await reopen(store, opener)
    assert await store.count_states() == 19 + 700
    assert await store.get_state("telegram:3") == {"n": 33}
    assert await store.get_state("telegram:4") is None
    assert await store.get_state("telegram:7") == {"n": 7, "text": "你好" * 7}
    assert await store.get_state("web:699") == {"w": 699}


async def test_concurrent_state_writes_keep_the_last(store):
    await asyncio.gather(*(store.put_state(f"telegram:{i % 5}", {"i": i}) for i in range(50)))
    assert await store.count_states() == 5
    assert await store.get_state("telegram:4") == {"i": 49}


# -- the outbox -------------------------------------------------------------------


def note(case_id=None, **extra):
    msg = {"kind": "status", "text": "您的案件已受理", "owner": dict(ALICE)}
    if case_id:
        msg["case_id"] = case_id
    msg.update(extra)
    return msg


async def test_outbox_add_assigns_the_store_fields(store):
    m = await store.outbox_add(note("HQ-2611-2222", buttons=[["已处理", "r:1"]]), now=T0)
    assert m["status"] == "pending" and m["attempts"] == 0
    assert m["created_at"] == m["next_at"] == iso(T0)
    assert m["lease_until"] is None and m["sent_at"] is None and m["last_error"] is None
    assert m["text"] == "您的案件已受理" and m["buttons"] == [["已处理", "r:1"]]  # opaque, kept
    assert m["case_id"] == "HQ-2611-2222" and m["owner"] == ALICE
    assert isinstance(m["id"], str)
    later = await store.outbox_add(note(next_at=T0 + timedelta(hours=1)), now=T0)
    assert later["next_at"] == iso(T0 + timedelta(hours=1))
    forged = await store.outbox_add(note(id="x", status="sent", attempts=9), now=T0)
    assert forged["id"] != "x" and forged["status"] == "pending" and forged["attempts"] == 0
    ids = [m["id"], later["id"], forged["id"]]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert await store.outbox_get(m["id"]) == m
    assert await store.outbox_get("nope") is None
    with pytest.raises(TypeError):
        await store.outbox_add("text")
    with pytest.raises(TypeError):
        await store.outbox_add({"text": object()})


async def test_outbox_ids_sort_in_insertion_order(store):
    ids = [(await store.outbox_add(note(n=i), now=T0))["id"] for i in range(25)]
    assert ids == sorted(ids)
    assert [m["n"] for m in await store.outbox_list()] == list(range(25))


async def test_outbox_claim_due_oldest_first_with_limit(store):
    first = await store.outbox_add(note(n=0), now=T0)
    future = await store.outbox_add(note(n=1, next_at=T0 + timedelta(minutes=10)), now=T0)
    rest = [await store.outbox_add(note(n=i), now=T0) for i in range(2, 6)]
    got = await store.outbox_claim(T0, limit=3, lease_seconds=30)
    assert [m["id"] for m in got] == [first["id"], rest[0]["id"], rest[1]["id"]]
    for m in got:
        assert m["status"] == "claimed" and m["lease_until"] == iso(T0 + timedelta(seconds=30))
        assert (await store.outbox_get(m["id"]))["status"] == "claimed"
    got2 = await store.outbox_claim(T0 + timedelta(seconds=1))
    assert [m["id"] for m in got2] == [rest[2]["id"], rest[3]["id"]]  # not yet the future one
    assert await store.outbox_claim(T0 + timedelta(seconds=2)) == []
    later = await store.outbox_claim(T0 + timedelta(minutes=10))
    # The future one is due now, and every lease has run out: all of them, oldest first.
    assert [m["id"] for m in later] == sorted([first["id"], future["id"]] + [m["id"] for m in rest])
    assert (await store.outbox_counts())["claimed"] == 6


async def test_outbox_expired_lease_is_claimed_again(store):
    m = await store.outbox_add(note(), now=T0)
    assert [x["id"] for x in await store.outbox_claim(T0, lease_seconds=60)] == [m["id"]]
    assert await store.outbox_claim(T0 + timedelta(seconds=59)) == []
    again = await store.outbox_claim(T0 + timedelta(seconds=60), lease_seconds=60)  # lease over: a dead worker's
    assert [x["id"] for x in again] == [m["id"]]
    assert again[0]["lease_until"] == iso(T0 + timedelta(seconds=120))
    assert again[0]["attempts"] == 0


async def test_outbox_sent_retry_fail(store):
    a, b, c, d = [await store.outbox_add(note(n=i), now=T0) for i in range(4)]
    await store.outbox_claim(T0)
    await store.outbox_sent(a["id"], T0 + timedelta(seconds=1))
    got = await store.outbox_get(a["id"])
    assert got["status"] == "sent" and got["sent_at"] == iso(T0 + timedelta(seconds=1))
    await store.outbox_retry(b["id"], T0 + timedelta(minutes=5), "timeout")
    got = await store.outbox_get(b["id"])
    assert got["status"] == "pending" and got["attempts"] == 1 and got["last_error"] == "timeout"
    assert got["next_at"] == iso(T0 + timedelta(minutes=5)) and got["lease_until"] is None
    await store.outbox_fail(c["id"], "blocked", "Forbidden: bot was blocked by the user")
    await store.outbox_fail(d["id"], "parked", "5 tries")
    assert (await store.outbox_get(c["id"]))["status"] == "blocked"
    assert (await store.outbox_get(d["id"]))["last_error"] == "5 tries"
    assert await store.outbox_counts() == {"pending": 1, "claimed": 0, "sent": 1, "blocked": 1, "parked": 1}
    # Sent and failed messages are final: never claimed again, whatever the time.
    assert await store.outbox_claim(T0 + timedelta(minutes=4)) == []
    again = await store.outbox_claim(T0 + timedelta(days=9))
    assert [m["id"] for m in again] == [b["id"]]
    await store.outbox_retry(b["id"], T0 + timedelta(days=10), "429")
    assert (await store.outbox_get(b["id"]))["attempts"] == 2
    with pytest.raises(ValueError):
        await store.outbox_fail(b["id"], "sent", "x")
    for call in (store.outbox_sent("nope", T0), store.outbox_retry("nope", T0, "x"),
                 store.outbox_fail("nope", "parked", "x")):
        with pytest.raises(MessageNotFound):
            await call
    assert issubclass(MessageNotFound, StoreError)


async def test_outbox_list_and_counts(store):
    assert await store.outbox_counts() == dict.fromkeys(OUTBOX_STATUSES, 0)
    a1 = await store.outbox_add(note("HQ-2611-2222", n=1), now=T0)
    b1 = await store.outbox_add(note("HQ-2611-3333", n=2), now=T0)
    a2 = await store.outbox_add(note("HQ-2611-2222", n=3), now=T0)
    op = await store.outbox_add({"kind": "new_case", "chat_id": "-100123", "text": "新案件"}, now=T0)
    await store.outbox_claim(T0, limit=1)
    await store.outbox_sent(a1["id"], T0)
    assert [m["id"] for m in await store.outbox_list(case_id="HQ-2611-2222")] == [a1["id"], a2["id"]]
    assert [m["id"] for m in await store.outbox_list(status="pending")] == [b1["id"], a2["id"], op["id"]]
    assert [m["id"] for m in await store.outbox_list(case_id="HQ-2611-2222", status="sent")] == [a1["id"]]
    assert [m["id"] for m in await store.outbox_list(limit=2)] == [a1["id"], b1["id"]]
    assert await store.outbox_list(case_id="HQ-2611-9999") == []
    assert (await store.outbox_list(case_id="HQ-2611-3333"))[0]["text"] == "您的案件已受理"
    assert await store.outbox_counts() == {"pending": 3, "claimed": 0, "sent": 1, "blocked": 0, "parked": 0}
    with pytest.raises(ValueError):
        await store.outbox_list(status="lost")
    listed = await store.outbox_list()
    listed[0]["text"] = "changed"  # private copies
    assert (await store.outbox_get(a1["id"]))["text"] == "您的案件已受理"


async def test_outbox_two_concurrent_claimers_never_share(store):
    for i in range(120):
        await store.outbox_add(note(n=i), now=T0)

    async def worker():
        got = []
        while True:
            batch = await store.outbox_claim(T0, limit=7, lease_seconds=300)
            if not batch:
                return got
            got += [m["id"] for m in batch]
            await asyncio.sleep(0)

    a, b = await asyncio.gather(worker(), worker())
    assert not set(a) & set(b)
    assert len(a) + len(b) == len(set(a) | set(b)) == 120
    assert a and b  # both took part


async def test_outbox_survives_reopen_and_claims_are_released(store, opener, durable, backend):
    sent = await store.outbox_add(note(n=1), now=T0)
    claimed = await store.outbox_add(note(n=2), now=T0)
    retried = await store.outbox_add(note(n=3), now=T0)
    await store.outbox_claim(T0, lease_seconds=3600)
    await store.outbox_sent(sent["id"], T0)
    await store.outbox_retry(retried["id"], T0 + timedelta(hours=2), "500")
    store = await reopen(store, opener)
    got = await store.outbox_get(claimed["id"])
    if backend in SINGLE_PROCESS:
        # One process per store: a claim by the previous process is void.
        assert got["status"] == "pending" and got["lease_until"] is None
        assert [m["id"] for m in await store.outbox_claim(T0)] == [claimed["id"]]
    else:
        # Other workers may be alive: the claim holds until its lease ends.
        assert got["status"] == "claimed"
        assert await store.outbox_claim(T0) == []
        assert [m["id"] for m in await store.outbox_claim(T0 + timedelta(seconds=3600))] == [claimed["id"]]
    assert (await store.outbox_get(sent["id"]))["status"] == "sent"
    assert (await store.outbox_get(retried["id"]))["attempts"] == 1
    new = await store.outbox_add(note(n=4), now=T0)
    assert new["id"] > retried["id"]  # ids keep growing across reopen
    assert await store.outbox_counts() == {"pending": 2, "claimed": 1, "sent": 1, "blocked": 0, "parked": 0}


async def test_purge_removes_the_cases_outbox(store, opener, backend, clock, tmp_path):
    a = await store.create(sample_case())
    b = await store.create(sample_case())
    ma = await store.outbox_add(note(a["id"], text="您的案件已办结：杭州甲乙丙公司"), now=T0)
    mb = await store.outbox_add(note(b["id"]), now=T0)
    await store.outbox_claim(T0)
    await store.outbox_sent(ma["id"], T0)
    await store.update(a["id"], {"status": "closed"})
    clock.advance(days=2)
    assert await store.purge(timedelta(days=1)) == [a["id"]]
    assert await store.outbox_get(ma["id"]) is None
    assert await store.outbox_list(case_id=a["id"]) == []
    assert [m["id"] for m in await store.outbox_list()] == [mb["id"]]
    assert sum((await store.outbox_counts()).values()) == 1
    if backend == "memory":
        return
    if backend == "tinydb":  # gone from the files too
        for f in (tmp_path / "data").iterdir():
            assert "杭州甲乙丙公司".encode() not in f.read_bytes(), f.name
    store = await reopen(store, opener)
    assert await store.outbox_get(ma["id"]) is None
    assert (await store.outbox_counts())["claimed"] == (0 if backend in SINGLE_PROCESS else 1)


# -- locks and health --------------------------------------------------------------


async def test_chat_lock_serialises_one_chat_in_order(store):
    events = []

    async def turn(key, n):
        async with store.chat_lock(key):
            events.append(("in", key, n))
            await asyncio.sleep(0.01)
            events.append(("out", key, n))

    tasks = []
    for n in range(5):
        tasks.append(asyncio.create_task(turn("telegram:1", n)))
        await asyncio.sleep(0)  # queued in this order
    await asyncio.gather(*tasks)
    assert events == [(io, "telegram:1", n) for n in range(5) for io in ("in", "out")]


async def test_chat_lock_lets_other_chats_run(store):
    inside = asyncio.Event()
    release = asyncio.Event()

    async def slow():
        async with store.chat_lock("telegram:1"):
            inside.set()
            await release.wait()

    task = asyncio.create_task(slow())
    await inside.wait()
    async with store.chat_lock("telegram:2"):  # not held up by chat 1
        pass
    release.set()
    await task
    async with store.chat_lock("telegram:1"):  # released after an exception-free turn
        pass
    with pytest.raises(RuntimeError):
        async with store.chat_lock("telegram:3"):
            raise RuntimeError("turn failed")
    async with store.chat_lock("telegram:3"):  # ... and after a failed one
        pass


async def test_singleton_never_blocks(store):
    async with store.singleton("reminder-sweep") as got:
        assert got is True
        async with store.singleton("reminder-sweep") as again:
            assert again is False
        async with store.singleton("outbox-sender") as other:
            assert other is True
    async with store.singleton("reminder-sweep") as got:
        assert got is True


async def test_ping(store):
    await store.ping()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()
    with pytest.raises(StoreClosed):
        await store.get_state("telegram:1")
    with pytest.raises(StoreClosed):
        await store.outbox_add(note())


async def test_many_due_reminders_are_copied_in_slices(store, monkeypatch):
    """A big sweep gives the event loop back between slices, so other chats
    are answered meanwhile (the slice length is a setting; 0 = every chunk)."""
    import bot.store.local

    if not hasattr(store, "_rem_index"):
        pytest.skip("not a single-process store")
    monkeypatch.setattr(bot.store.local, "_SLICE", 0)
    for i in range(3):
        c = await store.create(sample_case())
        await store.set_reminder(c["id"], T0 + timedelta(minutes=i), "follow_up")
    # 1,000 more straight into the index (fast to set up; same code path when read).
    with store._mem:
        for i in range(1000):
            store._rem_index.set_case(f"X{i:04d}", "telegram:1", [
                {"case_id": f"X{i:04d}", "kind": "follow_up", "due": iso(T0 - timedelta(minutes=i))}])
    ran = []

    async def other_chat():
        ran.append("other")

    task = asyncio.create_task(other_chat())
    due = await store.due_reminders(T0 + timedelta(hours=1))
    ran.append("sweep done")
    await task
    assert ran == ["other", "sweep done"]
    assert len(due) == 1003
    assert [r["due"] for r in due] == sorted(r["due"] for r in due)


async def test_huge_ages_mean_since_ever(store, clock):
    a = await store.create(sample_case())
    await store.update(a["id"], {"status": "closed"})
    huge = timedelta(days=999999999)
    assert await store.list(older_than=huge) == []
    assert [c["id"] for c in await store.list(newer_than=huge)] == [a["id"]]
    assert await store.purge(huge) == []
    assert await store.purge(-huge) == [a["id"]]  # closed before the end of time
