"""``huqi cases ...``: the operator tools, run through bot.cli.main on a real store."""

import asyncio
import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from bot import cases_cli
from bot.cases_cli import redact
from bot.ops import texts
from bot.cli import main
from bot.store import open_store

NOW = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
OWNER = {"messenger": "telegram", "user_id": "555001"}
PHONE = "13812345678"
ID_NUMBER = "330102199001011234"
PLAN = [
    {"id": "platform", "channel": "platform", "order": 1, "kind": "do", "if": None},
    {"id": "platform_dispute", "channel": "platform", "order": 1, "kind": "expect", "if": None},
    {"id": "province", "channel": "province", "order": 2, "kind": "do", "if": "no_response"},
]


def ago(days):
    return (NOW - timedelta(days=days)).isoformat()


def case(id_, status, type_, platform, province, created_days, **extra):
    doc = {"id": id_, "owner": OWNER, "status": status, "type": type_, "subtype": f"{type_}.x",
           "platform": platform, "province": province, "created_at": ago(created_days),
           "updated_at": ago(created_days), "flags": [], "links": [f"https://example.com/{id_}"],
           "enterprise": f"企业{id_[-4:]}有限公司", "reporter_role": "self", "plan": PLAN,
           "evidence": [{"id": "licence", "title": "营业执照", "group": "identity", "required": True,
                         "provided": False}],
           "attachments": []}
    doc.update(extra)
    return doc


SEED = [
    case("HQ-2609-AAAA", "draft", "rumor", "微博", "浙江", 40,
         enterprise="杭州甲科技有限公司",
         description=f"有人造谣我们要破产。联系电话 {PHONE},身份证 {ID_NUMBER}",
         flags=["extortion"],
         evidence=[{"id": "licence", "title": "营业执照", "required": True, "provided": True},
                   {"id": "shots", "title": "侵权内容截图", "required": True, "provided": False,
                    "content": "SECRET-EVIDENCE-TEXT"}],
         attachments=[{"name": "截图1.png", "size": 100, "ref": "file-ref-secret"}]),
    case("HQ-2610-BBBB", "submitted", "impersonation", "抖音", "北京", 10,
         history=[{"when": ago(9), "who": "user", "from": "ready", "to": "submitted",
                   "channel": "platform", "ref": "DY-1"}]),
    case("HQ-2601-CCCC", "closed", "rumor", "抖音", "浙江", 300, closed_at=ago(200),
         history=[{"when": ago(200), "who": "user", "from": "draft", "to": "closed", "reason": "withdrawn"}]),
    case("HQ-2610-DDDD", "closed", "insult", "知乎", "广东", 20, closed_at=ago(10)),
    case("HQ-2611-EEEE", "new", "rumor", "微博", "浙江", 1,
         enterprise={"name": "宁波乙贸易有限公司", "phone": PHONE, "contact": "王先生"}),
]
IDS = [c["id"] for c in SEED]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("HUQI_DATA_DIR", str(d))
    monkeypatch.setattr(cases_cli, "utcnow", lambda: NOW)

    async def seed():
        store = open_store(str(d), clock=lambda: NOW)
        for c in SEED:
            await store.create(c)
        await store.close()  # the CLI needs the lock

    asyncio.run(seed())
    return d


def load(d, case_id=None):
    async def get():
        store = open_store(str(d), clock=lambda: NOW)
        try:
            return await store.get(case_id) if case_id else await store.list()
        finally:
            await store.close()

    return asyncio.run(get())


def run(capsys, *argv):
    try:
        code = main(["cases", *argv])
    except SystemExit as e:  # argparse usage errors
        code = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def listed(out):
    return sorted((i for i in IDS if i in out), key=out.index)


# -- list ------------------------------------------------------------------------


