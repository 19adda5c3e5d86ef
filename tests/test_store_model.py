"""Random sequences of store calls give the same answers on the TinyDB store
as on the in-memory reference, and the TinyDB store gives them again after
reopening (claims released, as a single-process store does)."""

import random
from datetime import datetime, timedelta, timezone

import pytest

from bot.store import StoreError, open_store

T0 = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
OWNERS = [{"messenger": "telegram", "user_id": str(u)} for u in (1, 2, 3)]


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


async def call(store, name, *args, **kw):
    """The outcome of a call: its result, or the kind of error it raised."""
    try:
        return ("ok", await getattr(store, name)(*args, **kw))
    except (StoreError, KeyError, ValueError, TypeError) as exc:
        return ("error", type(exc).__name__)


async def snapshot(store, now):
    return {
        "cases": await store.list(),
        "due": await store.due_reminders(now + timedelta(days=400)),
        "states": {f"telegram:{i}": await store.get_state(f"telegram:{i}") for i in range(8)},
        "count_states": await store.count_states(),
        "outbox": await store.outbox_list(),
        "counts": await store.outbox_counts(),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_tinydb_behaves_like_the_reference(tmp_path, seed, monkeypatch):
    import bot.caseid

    rnd = random.Random(seed)
    draws = random.Random(seed)  # both stores draw the same case numbers
    monkeypatch.setattr(bot.caseid, "_random_part", lambda w: "".join(draws.choice("ABCD") for _ in range(w)))
    clock = Clock()
    ref = open_store(None, backend="memory", clock=clock)
    disk = open_store(str(tmp_path / "data"), clock=clock, compact_every=37)
    ids: list = []
    msgs: list = []
    try:
        for step in range(400):
            clock.now += timedelta(minutes=rnd.randint(0, 90))
            now = clock.now
            op = rnd.randrange(12)
            owner = rnd.choice(OWNERS)
            cid = rnd.choice(ids) if ids and rnd.random() < 0.9 else "HQ-2611-2222"
            mid = rnd.choice(msgs) if msgs and rnd.random() < 0.9 else "999"
            if op == 0:
                args = ("create", {"owner": owner, "n": step, "type": rnd.choice(["rumor", "doxxing"])})
            elif op == 1:
                args = ("update", cid, {"n": step, "status": rnd.choice(["submitted", "closed", "replied"])})
            elif op == 2:
                args = ("append_event", cid, {"note": f"e{step}", "to": rnd.choice([None, "closed", "accepted"])})
            elif op == 3:
                args = ("set_reminder", cid, now + timedelta(hours=rnd.randint(-48, 48)),
                        rnd.choice(["no_news", "deadline"]))
            elif op == 4:
                args = ("clear_reminder", cid, rnd.choice([None, "no_news"]))
            elif op == 5:
                args = ("purge", timedelta(days=rnd.randint(0, 3)))
            elif op == 6:
                key = f"telegram:{rnd.randrange(8)}"
                args = ("put_state", key, {"step": step, "text": "对话" * rnd.randint(0, 5)})
            elif op == 7:
                args = ("delete_state", f"telegram:{rnd.randrange(8)}")
            elif op == 8:
                args = ("outbox_add", {"case_id": cid, "owner": owner, "text": f"通知{step}"})
            elif op == 9:
                args = ("outbox_claim", now, rnd.randint(1, 4), rnd.choice([30, 3600]))
            elif op == 10:
                args = rnd.choice([
                    ("outbox_sent", mid, now),
                    ("outbox_retry", mid, now + timedelta(minutes=rnd.randint(1, 120)), "timeout"),
                    ("outbox_fail", mid, rnd.choice(["blocked", "parked"]), "403"),
                ])
            else:
                args = ("due_reminders", now, rnd.choice([None, owner]), rnd.choice([None, 2]))
            name, rest = args[0], args[1:]
            if name == "outbox_add":
                rest = (rest[0], now)
            draws.seed(step)
            expected = await call(ref, name, *rest)
            draws.seed(step)  # the same case number draws
            got = await call(disk, name, *rest)
            assert got == expected, f"step {step}: {name} differs"
            if name == "create" and got[0] == "ok":
                ids.append(got[1]["id"])
            if name == "outbox_add" and got[0] == "ok":
                msgs.append(got[1]["id"])
        final = await snapshot(ref, clock.now)
        assert await snapshot(disk, clock.now) == final
        await disk.close()
        disk = open_store(str(tmp_path / "data"), clock=clock)
        for m in final["outbox"]:  # a claim by the closed process is void
            if m["status"] == "claimed":
                m.update(status="pending", lease_until=None)
        final["counts"]["pending"] += final["counts"]["claimed"]
        final["counts"]["claimed"] = 0
        assert await snapshot(disk, clock.now) == final
        assert final["cases"] and final["outbox"]  # the sequence did something
    finally:
        await ref.close()
        await disk.close()
