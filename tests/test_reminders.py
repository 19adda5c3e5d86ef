"""Reminder scheduling (bot/reminders.py) on both store backends."""

from datetime import datetime, timedelta, timezone

import pytest

from bot import reminders
from bot.reminders import (
    KIND,
    after_transition,
    due,
    parse_reminder_value,
    reminder_message,
    schedule_after_submit,
    snooze,
)
from bot.store import open_store
from dialogs.lifecycle import load_lifecycle, record

T0 = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
OWNER = {"messenger": "telegram", "user_id": "42"}
LC = load_lifecycle()


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture(params=["memory", "tinydb"])
def backend(request):
    return request.param


@pytest.fixture
async def opener(backend, tmp_path):
    opened = []

    def open_():
        store = open_store(str(tmp_path / "data"), backend=backend, clock=Clock())
        opened.append(store)
        return store

    yield open_
    for s in opened:
        await s.close()


async def submitted_case(store, channel="platform", when=T0):
    case = await store.create({"owner": OWNER, "status": "ready", "type": "rumor", "platform": "微博"})
    return await record(store, case["id"], "submitted", who="user", channel=channel, ref="TS1", now=when)


def at(days=0, **kw):
    return T0 + timedelta(days=days, **kw)


async def test_due_after_n_days_and_not_before(opener):
    store = opener()
    case = await submitted_case(store)
    rem = await schedule_after_submit(store, case["id"], 7, T0)
    assert rem["kind"] == KIND and rem["due"] == at(7).isoformat()
    assert rem["channel"] == "platform" and rem["days"] == 7
    assert await due(store, at(6, hours=23, minutes=59)) == []
    [(got, r)] = await due(store, at(7))
    assert got["id"] == case["id"] and r["kind"] == KIND
    assert len(await due(store, at(30))) == 1  # stays until answered


async def test_now_as_iso_string(opener):
    store = opener()
    case = await submitted_case(store)
    await schedule_after_submit(store, case["id"], 3, "2026-11-05T16:00:00+08:00")
    assert await due(store, "2026-11-08T07:59:59+00:00") == []
    assert len(await due(store, "2026-11-08T08:00:00+00:00")) == 1


async def test_reminder_survives_reopen(opener, backend):
    if backend == "memory":
        pytest.skip("the memory store keeps nothing across reopen")
    store = opener()
    case = await submitted_case(store)
    await schedule_after_submit(store, case["id"], 7, T0)
    await store.close()
    store = opener()
    assert await due(store, at(6)) == []
    [(got, rem)] = await due(store, at(7))
    assert got["id"] == case["id"] and rem["due"] == at(7).isoformat()


async def test_snooze_moves_the_reminder(opener):
    store = opener()
    case = await submitted_case(store)
    await schedule_after_submit(store, case["id"], 7, T0)
    rem = await snooze(store, case["id"], 3, at(7))
    assert rem["due"] == at(10).isoformat()
    assert rem["snoozed"] == 1 and rem["channel"] == "platform"
    assert await due(store, at(9)) == []
    assert len(await due(store, at(10))) == 1
    rem = await snooze(store, case["id"], 3, at(10))
    assert rem["snoozed"] == 2


async def test_rescheduling_replaces_the_reminder(opener):
    store = opener()
    case = await submitted_case(store)
    await schedule_after_submit(store, case["id"], 7, T0)
    case = await record(store, case["id"], "escalated", who="user", channel="province", now=at(8))
    rem = await schedule_after_submit(store, case["id"], 7, at(8))
    assert rem["channel"] == "province"
    assert len((await store.get(case["id"]))["reminders"]) == 1
    assert await due(store, at(14)) == []
    assert len(await due(store, at(15))) == 1


async def test_after_transition_schedules_and_clears(opener):
    store = opener()
    case = await submitted_case(store)
    assert (await after_transition(store, case, T0, 7))["due"] == at(7).isoformat()
    case = await record(store, case["id"], "accepted", who="user", now=at(2))
    assert await after_transition(store, case, at(2), 7) is None
    assert "reminders" not in await store.get(case["id"])
    assert await due(store, at(30)) == []


async def test_closed_cases_are_not_reminded(opener):
    store = opener()
    case = await submitted_case(store)
    await schedule_after_submit(store, case["id"], 7, T0)
    await record(store, case["id"], "closed", who="user", reason="withdrawn", now=at(1))
    assert await due(store, at(8)) == []
    assert "reminders" not in await store.get(case["id"])


async def test_bad_days_are_refused(opener):
    store = opener()
    case = await submitted_case(store)
    for bad in (0, -1, 1.5, "7", True):
        with pytest.raises(ValueError):
            await schedule_after_submit(store, case["id"], bad, T0)


async def test_reminders_of_someone_else_are_refused(opener):
    store = opener()
    case = await submitted_case(store)
    with pytest.raises(KeyError):
        await schedule_after_submit(store, case["id"], 7, T0, owner={"messenger": "telegram", "user_id": "9"})
    with pytest.raises(KeyError):
        await schedule_after_submit(store, "HQ-2611-2222", 7, T0)


async def test_message_of_a_due_reminder(opener):
    store = opener()
    case = await submitted_case(store)
    await schedule_after_submit(store, case["id"], 7, T0)
    [(case, rem)] = await due(store, at(9))
    msg = reminder_message(case, LC, now=at(9))
    cid = case["id"]
    assert cid in msg["text"]
    assert "9天前" in msg["text"] and "平台" in msg["text"]
    assert "7天是护企默认的提醒间隔" in msg["text"] and "不是法定期限" in msg["text"]
    assert msg["buttons"] == [
        [{"label": "已处理", "value": f"rem:done:{cid}"}],
        [{"label": "仍在处理", "value": f"rem:wait:{cid}"}],
        [{"label": "没回应", "value": f"rem:none:{cid}"}],
    ]
    # Without now, the age runs to the reminder's due time.
    assert "7天前" in reminder_message(case)["text"]


def test_message_is_pure_and_falls_back():
    case = {"id": "HQ-2611-7K3Q", "status": "escalated", "created_at": T0.isoformat(),
            "history": [{"to": "escalated", "channel": "central", "when": at(1).isoformat()}]}
    msg = reminder_message(case, LC, now=at(5), days=4)
    assert "4天前" in msg["text"] and "12377" in msg["text"] and "4天是护企默认" in msg["text"]
    msg = reminder_message({"id": "X", "created_at": T0.isoformat()}, LC, now=at(2))
    assert "2天前" in msg["text"] and LC.reminder["unknown_channel"] in msg["text"]


def test_parse_reminder_value():
    assert parse_reminder_value("rem:done:HQ-2611-7K3Q") == ("done", "HQ-2611-7K3Q")
    assert parse_reminder_value("rem:none:HQ-2611-7K3Q") == ("none", "HQ-2611-7K3Q")
    for bad in ("rem:maybe:HQ-1", "rem:done:", "type:rumor", None, "rem:wait"):
        assert parse_reminder_value(bad) is None
    # Every button of the data is understood.
    for row in reminder_message({"id": "HQ-2611-7K3Q"}, LC, now=T0)["buttons"]:
        assert parse_reminder_value(row[0]["value"])[1] == "HQ-2611-7K3Q"


def test_default_interval_comes_from_config(monkeypatch):
    monkeypatch.setenv("HUQI_REMINDER_DAYS", "10")
    msg = reminder_message({"id": "HQ-2611-7K3Q"}, LC, now=T0)
    assert "10天是护企默认的提醒间隔" in msg["text"]
    assert reminders.KIND == "no_news"