def test_list_everything(data_dir, capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert listed(out) == ["HQ-2601-CCCC", "HQ-2609-AAAA", "HQ-2610-DDDD", "HQ-2610-BBBB", "HQ-2611-EEEE"]
    row = next(ln for ln in out.splitlines() if "HQ-2609-AAAA" in ln)
    assert "草稿" in row and "rumor" in row and "微博" in row and "浙江" in row and " 40 " in row
    assert "杭州甲科技有限公司" in row
    assert "宁波乙贸易有限公司" in out and PHONE not in out


@pytest.mark.parametrize("args,expected", [
    (["--status", "submitted"], ["HQ-2610-BBBB"]),
    (["--status", "closed,draft"], ["HQ-2609-AAAA", "HQ-2601-CCCC", "HQ-2610-DDDD", "HQ-2611-EEEE"]),
    (["--status", "closed", "--status", "已提交"], ["HQ-2610-BBBB", "HQ-2601-CCCC", "HQ-2610-DDDD"]),
    (["--status", "草稿"], ["HQ-2609-AAAA", "HQ-2611-EEEE"]),  # "new" is a draft
    (["--type", "rumor"], ["HQ-2609-AAAA", "HQ-2601-CCCC", "HQ-2611-EEEE"]),
    (["--platform", "抖音"], ["HQ-2610-BBBB", "HQ-2601-CCCC"]),
    (["--province", "浙江"], ["HQ-2609-AAAA", "HQ-2601-CCCC", "HQ-2611-EEEE"]),
    (["--older-than", "30"], ["HQ-2609-AAAA", "HQ-2601-CCCC"]),
    (["--newer-than", "15"], ["HQ-2610-BBBB", "HQ-2611-EEEE"]),
    (["--type", "rumor", "--newer-than", "5"], ["HQ-2611-EEEE"]),
    (["--type", "rumor", "--province", "浙江", "--older-than", "100"], ["HQ-2601-CCCC"]),
])
def test_list_filters(data_dir, capsys, args, expected):
    code, out, _ = run(capsys, "list", *args)
    assert code == 0
    assert sorted(listed(out)) == sorted(expected)
    assert f"{len(expected)} case(s)" in out


def test_list_with_no_match(data_dir, capsys):
    code, out, _ = run(capsys, "list", "--platform", "快手")
    assert code == 0 and "no cases match" in out


def test_list_unknown_status_is_refused(data_dir, capsys):
    code, out, err = run(capsys, "list", "--status", "pending")
    assert code == 2 and "pending" in err and "submitted" in err and out == ""


def test_a_missing_data_dir_is_an_error_and_creates_nothing(tmp_path, monkeypatch, capsys):
    d = tmp_path / "nothing"
    monkeypatch.setenv("HUQI_DATA_DIR", str(d))
    code, out, err = run(capsys, "list")
    assert code == 3 and str(d) in err and "HUQI_DATA_DIR" in err and out == ""
    assert not d.exists()
    assert run(capsys, "show", "HQ-2611-7K3Q")[0] == 3
    assert not d.exists()


# -- show ------------------------------------------------------------------------


def test_show(data_dir, capsys):
    code, out, _ = run(capsys, "show", "HQ-2609-AAAA")
    assert code == 0
    for text in ("HQ-2609-AAAA", "草稿", "杭州甲科技有限公司", "rumor", "微博", "浙江", "extortion",
                 "https://example.com/HQ-2609-AAAA", "营业执照", "侵权内容截图", "截图1.png", "有人造谣",
                 "属地网信办", "还缺 1 项", "History (0)"):
        assert text in out, text
    # No contact details, no evidence content, no account id, no file references.
    for secret in (PHONE, ID_NUMBER, "SECRET-EVIDENCE-TEXT", "555001", "file-ref-secret"):
        assert secret not in out, secret


def test_show_history_and_typed_id(data_dir, capsys):
    code, out, _ = run(capsys, "show", "hq 2610 bbbb")
    assert code == 0
    assert "HQ-2610-BBBB" in out and "已提交" in out and "DY-1" in out and "History (1)" in out
    assert "材料齐全 → 已提交" in out


def test_show_hides_enterprise_contact_fields(data_dir, capsys):
    code, out, _ = run(capsys, "show", "HQ-2611-EEEE")
    assert code == 0 and "宁波乙贸易有限公司" in out
    assert PHONE not in out and "王先生" not in out


def test_show_unknown_case(data_dir, capsys):
    code, out, err = run(capsys, "show", "HQ-2611-2222")
    assert code == 2 and "no such case" in err and out == ""
    assert run(capsys, "show", "not a case id")[0] == 2


# -- set-status -------------------------------------------------------------------


def test_set_status_allowed(data_dir, capsys):
    code, out, _ = run(capsys, "set-status", "HQ-2610-BBBB", "accepted", "--note", "平台已受理")
    assert code == 0 and "已提交 → 已受理" in out
    code, out, _ = run(capsys, "set-status", "HQ-2610-BBBB", "已处理", "--outcome", "deleted")
    assert code == 0
    c = load(data_dir, "HQ-2610-BBBB")
    assert c["status"] == "action_taken"
    ev1, ev2 = c["history"][-2:]
    assert (ev1["who"], ev1["from"], ev1["to"], ev1["note"], ev1["channel"]) == \
        ("operator", "submitted", "accepted", "平台已受理", "platform")
    assert (ev2["from"], ev2["to"], ev2["outcome"]) == ("accepted", "action_taken", "deleted")
    assert ev2["when"] == NOW.isoformat()
    code, out, _ = run(capsys, "set-status", "HQ-2610-BBBB", "closed", "--reason", "resolved")
    assert code == 0
    c = load(data_dir, "HQ-2610-BBBB")
    assert c["status"] == "closed" and c["closed_at"] == NOW.isoformat()


def test_set_status_submitted_schedules_a_reminder(data_dir, capsys, monkeypatch):
    monkeypatch.setenv("HUQI_REMINDER_DAYS", "5")
    code, out, _ = run(capsys, "set-status", "HQ-2609-AAAA", "submitted", "--channel", "platform",
                       "--ref", "WB-77")
    assert code == 0 and "reminder" in out
    c = load(data_dir, "HQ-2609-AAAA")
    assert c["history"][-1]["ref"] == "WB-77"
    assert [(r["kind"], r["due"]) for r in c["reminders"]] == [("no_news", (NOW + timedelta(days=5)).isoformat())]
    # An answer clears it.
    assert run(capsys, "set-status", "HQ-2609-AAAA", "rejected", "--reason", "不构成侵权")[0] == 0
    assert "reminders" not in load(data_dir, "HQ-2609-AAAA")
    # Escalation goes to the plan's next channel and reschedules.
    code, out, _ = run(capsys, "set-status", "HQ-2609-AAAA", "escalated")
    assert code == 0 and "属地网信办" in out
    c = load(data_dir, "HQ-2609-AAAA")
    assert c["history"][-1]["channel"] == "province" and len(c["reminders"]) == 1


def test_set_status_refused(data_dir, capsys):
    before = load(data_dir, "HQ-2609-AAAA")
    code, out, err = run(capsys, "set-status", "HQ-2609-AAAA", "accepted")
    assert code == 2 and out == ""
    assert '不能直接改为"已受理"' in err and "可以改为:材料齐全、已提交、已结案(撤回)" in err
    assert load(data_dir, "HQ-2609-AAAA") == before


@pytest.mark.parametrize("args,complaint", [
    (["HQ-2610-BBBB", "action_taken"], "处置结果"),
    (["HQ-2610-BBBB", "action_taken", "--outcome", "fined"], "fined"),
    (["HQ-2610-BBBB", "rejected"], "驳回的理由"),
    (["HQ-2610-BBBB", "closed"], "结案需要说明原因"),
    (["HQ-2610-BBBB", "closed", "--reason", "resolved"], "只能以"),
    (["HQ-2609-AAAA", "submitted"], "向哪个渠道提交"),
    (["HQ-2609-AAAA", "submitted", "--channel", "weixin"], "weixin"),
    (["HQ-2601-CCCC", "draft"], "终态"),
    (["HQ-2609-AAAA", "pending"], "没有\"pending\"这个状态"),
    (["HQ-2611-2222", "ready"], "no such case"),
])
def test_set_status_errors_exit_2(data_dir, capsys, args, complaint):
    before = load(data_dir)
    code, out, err = run(capsys, "set-status", *args)
    assert code == 2 and complaint in err
    assert load(data_dir) == before


# -- export ------------------------------------------------------------------------


def test_export_to_file(data_dir, capsys, tmp_path):
    path = tmp_path / "cases.csv"
    code, out, err = run(capsys, "export", "--out", str(path))
    assert code == 0 and "5" in err
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    text = raw.decode("utf-8-sig")
    cols = texts()["export_columns"]
    rows = [{k: r[label] for k, label in cols.items()} for r in csv.DictReader(io.StringIO(text))]
    assert sorted(r["id"] for r in rows) == sorted(IDS)
    a = next(r for r in rows if r["id"] == "HQ-2609-AAAA")
    assert a["enterprise"] == "杭州甲科技有限公司" and a["platform"] == "微博" and a["province"] == "浙江省"
    assert a["flags"] == "extortion" and a["status"] == "草稿" and a["type"] == "谣言性信息"
    assert a["created_at"] == "2026-09-26 16:00"  # Beijing time (08:00 UTC, 40 days before NOW)
    b = next(r for r in rows if r["id"] == "HQ-2610-BBBB")
    assert b["channel"] == "平台" and "已提交" in b["last_event"] and "DY-1" in b["last_event"]
    assert next(r for r in rows if r["id"] == "HQ-2611-EEEE")["enterprise"] == "宁波乙贸易有限公司"
    for secret in (PHONE, ID_NUMBER, "SECRET-EVIDENCE-TEXT", "555001"):
        assert secret not in text


def test_export_to_stdout_with_filters(data_dir, capsys):
    code, out, _ = run(capsys, "export", "--status", "closed")
    assert code == 0 and out.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(out[1:])))
    assert sorted(r[texts()["export_columns"]["id"]] for r in rows) == ["HQ-2601-CCCC", "HQ-2610-DDDD"]


