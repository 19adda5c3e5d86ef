"""The workspace's statistics (per-case rows summed) answer exactly what bot.ops.compute_stats answers,
and its case cache re-reads only what the store changed."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from bot import ops
from bot.store import open_store
from bot.workspace import tally
from bot.workspace.cache import CaseCache
from tests.test_workspace import NOW, ago, seed_cases

STATUSES = ["draft", "ready", "submitted", "accepted", "action_taken", "rejected", "escalated", "closed",
            "已提交", "weird", None]
PLATFORMS = ["weibo", "douyin", "xiaohongshu", "微博", "小红书", "Unknown-Site", "", None,
             ["weibo", "douyin"], ["微博", "weibo"]]
PROVINCES = ["shanghai", "上海", "广东省", "zhejiang", "nowhere", None, ["beijing", "北京"]]
TYPES = [("rumor", "rumor.fabricated_violation"), ("insult", "insult.abuse"),
         ("impersonation", "impersonation.account_identity"), (None, None), ("made-up", "made-up.x")]


def storable(c: dict) -> dict:
    return {**c, "history": [e for e in c["history"] if isinstance(e, dict)]}


def varied_cases(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t, sub = rnd.choice(TYPES)
        created = rnd.randint(0, 400)
        c = {"id": f"HQ-T{i:05d}", "status": rnd.choice(STATUSES), "type": t, "subtype": sub,
             "platform": rnd.choice(PLATFORMS), "province": rnd.choice(PROVINCES),
             "created_at": ago(created) if rnd.random() > 0.05 else rnd.choice([None, "not a time"]),
             "owner": {"messenger": "telegram", "user_id": str(i)}}
        history = []
        if rnd.random() < 0.7:
            sub_day = rnd.randint(0, created)
            history.append({"when": ago(sub_day), "from": "ready", "to": "submitted", "channel": "platform"})
            if rnd.random() < 0.5:
                history.append({"when": ago(max(0, sub_day - rnd.randint(0, 30))), "from": "submitted",
                                "to": "action_taken", "outcome": "deleted"})
        if rnd.random() < 0.1:
            history.append("not an event")
        c["history"] = history
        if rnd.random() < 0.3:
            c["reminders"] = [{"kind": "follow_up", "due": ago(rnd.randint(-20, 20))}]
        r = rnd.random()
        if r < 0.3:
            c["satisfaction"] = {"score": rnd.randint(1, 5), "comment": rnd.choice(["", "很好", None]),
                                 "at": ago(1)}
        elif r < 0.35:
            c["satisfaction"] = rnd.choice([{"score": True}, {"score": 9}, {"score": "4"}, "five", {}])
        out.append(c)
    return out


@pytest.mark.parametrize("days", [7, 15])
@pytest.mark.parametrize("shift", [0, 30])
def test_rows_summed_equal_compute_stats(days, shift):
    cases = varied_cases(600) + seed_cases()
    now = NOW + timedelta(days=shift)
    rows = [tally.row(c, days) for c in cases]
    assert tally.stats(rows, now, days) == ops.compute_stats(cases, now, days)
    subset = cases[::3]
    assert tally.stats([tally.row(c, days) for c in subset], now, days) == ops.compute_stats(subset, now, days)
    assert tally.stats([], now, days) == ops.compute_stats([], now, days)


async def test_the_cache_rereads_only_changed_cases(tmp_path):
    store = open_store(str(tmp_path / "data"), clock=lambda: NOW)
    try:
        for c in seed_cases():
            await store.create(c)
        cache = CaseCache()
        first, gen = await cache.cases(store)
        assert [c["id"] for c in first] == [c["id"] for c in await store.list()]
        again, gen2 = await cache.cases(store)
        assert gen2 == gen and again is first
        rows = await cache.rows(first, 7)
        await store.update("HQ-2610-BBBB", {"description": "changed"})
        changed, gen3 = await cache.cases(store)
        assert gen3 == gen + 1
        assert next(c for c in changed if c["id"] == "HQ-2610-BBBB")["description"] == "changed"
        unchanged = [a is b for a, b in zip(first, changed)]
        assert unchanged.count(False) == 1                      # one case decoded again
        rows2 = await cache.rows(changed, 7)
        assert [a is b for a, b in zip(rows, rows2)] == unchanged
        for cid, days_ago in (("HQ-2611-NEW1", 0), ("HQ-2608-OLD1", 90)):   # appended; then re-sorted
            await store.create({**seed_cases()[0], "id": cid, "created_at": ago(days_ago)})
            listed, _ = await cache.cases(store)
            assert [c["id"] for c in listed] == [c["id"] for c in await store.list()]
        changed = listed
        gen3 += 2
        await store.purge(ops._iso(NOW))                          # the closed case goes
        after, gen4 = await cache.cases(store)
        assert gen4 == gen3 + 1 and len(after) == len(changed) - 1
        assert tally.stats(await cache.rows(after, 7), NOW, 7) == ops.compute_stats(await store.list(), NOW, 7)
    finally:
        await store.close()


async def test_a_store_without_a_record_table_is_listed_each_time():
    store = open_store(None, backend="memory", clock=lambda: NOW)
    for c in seed_cases():
        await store.create(c)
    cache = CaseCache()
    cases, gen = await cache.cases(store)
    assert gen is None and len(cases) == 4
    await store.update("HQ-2610-BBBB", {"description": "changed"})
    cases, _ = await cache.cases(store)
    assert next(c for c in cases if c["id"] == "HQ-2610-BBBB")["description"] == "changed"


def normal(st: dict) -> dict:
    """Statistics with each by_* list as {key: (label, count)}: the running totals may list ties in
    another order than compute_stats."""
    return {k: ({r["key"]: (r["label"], r["count"]) for r in v} if k.startswith("by_") else v)
            for k, v in st.items()}


def test_running_totals_follow_changes_additions_and_removals():
    rnd = random.Random(3)
    cases = varied_cases(400, seed=11)
    days = 7
    totals = tally.Totals([tally.row(c, days) for c in cases])
    pool = varied_cases(300, seed=12)
    for step in range(300):
        action = rnd.random()
        if action < 0.5 and cases:                   # a case changes (status, type, places, history...)
            i = rnd.randrange(len(cases))
            new = {**pool[step], "id": cases[i]["id"]}
            totals.change(tally.row(cases[i], days), tally.row(new, days))
            cases[i] = new
        elif action < 0.8:                           # a new case
            new = {**pool[step], "id": f"HQ-N{step:04d}"}
            totals.change(None, tally.row(new, days))
            cases.append(new)
        elif cases:                                  # a case purged
            gone = cases.pop(rnd.randrange(len(cases)))
            totals.change(tally.row(gone, days), None)
        if step % 50 == 0 or step == 299:
            for shift in (0, 40):
                now = NOW + timedelta(days=shift)
                assert normal(totals.stats(now)) == normal(ops.compute_stats(cases, now, days)), step
            assert +totals.cells == tally.month_type([tally.row(c, days) for c in cases])


async def test_overall_statistics_from_the_cache_follow_the_store(tmp_path):
    store = open_store(str(tmp_path / "data"), clock=lambda: NOW)
    try:
        for c in varied_cases(60, seed=5):
            await store.create(storable(c))
        cache = CaseCache()
        await cache.cases(store)
        first, _ = await cache.overall(7, NOW)
        assert first == ops.compute_stats(await store.list(), NOW, 7)   # built in case order: ties too
        listed = await store.list()
        await store.update(listed[3]["id"], {"status": "closed", "type": "insult", "platform": "douyin"})
        await store.create({**storable(varied_cases(1, seed=9)[0]), "id": "HQ-2612-ZZZZ", "created_at": ago(0)})
        await store.purge(ops._iso(NOW + timedelta(days=1)))
        await cache.cases(store)
        st, pairs = await cache.overall(7, NOW)
        everything = await store.list()
        assert normal(st) == normal(ops.compute_stats(everything, NOW, 7))
        assert +pairs == tally.month_type([tally.row(c, 7) for c in everything])
    finally:
        await store.close()
