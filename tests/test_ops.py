"""bot.ops: the staff's operations, on the in-memory store (the API and CLI tests cover the rest)."""

import string
from datetime import datetime, timedelta, timezone

import pytest

from bot import ops
from bot.store import open_store
from dialogs.lifecycle import load_lifecycle

NOW = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
OWNER = {"messenger": "telegram", "user_id": "42"}


def ago(days):
    return (NOW - timedelta(days=days)).isoformat()


def fields(template):
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_every_status_has_plain_words_and_templates_use_known_fields():
    t = ops.texts()
    assert set(t["status_words"]) == set(load_lifecycle().statuses)
    for words in t["status_words"].values():
        assert fields(words) <= {"channel"}
    assert fields(t["notify"]["status"]) == {"case_id", "what", "from_label", "to_label", "extra", "next_action"}
    assert fields(t["notify"]["message"]) == {"case_id", "text"}
    for key, text in t["errors"].items():
        assert text.strip(), key


@pytest.mark.parametrize("raw,key,want", [
    ({"platform": "小红书"}, "platform", ["xiaohongshu"]),
    ({"platform": ["XHS", "微博"]}, "platform", ["xiaohongshu", "weibo"]),
    ({"province": "上海"}, "province", ["shanghai"]),
    ({"province": "粤"}, "province", ["guangdong"]),
    ({"province": "深圳"}, "province", ["guangdong"]),
    ({"status": "已提交,closed"}, "status", ["submitted", "closed"]),
    ({"status": "草稿"}, "status", ["draft", "new"]),
    ({"type": "rumor"}, "type", ["rumor"]),
    ({"overdue": "是"}, "overdue", True),
    ({"messenger": "Telegram"}, "messenger", ["telegram"]),
])
def test_parse_filters(raw, key, want):
    assert ops.parse_filters(raw, NOW)[key] == want


@pytest.mark.parametrize("raw", [{"platform": "火星网"}, {"province": "亚特兰蒂斯"}, {"status": "pending"},
                                 {"type": "信息"}, {"subtype": "rumor.nope"}, {"overdue": "2"},
                                 {"older_than": "1e9"}, {"newer_than": str(10 ** 30)}, {"q": "x" * 500}])
def test_unknown_filter_values_raise(raw):
    with pytest.raises(ops.OpsError) as e:
        ops.parse_filters(raw, NOW)
    assert e.value.code == "bad_filter" and e.value.status == 400 and e.value.message


def test_days_are_bounded_not_overflowing():
    assert ops.parse_days("100000") == 100000
    for bad in ("100001", "99999999999", "-1", "soon", None):
        with pytest.raises(ops.OpsError):
            ops.parse_days(bad)


def test_due_and_overdue():
    submitted = {"status": "submitted", "history": [{"when": ago(10), "to": "submitted", "channel": "platform"}]}
    assert ops.due_at(submitted, 7) == ago(3)
    assert ops.is_overdue(submitted, NOW, 7) and not ops.is_overdue(submitted, NOW, 30)
    reminded = dict(submitted, reminders=[{"kind": "no_news", "due": ago(-2)}])
    assert ops.due_at(reminded, 7) == ago(-2) and not ops.is_overdue(reminded, NOW, 7)
    assert ops.due_at(dict(submitted, status="closed"), 7) is None
    assert ops.due_at({"status": "draft"}, 7) is None


def test_days_to_action_counts_from_the_first_submission():
    case = {"history": [{"when": ago(30), "to": "action_taken"},          # before any submission: ignored
                        {"when": ago(20), "to": "submitted"},
                        {"when": ago(18), "to": "escalated"},
                        {"when": ago(15), "to": "action_taken"},
                        {"when": ago(1), "to": "action_taken"}]}
    assert ops.days_to_action(case) == 5
    assert ops.days_to_action({"history": [{"when": ago(3), "to": "submitted"}]}) is None


def test_local_time_is_beijing():
    assert ops.local_time("2026-11-05T16:30:00+00:00") == "2026-11-06 00:30"
    assert ops.local_time("garbage") == "" and ops.local_time(None) == ""