def test_export_to_an_unwritable_place(data_dir, capsys, tmp_path):
    code, _, err = run(capsys, "export", "--out", str(tmp_path / "no" / "such" / "dir.csv"))
    assert code == 2 and "cannot write" in err


# -- purge -------------------------------------------------------------------------


def test_purge_removes_old_closed_cases_only(data_dir, capsys):
    code, out, _ = run(capsys, "purge", "--dry-run")
    assert code == 0 and "HQ-2601-CCCC" in out and "HQ-2610-DDDD" not in out
    assert len(load(data_dir)) == 5
    code, out, _ = run(capsys, "purge", "--yes")
    assert code == 0 and "HQ-2601-CCCC" in out and "purged 1 case" in out
    assert sorted(c["id"] for c in load(data_dir)) == sorted(set(IDS) - {"HQ-2601-CCCC"})
    code, out, _ = run(capsys, "purge", "--days", "5", "--yes")
    assert code == 0 and "HQ-2610-DDDD" in out
    # Open cases are never purged, however old.
    assert sorted(c["id"] for c in load(data_dir)) == ["HQ-2609-AAAA", "HQ-2610-BBBB", "HQ-2611-EEEE"]
    code, out, _ = run(capsys, "purge", "--days", "0")
    assert code == 0 and "purged 0 case" in out


