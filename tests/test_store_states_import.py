"""The one-time import of the old telegram_states.json into the store."""

import json
import logging
import os

import pytest

from bot.store import import_states_file, open_store

PHONE = "13912345678"


def states_file(path, users):
    path.write_text(json.dumps({"v": 1, "users": users}, ensure_ascii=False), "utf-8")


def record(n):
    return {"state": {"step": "where", "answers": {"电话": PHONE, "n": n}}, "buttons": {"1": "x"},
            "next": 2, "reminded": []}


@pytest.fixture(params=["memory", "tinydb"])
async def store(request, tmp_path):
    s = open_store(str(tmp_path / "data"), backend=request.param)
    yield s
    await s.close()


async def test_imports_once_then_renames(store, tmp_path):
    path = tmp_path / "telegram_states.json"
    states_file(path, {"1001": record(1), "2002": record(2), "bad": "not a record"})
    assert await import_states_file(store, path) == 2
    assert await store.get_state("telegram:1001") == record(1)
    assert await store.get_state("telegram:2002") == record(2)
    assert await store.count_states() == 2
    assert not path.exists()
    assert (tmp_path / "telegram_states.json.imported").exists()
    # Imports once: the renamed file is not read again.
    assert await import_states_file(store, path) == 0
    assert await store.count_states() == 2


async def test_newer_states_in_the_store_are_kept(store, tmp_path):
    path = tmp_path / "telegram_states.json"
    await store.put_state("telegram:1001", {"newer": True})
    states_file(path, {"1001": record(1), "2002": record(2)})
    assert await import_states_file(store, path) == 1
    assert await store.get_state("telegram:1001") == {"newer": True}


async def test_no_file_is_nothing_to_do(store, tmp_path):
    assert await import_states_file(store, tmp_path / "telegram_states.json") == 0
    assert os.listdir(tmp_path) in ([], ["data"])


def _truncated_in_utf8(path):
    whole = json.dumps({"v": 1, "users": {"1": record(1)}}, ensure_ascii=False).encode()
    cut = whole.index(PHONE.encode()) - 2  # inside a 3-byte character before the phone
    while whole[cut] & 0xC0 != 0x80:
        cut -= 1
    path.write_bytes(whole[:cut])


@pytest.mark.parametrize(
    "damage",
    [
        _truncated_in_utf8,
        lambda p: p.mkdir(),
        lambda p: p.write_text('{"v": 1, "users": {"1": {"state": ' + PHONE, "utf-8"),
        lambda p: p.write_text('["v", 1]', "utf-8"),
        lambda p: p.write_text('{"v": 7, "users": {}}', "utf-8"),
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(b"\x00\xff\xfe" * 100),
        lambda p: p.write_text("[" * 100000, "utf-8"),
    ],
    ids=["utf8-cut", "directory", "bad-json", "list", "version", "empty", "binary", "deep"],
)
async def test_unreadable_file_is_set_aside(store, tmp_path, damage, caplog):
    path = tmp_path / "telegram_states.json"
    damage(path)
    caplog.set_level(logging.DEBUG)
    assert await import_states_file(store, path) == 0
    assert not path.exists()
    assert (tmp_path / "telegram_states.json.damaged").exists()
    assert await store.count_states() == 0
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "telegram_states.json" in text
    assert PHONE not in text and str(tmp_path) not in text  # the file name only
    # The next start finds nothing to import and starts normally.
    assert await import_states_file(store, path) == 0


async def test_set_aside_does_not_overwrite_an_earlier_damaged_file(store, tmp_path):
    path = tmp_path / "telegram_states.json"
    (tmp_path / "telegram_states.json.damaged").write_text("first", "utf-8")
    path.write_text("{broken", "utf-8")
    assert await import_states_file(store, path) == 0
    assert (tmp_path / "telegram_states.json.damaged").read_text("utf-8") == "first"
    assert (tmp_path / "telegram_states.json.damaged.1").read_text("utf-8") == "{broken"


async def test_orphaned_temporary_copies_are_removed(store, tmp_path):
    path = tmp_path / "telegram_states.json"
    orphans = [tmp_path / ".telegram_states.json.abc123.tmp", tmp_path / ".telegram_states.json.x.tmp"]
    for o in orphans:
        o.write_text(json.dumps({"users": {"1": record(1)}}), "utf-8")
    keep = [tmp_path / "notes.tmp", tmp_path / ".other.json.a.tmp"]
    for k in keep:
        k.write_text("keep", "utf-8")
    assert await import_states_file(store, path) == 0  # no states file: still cleans up
    assert not any(o.exists() for o in orphans)
    assert all(k.exists() for k in keep)


async def test_imported_states_are_durable(tmp_path):
    path = tmp_path / "telegram_states.json"
    states_file(path, {str(i): record(i) for i in range(1200)})
    store = open_store(str(tmp_path / "data"))
    assert await import_states_file(store, path) == 1200
    await store.close()
    store = open_store(str(tmp_path / "data"))
    try:
        assert await store.count_states() == 1200
        assert await store.get_state("telegram:1199") == record(1199)
    finally:
        await store.close()