async def test_transition_notifies_in_plain_words_with_number_and_next_step():
    store = open_store(None, backend="memory", clock=lambda: NOW)
    c = await store.create({"owner": OWNER, "status": "submitted", "type": "rumor",
                            "history": [{"when": ago(3), "to": "submitted", "channel": "province"}]})
    result = await ops.transition(store, c["id"], "action_taken", who="wang", now=NOW, outcome="deleted", days=7)
    assert result["case"]["status"] == "action_taken" and result["event"]["who"] == "wang"
    [msg] = await store.outbox_list(case_id=c["id"])
    lc = load_lifecycle()
    assert c["id"] in msg["text"] and lc.label("action_taken") in msg["text"]
    assert lc.outcomes["deleted"] in msg["text"] and result["next_action"] in msg["text"]
    assert lc.channels["province"] in msg["text"]
    # refused: nothing recorded, nothing queued, what is possible is listed
    with pytest.raises(ops.OpsError) as e:
        await ops.transition(store, c["id"], "submitted", who="wang", now=NOW, days=7)
    assert e.value.status == 409 and [a["to"] for a in e.value.details["allowed"]] == lc.allowed("action_taken")
    assert len((await store.get(c["id"]))["history"]) == 2
    assert len(await store.outbox_list(case_id=c["id"])) == 1
    with pytest.raises(ops.OpsError) as e:
        await ops.transition(store, c["id"], "closed", who="wang", now=NOW, note="x" * 3000, reason="resolved")
    assert e.value.code == "bad_request"
    await store.close()


async def test_purge_with_the_largest_day_count():
    store = open_store(None, backend="memory", clock=lambda: NOW)
    c = await store.create({"owner": OWNER, "status": "closed", "closed_at": ago(400)})
    assert (await ops.purge(store, ops.MAX_DAYS, now=NOW))["removed"] == []
    assert (await ops.purge(store, 365, now=NOW, dry_run=True))["removed"] == []
    assert (await ops.purge(store, 365, now=NOW))["removed"] == [c["id"]]
    await store.close()


async def test_big_selections_give_the_same_answers_off_the_loop(monkeypatch):
    store = open_store(None, backend="memory", clock=lambda: NOW)
    for i in range(12):
        await store.create({"owner": OWNER, "status": "submitted" if i % 2 else "draft", "type": "rumor",
                            "platform": "weibo" if i % 3 else "douyin", "created_at": ago(30 - i),
                            "history": [{"when": ago(20), "to": "submitted", "channel": "platform"}] if i % 2 else []})
    filters = {"platform": "微博", "overdue": "true"}
    inline = (await ops.list_cases(store, filters, now=NOW, days=7), await ops.stats(store, {}, now=NOW, days=7),
              await ops.export_csv(store, {}, now=NOW, days=7))
    monkeypatch.setattr(ops, "OFF_LOOP_FROM", 0)
    threaded = (await ops.list_cases(store, filters, now=NOW, days=7), await ops.stats(store, {}, now=NOW, days=7),
                await ops.export_csv(store, {}, now=NOW, days=7))
    assert threaded == inline and inline[0]["total"] == 4 and inline[1]["total"] == 12
    await store.close()


async def test_two_staff_changing_one_case_at_once_take_turns(tmp_path):
    store = open_store(str(tmp_path / "data"), clock=lambda: NOW)  # writes wait for the disk: real interleaving
    c = await store.create({"owner": OWNER, "status": "submitted",
                            "history": [{"when": ago(3), "to": "submitted", "channel": "platform"}]})
    import asyncio
    results = await asyncio.gather(*(ops.transition(store, c["id"], "accepted", who=w, now=NOW, days=7)
                                     for w in ("wang", "li")), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["OpsError", "dict"]
    refused = next(r for r in results if isinstance(r, ops.OpsError))
    assert refused.status == 409 and refused.details["status_now"] == "accepted"
    assert [e["to"] for e in (await store.get(c["id"]))["history"]] == ["submitted", "accepted"]
    assert len(await store.outbox_list(case_id=c["id"])) == 1
    await store.close()