# -- bad arguments and a busy store ---------------------------------------------------------


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["show"],
    ["set-status", "HQ-2610-BBBB"],
    ["purge", "--days", "abc"],
    ["purge", "--days", "-3"],
    ["list", "--older-than", "soon"],
    ["list", "--colour", "red"],
])
def test_bad_arguments_exit_2(data_dir, capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "usage" in err


def test_a_locked_store_is_reported(data_dir, capsys):
    holder = open_store(str(data_dir))
    try:
        code, out, err = run(capsys, "list")
        assert code == 3
        assert "另一个 huqi 进程" in err and "in use" in err
    finally:
        asyncio.run(holder.close())


def test_redact():
    assert redact(f"电话{PHONE}") == "电话138****5678"
    assert redact("+86 138 1234 5678") == "138****5678"
    assert redact("座机 0571-88123456") == "座机 0571-****3456"
    assert PHONE not in redact(f"id {ID_NUMBER} tel {PHONE}") and ID_NUMBER not in redact(ID_NUMBER)
    assert redact("wang.xiao@example.com") == "w***@example.com"
    # Long digit runs (post ids in links) are left alone.
    assert redact("https://m.weibo.cn/status/5012345678901") == "https://m.weibo.cn/status/5012345678901"


# -- what staff type, limits, privacy ---------------------------------------------------------


@pytest.mark.parametrize("args,expected", [
    (["--platform", "weibo"], ["HQ-2609-AAAA", "HQ-2611-EEEE"]),          # an id matches the stored name
    (["--platform", "抖音,知乎"], ["HQ-2610-BBBB", "HQ-2601-CCCC", "HQ-2610-DDDD"]),
    (["--province", "zhejiang"], ["HQ-2609-AAAA", "HQ-2601-CCCC", "HQ-2611-EEEE"]),
    (["--province", "浙江省"], ["HQ-2609-AAAA", "HQ-2601-CCCC", "HQ-2611-EEEE"]),
    (["--type", "谣言性信息"], ["HQ-2609-AAAA", "HQ-2601-CCCC", "HQ-2611-EEEE"]),
    (["--search", "宁波乙"], ["HQ-2611-EEEE"]),
    (["--search", "2610bbbb"], ["HQ-2610-BBBB"]),
    (["--messenger", "telegram", "--status", "closed"], ["HQ-2601-CCCC", "HQ-2610-DDDD"]),
])
def test_list_filters_take_what_staff_type(data_dir, capsys, args, expected):
    code, out, _ = run(capsys, "list", *args)
    assert code == 0
    assert sorted(listed(out)) == sorted(expected)


def test_list_sorted_newest_first(data_dir, capsys):
    code, out, _ = run(capsys, "list", "--sort=-created")
    assert code == 0 and listed(out) == ["HQ-2611-EEEE", "HQ-2610-BBBB", "HQ-2610-DDDD", "HQ-2609-AAAA",
                                         "HQ-2601-CCCC"]
    code, out, err = run(capsys, "list", "--sort", "size")
    assert code == 2 and "size" in err


@pytest.mark.parametrize("args,value", [
    (["--platform", "火星网"], "火星网"), (["--province", "亚特兰蒂斯"], "亚特兰蒂斯"),
    (["--type", "gossip"], "gossip"), (["--messenger", "fax"], "fax"),
])
def test_an_unknown_filter_value_is_an_error(data_dir, capsys, args, value):
    code, out, err = run(capsys, "list", *args)
    assert code == 2 and value in err and out == ""
    code, out, err = run(capsys, "export", *args)
    assert code == 2 and value in err and out == ""


@pytest.mark.parametrize("argv", [
    ["list", "--older-than", "99999999"],
    ["list", "--newer-than", "99999999999999999999"],
    ["purge", "--days", "99999999999"],
])
def test_huge_day_counts_are_refused_clearly(data_dir, capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and "100000" in err and "Overflow" not in err
    assert len(load(data_dir)) == 5


def test_the_oldest_possible_cutoff_still_works(data_dir, capsys):
    code, out, _ = run(capsys, "list", "--older-than", "100000")
    assert code == 0 and "no cases match" in out
    code, out, _ = run(capsys, "purge", "--days", "100000", "--yes")
    assert code == 0 and "purged 0 case" in out


def test_a_phone_number_inside_a_link_is_masked(data_dir, capsys, tmp_path):
    async def add():
        store = open_store(str(data_dir), clock=lambda: NOW)
        await store.create(case("HQ-2611-FFFF", "draft", "rumor", "微博", "浙江", 1,
                                links=[f"https://example.com/u?tel={PHONE}", f"https://example.com/{PHONE}/x"]))
        await store.close()

    asyncio.run(add())
    code, out, _ = run(capsys, "show", "HQ-2611-FFFF")
    assert code == 0 and PHONE not in out and "https://example.com/u?tel=138****5678" in out
    path = tmp_path / "x.csv"
    assert run(capsys, "export", "--out", str(path))[0] == 0
    assert PHONE not in path.read_text(encoding="utf-8-sig") and "138****5678" in path.read_text(encoding="utf-8-sig")


def test_purge_asks_before_deleting(data_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("no\n"))
    code, out, _ = run(capsys, "purge")
    assert code == 1 and "HQ-2601-CCCC" in out and "nothing removed" in out
    assert len(load(data_dir)) == 5
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no answer at all (not a terminal)
    assert run(capsys, "purge")[0] == 1 and len(load(data_dir)) == 5
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    code, out, _ = run(capsys, "purge")
    assert code == 0 and "purged 1 case" in out
    assert "HQ-2601-CCCC" not in [c["id"] for c in load(data_dir)]


def test_set_status_queues_a_notification_for_the_owner(data_dir, capsys):
    assert run(capsys, "set-status", "HQ-2610-BBBB", "accepted")[0] == 0

    async def queued():
        store = open_store(str(data_dir), clock=lambda: NOW)
        try:
            return await store.outbox_list(case_id="HQ-2610-BBBB")
        finally:
            await store.close()

    msgs = asyncio.run(queued())
    assert len(msgs) == 1 and msgs[0]["owner"] == OWNER and "HQ-2610-BBBB" in msgs[0]["text"]
    code, out, _ = run(capsys, "show", "HQ-2610-BBBB")
    assert "Notifications (1)" in out and "pending" in out


def test_package_writes_the_zip(data_dir, capsys, tmp_path):
    import hashlib
    import zipfile

    files = data_dir / "files" / "HQ-2609-AAAA"
    files.mkdir(parents=True)
    (files / "a.png").write_bytes(b"png-bytes")

    async def attach():
        store = open_store(str(data_dir), clock=lambda: NOW)
        await store.update("HQ-2609-AAAA", {"attachments": [
            {"name": "截图1.png", "path": "HQ-2609-AAAA/a.png", "size": 9,
             "sha256": hashlib.sha256(b"png-bytes").hexdigest(), "received_at": ago(2)}]})
        await store.close()

    asyncio.run(attach())
    out_path = tmp_path / "p.zip"
    code, out, _ = run(capsys, "package", "hq 2609 aaaa", "--out", str(out_path))
    assert code == 0 and str(out_path) in out
    z = zipfile.ZipFile(out_path)
    assert [n for n in z.namelist() if n.startswith("evidence/")] == ["evidence/01_截图1.png"]
    assert hashlib.sha256(b"png-bytes").hexdigest() in z.read("manifest.csv").decode("utf-8-sig")
    assert out_path.stat().st_mode & 0o077 == 0
    assert run(capsys, "package", "HQ-2611-2222", "--out", str(tmp_path / "q.zip"))[0] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".zip", ".tmp")) == ["p.zip"]


