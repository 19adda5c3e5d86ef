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
