"""``huqi db migrate`` and ``huqi db copy`` against a real PostgreSQL."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from bot.cli import main
from bot.store import CaseExists, open_store
from bot.store.migrations import LATEST, check_schema
from tests.pg import require_cluster

T0 = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
ALICE = {"messenger": "telegram", "user_id": "1001"}
BOB = {"messenger": "telegram", "user_id": "2002"}


@pytest.fixture
def url(monkeypatch):
    monkeypatch.delenv("HUQI_DATABASE_URL", raising=False)
    return require_cluster().create_database()


def test_migrate_then_nothing_to_do(url, capsys):
    assert main(["db", "migrate", "--url", url]) == 0
    assert f"version {LATEST}" in capsys.readouterr().out
    assert asyncio.run(check_schema(url)) == LATEST
    assert main(["db", "migrate", "--url", url]) == 0
    assert "already" in capsys.readouterr().out


def test_migrate_needs_a_database(monkeypatch, capsys):
    monkeypatch.delenv("HUQI_DATABASE_URL", raising=False)
    assert main(["db", "migrate"]) == 2
    assert "HUQI_DATABASE_URL" in capsys.readouterr().err
    assert main(["db", "migrate", "--url", "mysql://x"]) == 2


def test_migrate_unreachable_database(tmp_path, capsys):
    bad = f"postgresql://u:secret@/nodb?host={tmp_path}&port=1"
    assert main(["db", "migrate", "--url", bad]) == 3
    err = capsys.readouterr().err
    assert "secret" not in err and "nodb" in err and "Traceback" not in err


async def _fill(directory):
    """An embedded installation: cases (one purged), states, outbox messages."""
    clock = lambda: T0  # noqa: E731
    store = open_store(str(directory), backend="tinydb", clock=clock)
    a = await store.create({"owner": ALICE, "type": "rumor", "enterprise": {"name": "某某科技"}})
    await store.append_event(a["id"], {"to": "submitted", "channel": "platform", "note": "已提交"})
    await store.set_reminder(a["id"], T0 + timedelta(days=7), "follow_up", note="七日")
    b = await store.create({"owner": BOB, "type": "doxxing", "status": "closed"})
    gone = await store.create({"owner": BOB, "type": "rumor", "status": "closed"})
    await store.purge(T0 + timedelta(seconds=1))  # b and gone: closed before the cutoff
    c = await store.create({"owner": BOB, "type": "impersonation", "links": ["https://x.example/1"]})
    await store.put_state("telegram:1001", {"step": "where", "answers": {"平台": "微博"}})
    await store.put_state("web:ab12", {"step": "start"})
    sent = await store.outbox_add({"case_id": a["id"], "owner": ALICE, "text": "已受理"}, now=T0)
    claimed = await store.outbox_add({"case_id": c["id"], "owner": BOB, "text": "提醒"}, now=T0)
    pending = await store.outbox_add({"chat_id": "-100", "text": "新案件"}, now=T0)
    await store.outbox_claim(T0)
    await store.outbox_sent(sent["id"], T0)
    await store.outbox_retry(pending["id"], T0 + timedelta(minutes=1), "timeout")
    await store.close()
    return {"cases": [a["id"], c["id"]], "purged": sorted([b["id"], gone["id"]]),
            "outbox": [sent["id"], claimed["id"], pending["id"]]}


async def _snapshot(store):
    return {
        "cases": await store.list(),
        "due": await store.due_reminders(T0 + timedelta(days=30)),
        "states": {k: await store.get_state(k) for k in ("telegram:1001", "web:ab12")},
        "outbox": await store.outbox_list(),
    }


def test_copy_moves_everything_once(url, tmp_path, capsys):
    data = tmp_path / "data"
    made = asyncio.run(_fill(data))
    assert main(["db", "migrate", "--url", url]) == 0
    capsys.readouterr()

    assert main(["db", "copy", "--from", str(data), "--to", url]) == 0
    out = capsys.readouterr().out
    assert "cases: 2 copied, 0 already there" in out
    assert "conversation states: 2 copied, 0 already there" in out
    assert "outbox messages: 3 copied, 0 already there" in out
    assert "retired case numbers: 2 copied" in out

    async def compare():
        src = open_store(str(data), backend="tinydb")
        dst = open_store(None, backend="postgres", url=url)
        try:
            before, after = await _snapshot(src), await _snapshot(dst)
            assert after["cases"] == before["cases"]  # history, reminders, times: all of it
            assert sorted(c["id"] for c in after["cases"]) == sorted(made["cases"])
            assert after["due"] == before["due"] and len(after["due"]) == 1
            assert after["states"] == before["states"]
            assert after["outbox"] == before["outbox"]  # the embedded store released its claim on open
            assert [m["status"] for m in after["outbox"]] == ["sent", "pending", "pending"]
            for cid in made["purged"]:  # purged numbers stay used
                with pytest.raises(CaseExists):
                    await dst.create({"owner": ALICE, "id": cid})
            new = await dst.outbox_add({"text": "after the copy"})
            assert new["id"] > max(made["outbox"])
        finally:
            await src.close()
            await dst.close()

    asyncio.run(compare())

    assert main(["db", "copy", "--from", str(data), "--to", url]) == 0
    out = capsys.readouterr().out
    assert "cases: 0 copied, 2 already there" in out
    assert "conversation states: 0 copied, 2 already there" in out
    assert "outbox messages: 0 copied, 3 already there" in out
    assert "retired case numbers: 0 copied, 2 already there" in out


def test_copy_refuses_clearly(url, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HUQI_DATA_DIR", raising=False)
    assert main(["db", "copy", "--to", url]) == 2
    assert "HUQI_DATA_DIR" in capsys.readouterr().err
    assert main(["db", "copy", "--from", str(tmp_path / "missing"), "--to", url]) == 2
    assert "missing" in capsys.readouterr().err
    data = tmp_path / "data"
    asyncio.run(_fill(data))
    # An empty database: says what to run.
    assert main(["db", "copy", "--from", str(data), "--to", url]) == 3
    assert "huqi db migrate" in capsys.readouterr().err

    # main() runs its own event loop: call it from a thread of this one.
    async def run():
        held = open_store(str(data), backend="tinydb")
        try:
            rc = await asyncio.to_thread(main, ["db", "copy", "--from", str(data), "--to", url])
        finally:
            await held.close()
        return rc

    assert asyncio.run(run()) == 3
    assert "another huqi process" in capsys.readouterr().err


def test_cases_commands_work_on_the_database_beside_running_workers(url, tmp_path, capsys, monkeypatch):
    assert main(["db", "migrate", "--url", url]) == 0
    monkeypatch.setenv("HUQI_DATABASE_URL", url)
    monkeypatch.setenv("HUQI_DATA_DIR", str(tmp_path / "not-here"))  # no directory on the staff's machine
    owner = {"messenger": "telegram", "user_id": "1001"}

    async def setup():
        worker = open_store(None, backend="postgres", url=url)  # a worker holding the database
        case = await worker.create({"owner": owner, "status": "draft", "type": "rumor", "platform": "weibo",
                                    "province": "广东", "enterprise": "青禾食品有限公司"})
        return worker, case["id"]

    async def check(worker, case_id):
        case = await worker.get(case_id)
        notes = await worker.outbox_list(case_id=case_id)
        await worker.close()
        return case, notes

    loop = asyncio.new_event_loop()
    try:
        worker, case_id = loop.run_until_complete(setup())
        assert main(["cases", "set-status", case_id, "submitted", "--channel", "platform"]) == 0
        assert main(["cases", "list"]) == 0
        assert case_id in capsys.readouterr().out
        case, notes = loop.run_until_complete(check(worker, case_id))
    finally:
        loop.close()
    assert case["status"] == "submitted" and case["history"][-1]["to"] == "submitted"
    assert len(notes) == 1 and notes[0]["status"] == "pending"  # the owner is told, through the outbox