# -- while huqi serve holds the store: through its API ----------------------------------------------

TOKEN = "cli-operator-token-0123456789"


@pytest.fixture
def service(data_dir, monkeypatch):
    """The API served from another thread on a free port, holding the TinyDB store."""
    import threading

    from aiohttp import web

    from bot import api
    from bot.appkeys import CLOCK, SETTINGS, STORE
    from bot.config import load_settings

    env = {"HUQI_DATA_DIR": str(data_dir), "HUQI_API_TOKENS": f"desk:{TOKEN}", "HUQI_REMINDER_DAYS": "7"}
    loop = asyncio.new_event_loop()
    state = {}

    async def up():
        settings = load_settings(env)
        store = open_store(str(data_dir), clock=lambda: NOW)
        app = web.Application()
        app[STORE], app[SETTINGS], app[CLOCK] = store, settings, lambda: NOW
        api.setup(app)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state.update(store=store, runner=runner, port=site._server.sockets[0].getsockname()[1])

    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(up())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(20)
    monkeypatch.setenv("HUQI_HTTP_PORT", str(state["port"]))
    monkeypatch.setenv("HUQI_API_TOKENS", f"desk:{TOKEN}")
    yield state

    async def down():
        await state["runner"].cleanup()
        await state["store"].close()

    asyncio.run_coroutine_threadsafe(down(), loop).result(20)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(20)


def test_set_status_while_the_service_runs_goes_through_its_api(data_dir, capsys, service):
    code, out, err = run(capsys, "set-status", "HQ-2610-BBBB", "accepted", "--note", "平台已受理", "--ref", "DY-2")
    assert code == 0, err
    assert "已提交 → 已受理" in out and "owner is notified" in out
    # the change is in the service's store, recorded with the token's name
    code, out, err = run(capsys, "show", "HQ-2610-BBBB")
    assert code == 0 and "已受理" in out and "[desk]" in out and "DY-2" in out and "Notifications (1)" in out
    code, out, err = run(capsys, "set-status", "HQ-2609-AAAA", "accepted")
    assert code == 2 and "可以改为" in err
    code, out, err = run(capsys, "show", "HQ-2611-2222")
    assert code == 2 and "no such case" in err


def test_list_export_and_package_while_the_service_runs(data_dir, capsys, service, tmp_path):
    code, out, _ = run(capsys, "list", "--platform", "抖音")
    assert code == 0 and sorted(listed(out)) == ["HQ-2601-CCCC", "HQ-2610-BBBB"]
    code, out, err = run(capsys, "list", "--platform", "火星网")
    assert code == 2 and "火星网" in err
    path = tmp_path / "all.csv"
    code, _, err = run(capsys, "export", "--out", str(path))
    assert code == 0 and "exported 5 case" in err
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    code, out, _ = run(capsys, "package", "HQ-2609-AAAA", "--out", str(tmp_path / "p.zip"))
    assert code == 0 and (tmp_path / "p.zip").stat().st_size > 0


def test_a_viewer_token_reads_but_cannot_change(data_dir, capsys, service, monkeypatch):
    monkeypatch.setenv("HUQI_API_TOKENS", f"desk:{TOKEN}:viewer")
    code, out, _ = run(capsys, "show", "HQ-2610-BBBB")
    assert code == 0 and "HQ-2610-BBBB" in out
    code, out, err = run(capsys, "set-status", "HQ-2610-BBBB", "accepted")
    assert code == 3 and "HUQI_API_TOKEN" in err


def test_purge_while_the_service_runs_says_what_to_do(data_dir, capsys, service):
    code, out, err = run(capsys, "purge", "--yes")
    assert code == 3 and "huqi serve" in err


def test_without_a_token_the_cli_names_the_variable(data_dir, capsys, service, monkeypatch):
    monkeypatch.delenv("HUQI_API_TOKENS")
    code, out, err = run(capsys, "list")
    assert code == 3 and "HUQI_API_TOKEN" in err
    monkeypatch.setenv("HUQI_API_TOKEN", "not-the-right-token-000")
    code, out, err = run(capsys, "list")
    assert code == 3 and "HUQI_API_TOKEN" in err


def test_a_service_that_does_not_answer_is_reported(data_dir, capsys, monkeypatch):
    import socket

    holder = open_store(str(data_dir))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    monkeypatch.setenv("HUQI_HTTP_PORT", str(port))
    monkeypatch.setenv("HUQI_API_TOKEN", TOKEN)
    try:
        code, out, err = run(capsys, "set-status", "HQ-2610-BBBB", "accepted")
        assert code == 3 and "HUQI_HTTP_PORT" in err and str(port) in err
    finally:
        asyncio.run(holder.close())
