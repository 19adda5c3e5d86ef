"""The operators' API over real HTTP: a real aiohttp server on a free port, a real client,
MemoryStore and the TinyDB store in a temporary directory."""

import csv
import hashlib
import io
import json
import logging
import zipfile
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot import api, ops
from bot.appkeys import CLOCK, SETTINGS, STORE
from bot.config import load_settings
from bot.store import open_store
from dialogs.lifecycle import load_lifecycle

NOW = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
ALICE = "alice-token-0123456789"
VIEWER = "viewer-token-0123456789"
OWNER = {"messenger": "telegram", "user_id": "777001"}
PHONE = "13812345678"
FILE_BYTES = b"\x89PNG fake screenshot bytes"


def ago(days):
    return (NOW - timedelta(days=days)).isoformat()


def case(id_, status, subtype, platform, province, created_days, **extra):
    doc = {"id": id_, "owner": OWNER, "status": status, "type": subtype.split(".")[0], "subtype": subtype,
           "platform": platform, "province": province, "created_at": ago(created_days),
           "updated_at": ago(created_days), "enterprise": f"企业{id_[-4:]}有限公司", "links": [],
           "description": "有人在网上造谣我们公司要破产", "reporter_role": "self"}
    doc.update(extra)
    return doc


def seed_cases():
    return [
        case("HQ-2609-AAAA", "draft", "rumor.fabricated_violation", "xiaohongshu", "shanghai", 40,
             links=[f"https://example.com/profile?tel={PHONE}"],
             attachments=[{"name": "截图1.png", "path": "HQ-2609-AAAA/1.png", "size": len(FILE_BYTES),
                           "mime": "image/png", "sha256": hashlib.sha256(FILE_BYTES).hexdigest(),
                           "received_at": ago(39), "link": "https://www.xiaohongshu.com/explore/abc"},
                          {"name": "../../etc/passwd", "path": "../../../etc/passwd", "size": 1}]),
        case("HQ-2610-BBBB", "submitted", "impersonation.account_identity", "douyin", "beijing", 20,
             history=[{"when": ago(19), "who": "user", "from": "ready", "to": "submitted", "channel": "platform",
                       "ref": "DY-1"}]),
        case("HQ-2610-CCCC", "closed", "rumor.product_quality", "weibo", "zhejiang", 30, closed_at=ago(2),
             satisfaction={"score": 4, "comment": "处理很快", "at": ago(1)},
             history=[{"when": ago(28), "who": "user", "from": "ready", "to": "submitted", "channel": "platform"},
                      {"when": ago(25), "who": "user", "from": "submitted", "to": "action_taken",
                       "outcome": "deleted", "channel": "platform"},
                      {"when": ago(2), "who": "user", "from": "action_taken", "to": "closed", "reason": "resolved"}]),
        case("HQ-2611-DDDD", "submitted", "insult.abuse", "xiaohongshu", "shanghai", 3,
             owner={"messenger": "terminal", "user_id": "local"},
             history=[{"when": ago(2), "who": "user", "from": "ready", "to": "submitted", "channel": "platform"}]),
    ]


def make_settings(tmp_path, tokens=True):
    env = {"HUQI_DATA_DIR": str(tmp_path / "data"), "HUQI_REMINDER_DAYS": "7"}
    if tokens:
        env["HUQI_API_TOKENS"] = f"alice:{ALICE},val:{VIEWER}:viewer"
    return load_settings(env)


async def start(tmp_path, backend="memory", tokens=True):
    settings = make_settings(tmp_path, tokens)
    files = settings.files_dir / "HQ-2609-AAAA"
    files.mkdir(parents=True)
    (files / "1.png").write_bytes(FILE_BYTES)
    if backend == "memory":
        store = open_store(None, backend="memory", clock=lambda: NOW)
    else:
        store = open_store(str(settings.data_dir), clock=lambda: NOW)
    for c in seed_cases():
        await store.create(c)
    app = web.Application()
    app[STORE], app[SETTINGS], app[CLOCK] = store, settings, lambda: NOW
    api.setup(app)
    client = TestClient(TestServer(app))  # binds a free port on 127.0.0.1
    await client.start_server()
    return SimpleNamespace(http=client, store=store, app=app, settings=settings)


@pytest.fixture(params=["memory", "tinydb"])
async def env(request, tmp_path):
    e = await start(tmp_path, request.param)
    yield e
    await e.http.close()
    await e.store.close()


def auth(token=ALICE):
    return {"Authorization": f"Bearer {token}"}


async def call(env, method, path, token=ALICE, **kw):
    headers = {**(auth(token) if token else {}), **kw.pop("headers", {})}
    resp = await env.http.request(method, path, headers=headers, **kw)
    body = await resp.read()
    return resp, body


async def call_json(env, method, path, token=ALICE, **kw):
    resp, body = await call(env, method, path, token, **kw)
    assert resp.content_type == "application/json", (resp.status, body[:200])
    return resp.status, json.loads(body)


def assert_error(status, body, want_status, code):
    assert status == want_status, body
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# -- the document and the routes cannot drift apart ---------------------------------------

SAMPLES = {"status": "submitted", "type": "rumor", "subtype": "rumor.fabricated_violation",
           "platform": "xiaohongshu", "province": "shanghai", "overdue": "true", "messenger": "telegram",
           "q": "HQ-2610", "older_than": "1", "newer_than": "100", "limit": "2", "cursor": None,
           "sort": "-due"}


async def test_openapi_lists_exactly_the_routes_and_every_route_answers(env):
    status, doc = await call_json(env, "GET", "/openapi.json", token=None)
    assert status == 200 and doc["openapi"].startswith("3.")
    served = {(r.method, r.resource.canonical) for r in env.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/") and r.method != "HEAD"}
    documented = {(m.upper(), p) for p, methods in doc["paths"].items() for m in methods}
    assert served == documented and len(documented) == 7
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            url = path.replace("{number}", "HQ-2610-BBBB")
            body = op["requestBody"]["content"]["application/json"]["schema"]["example"] \
                if "requestBody" in op else None
            resp, raw = await call(env, method.upper(), url, json=body)
            ok = [code for code in op["responses"] if code.startswith("2")]
            assert [str(resp.status)] == ok, (method, path, raw[:300])
            assert resp.content_type == next(iter(op["responses"][ok[0]]["content"])), path
            for code in op["responses"]:
                assert code.startswith("2") or "Error" in json.dumps(op["responses"][code])
            # every documented query parameter is accepted with a sensible value
            for p in op["parameters"]:
                if p["in"] != "query":
                    continue
                assert p["name"] in SAMPLES, f"add a sample for {p['name']}"
                if SAMPLES[p["name"]] is None or method != "get":
                    continue
                resp, raw = await call(env, "GET", url, params={p["name"]: SAMPLES[p["name"]]})
                assert resp.status == 200, (path, p["name"], raw[:300])


# -- authentication and roles ---------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                     {"Authorization": ALICE}, {"Authorization": f"Basic {ALICE}"},
                                     {"Authorization": "Bearer "}])
async def test_missing_or_wrong_token_is_401(env, headers):
    for method, path in (("GET", "/api/v1/cases"), ("GET", "/api/v1/stats"),
                         ("POST", "/api/v1/cases/HQ-2610-BBBB/transitions")):
        resp = await env.http.request(method, path, headers=headers, json={"to": "accepted"})
        assert_error(resp.status, await resp.json(), 401, "unauthorized")
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await env.store.get("HQ-2610-BBBB"))["status"] == "submitted"


async def test_a_viewer_reads_but_cannot_change(env):
    status, body = await call_json(env, "GET", "/api/v1/cases", token=VIEWER)
    assert status == 200 and body["total"] == 4
    for path, payload in (("transitions", {"to": "accepted"}), ("messages", {"text": "hi"})):
        status, body = await call_json(env, "POST", f"/api/v1/cases/HQ-2610-BBBB/{path}", token=VIEWER,
                                       json=payload)
        assert_error(status, body, 403, "forbidden")
    assert (await env.store.get("HQ-2610-BBBB"))["status"] == "submitted"
    assert await env.store.outbox_list() == []


async def test_the_api_is_off_without_tokens(tmp_path):
    e = await start(tmp_path, tokens=False)
    try:
        for path in ("/api/v1/cases", "/openapi.json", "/api/v1/stats"):
            resp = await e.http.get(path, headers=auth())
            assert_error(resp.status, await resp.json(), 404, "api_off")
    finally:
        await e.http.close()
        await e.store.close()


# -- errors are JSON, never HTML ---------------------------------------------------------------


async def test_unknown_routes_and_methods_answer_json(env):
    status, body = await call_json(env, "GET", "/api/v1/nothing-here")
    assert_error(status, body, 404, "not_found")
    status, body = await call_json(env, "DELETE", "/api/v1/cases")
    assert_error(status, body, 405, "method_not_allowed")
    status, body = await call_json(env, "GET", "/api/v1/cases/HQ-2611-ZZZZ")
    assert_error(status, body, 404, "not_found")
    status, body = await call_json(env, "GET", "/api/v1/cases/%00%ff")
    assert status == 404


@pytest.mark.parametrize("data,code,http", [
    (b"", "bad_json", 400),
    (b"{not json", "bad_json", 400),
    (b"[1, 2]", "bad_json", 400),
    (b"\xff\xfe\x00", "bad_json", 400),
    (b"[" * 60000, "bad_json", 400),
    (b'{"to": "accepted", "ref": "x"}', "unknown_field", 400),
    (b'{"to": 5}', "bad_request", 400),
    (b'{"note": "no target"}', "bad_request", 400),
    (json.dumps({"to": "accepted", "note": "x" * 70000}).encode(), "too_large", 413),
])
async def test_malformed_bodies_are_refused_and_change_nothing(env, data, code, http):
    before = await env.store.get("HQ-2610-BBBB")
    status, body = await call_json(env, "POST", "/api/v1/cases/HQ-2610-BBBB/transitions", data=data,
                                   headers={"Content-Type": "application/json"})
    assert_error(status, body, http, code)
    assert await env.store.get("HQ-2610-BBBB") == before
    assert await env.store.outbox_list() == []


async def test_an_unexpected_failure_is_a_json_500_without_case_data_in_the_log(env, monkeypatch, caplog):
    async def broken(*a, **kw):
        raise RuntimeError(f"secret {PHONE}")
    monkeypatch.setattr(ops, "stats", broken)
    with caplog.at_level(logging.DEBUG):
        status, body = await call_json(env, "GET", "/api/v1/stats")
    assert_error(status, body, 500, "internal")
    assert PHONE not in caplog.text and PHONE not in json.dumps(body)


# -- listing, filters, paging ------------------------------------------------------------------


async def ids(env, **params):
    status, body = await call_json(env, "GET", "/api/v1/cases", params=params)
    assert status == 200, body
    return [c["id"] for c in body["cases"]]


async def test_filters_take_what_staff_type(env):
    assert await ids(env, platform="小红书") == ["HQ-2609-AAAA", "HQ-2611-DDDD"]
    assert await ids(env, platform="xhs") == ["HQ-2609-AAAA", "HQ-2611-DDDD"]
    assert await ids(env, province="上海") == ["HQ-2609-AAAA", "HQ-2611-DDDD"]
    assert await ids(env, province="浙江省") == ["HQ-2610-CCCC"]
    assert await ids(env, status="已提交") == ["HQ-2610-BBBB", "HQ-2611-DDDD"]
    assert await ids(env, status="closed,draft") == ["HQ-2609-AAAA", "HQ-2610-CCCC"]
    assert await ids(env, type="谣言性信息") == ["HQ-2609-AAAA", "HQ-2610-CCCC"]
    assert await ids(env, messenger="terminal") == ["HQ-2611-DDDD"]
    assert await ids(env, q="2610 bbbb") == ["HQ-2610-BBBB"]
    assert await ids(env, q="企业CCCC") == ["HQ-2610-CCCC"]
    # submitted 19 days ago with a 7-day follow-up: overdue; the other was submitted 2 days ago
    assert await ids(env, overdue="true") == ["HQ-2610-BBBB"]
    assert await ids(env, overdue="否") == ["HQ-2609-AAAA", "HQ-2610-CCCC", "HQ-2611-DDDD"]
    assert await ids(env, platform="快手") == []  # a known platform with no case


@pytest.mark.parametrize("params,value", [
    ({"platform": "火星网"}, "火星网"), ({"province": "亚特兰蒂斯"}, "亚特兰蒂斯"), ({"status": "pending"}, "pending"),
    ({"type": "gossip"}, "gossip"), ({"overdue": "maybe"}, "maybe"), ({"messenger": "fax"}, "fax"),
    ({"older_than": "99999999"}, "99999999"), ({"older_than": "-1"}, "-1"), ({"limit": "0"}, "0"),
    ({"limit": "ten"}, "ten"),
])
async def test_unknown_filter_values_are_errors_not_empty_lists(env, params, value):
    status, body = await call_json(env, "GET", "/api/v1/cases", params=params)
    assert_error(status, body, 400, "bad_filter")
    assert value in body["error"]["message"]


async def test_an_unknown_parameter_is_an_error(env):
    status, body = await call_json(env, "GET", "/api/v1/cases", params={"platfrom": "小红书"})
    assert_error(status, body, 400, "unknown_parameter")
    assert "platfrom" in body["error"]["message"] and "platform" in body["error"]["message"]
    status, body = await call_json(env, "GET", "/api/v1/cases/HQ-2610-BBBB", params={"x": "1"})
    assert_error(status, body, 400, "unknown_parameter")


async def test_a_broken_store_is_503_json(env, monkeypatch):
    from bot.store import StoreError

    async def broken(*a, **kw):
        raise StoreError("disk gone")
    monkeypatch.setattr(env.store, "list", broken)
    status, body = await call_json(env, "GET", "/api/v1/cases")
    assert_error(status, body, 503, "store_unavailable")


async def test_cursor_paging_walks_every_case_once(env):
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
        status, body = await call_json(env, "GET", "/api/v1/cases", params=params)
        assert status == 200 and body["total"] == 4
        seen += [c["id"] for c in body["cases"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ["HQ-2609-AAAA", "HQ-2610-CCCC", "HQ-2610-BBBB", "HQ-2611-DDDD"]
    status, body = await call_json(env, "GET", "/api/v1/cases", params={"cursor": "garbage!"})
    assert_error(status, body, 400, "bad_cursor")


@pytest.mark.parametrize("sort,expected", [
    ("-created", ["HQ-2611-DDDD", "HQ-2610-BBBB", "HQ-2610-CCCC", "HQ-2609-AAAA"]),
    # due: BBBB (submitted 19 days ago) before DDDD (2 days ago); no follow-up date last
    ("due", ["HQ-2610-BBBB", "HQ-2611-DDDD", "HQ-2609-AAAA", "HQ-2610-CCCC"]),
    ("-due", ["HQ-2611-DDDD", "HQ-2610-BBBB", "HQ-2610-CCCC", "HQ-2609-AAAA"]),
])
async def test_sorted_pages_walk_every_case_once(env, sort, expected):
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": "1", "sort": sort} | ({"cursor": cursor} if cursor else {})
        status, body = await call_json(env, "GET", "/api/v1/cases", params=params)
        assert status == 200, body
        seen += [c["id"] for c in body["cases"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    assert await ids(env, sort=sort, limit="10") == expected
    # a cursor made for one order is refused for another
    first = (await call_json(env, "GET", "/api/v1/cases", params={"sort": sort, "limit": "1"}))[1]
    status, body = await call_json(env, "GET", "/api/v1/cases",
                                   params={"sort": "updated", "cursor": first["next_cursor"]})
    assert_error(status, body, 400, "bad_cursor")
    status, body = await call_json(env, "GET", "/api/v1/cases", params={"sort": "size"})
    assert_error(status, body, 400, "bad_filter")


# -- a case ---------------------------------------------------------------------------------------


async def test_case_detail_masks_personal_data(env):
    status, body = await call_json(env, "GET", "/api/v1/cases/hq-2609-aaaa")
    assert status == 200 and body["id"] == "HQ-2609-AAAA"
    raw = json.dumps(body, ensure_ascii=False)
    assert PHONE not in raw and "777001" not in raw and "1.png" not in raw.replace("截图1.png", "")
    assert body["links"] == ["https://example.com/profile?tel=138****5678"]
    assert [f["name"] for f in body["files"]][0] == "截图1.png"
    assert body["files"][0]["sha256"] == hashlib.sha256(FILE_BYTES).hexdigest()
    assert {a["to"] for a in body["allowed"]} == set(load_lifecycle().allowed("draft"))
    assert body["platform_label"] == "小红书" and body["province_label"] == "上海市"
    assert body["history"] == [] and body["outbox"] == []


# -- transitions -----------------------------------------------------------------------------------


async def test_a_transition_is_recorded_with_who_and_the_owner_is_notified_once(env):
    status, body = await call_json(env, "POST", "/api/v1/cases/HQ-2610-BBBB/transitions",
                                   json={"to": "已受理", "note": "内部:电话核实过", "reference": "DY-9"})
    assert status == 200, body
    assert body["case"]["status"] == "accepted" and body["event"]["who"] == "alice"
    c = await env.store.get("HQ-2610-BBBB")
    ev = c["history"][-1]
    assert (ev["who"], ev["from"], ev["to"], ev["ref"], ev["note"], ev["channel"]) == \
        ("alice", "submitted", "accepted", "DY-9", "内部:电话核实过", "platform")
    queued = await env.store.outbox_list(case_id="HQ-2610-BBBB")
    assert len(queued) == 1
    msg = queued[0]
    assert msg["owner"] == OWNER and msg["kind"] == "status" and msg["status"] == "pending"
    lc = load_lifecycle()
    assert "HQ-2610-BBBB" in msg["text"] and lc.label("accepted") in msg["text"] and "DY-9" in msg["text"]
    assert "电话核实过" not in msg["text"]  # the staff's note stays internal
    status, detail = await call_json(env, "GET", "/api/v1/cases/HQ-2610-BBBB")
    assert [m["id"] for m in detail["outbox"]] == [msg["id"]]
    assert detail["history"][-1]["who"] == "alice"


async def test_a_refused_transition_is_409_with_what_is_possible(env):
    before = await env.store.get("HQ-2609-AAAA")
    status, body = await call_json(env, "POST", "/api/v1/cases/HQ-2609-AAAA/transitions", json={"to": "accepted"})
    assert_error(status, body, 409, "transition_refused")
    assert [a["to"] for a in body["error"]["allowed"]] == load_lifecycle().allowed("draft")
    assert all(a["label"] for a in body["error"]["allowed"])
    assert await env.store.get("HQ-2609-AAAA") == before
    assert await env.store.outbox_list() == []
    status, body = await call_json(env, "POST", "/api/v1/cases/HQ-2610-CCCC/transitions", json={"to": "draft"})
    assert_error(status, body, 409, "transition_refused")
    assert body["error"]["allowed"] == []


async def test_transition_of_an_unknown_case_is_404(env):
    status, body = await call_json(env, "POST", "/api/v1/cases/HQ-2611-ZZZZ/transitions", json={"to": "accepted"})
    assert_error(status, body, 404, "not_found")


# -- messages ----------------------------------------------------------------------------------------


async def test_a_message_to_the_owner_is_queued_and_recorded(env):
    status, body = await call_json(env, "POST", "/api/v1/cases/HQ-2610-BBBB/messages",
                                   json={"text": "请补充营业执照照片"})
    assert status == 201, body
    queued = await env.store.outbox_list(case_id="HQ-2610-BBBB")
    assert len(queued) == 1 and queued[0]["kind"] == "message" and queued[0]["owner"] == OWNER
    assert "请补充营业执照照片" in queued[0]["text"] and "HQ-2610-BBBB" in queued[0]["text"]
    c = await env.store.get("HQ-2610-BBBB")
    ev = c["history"][-1]
    assert ev["who"] == "alice" and ev["message"] == "请补充营业执照照片" and "to" not in ev
    assert c["status"] == "submitted"
    for bad in ({"text": "   "}, {"text": 3}, {}):
        status, body = await call_json(env, "POST", "/api/v1/cases/HQ-2610-BBBB/messages", json=bad)
        assert status == 400, body
    assert len(await env.store.outbox_list(case_id="HQ-2610-BBBB")) == 1


# -- package, export, stats ---------------------------------------------------------------------------


async def test_the_evidence_package_holds_draft_files_and_manifest(env):
    resp, raw = await call(env, "GET", "/api/v1/cases/HQ-2609-AAAA/package")
    assert resp.status == 200 and resp.content_type == "application/zip"
    assert "HQ-2609-AAAA" in resp.headers["Content-Disposition"]
    z = zipfile.ZipFile(io.BytesIO(raw))
    names = z.namelist()
    files = [n for n in names if n.startswith("evidence/")]
    assert len(files) == 1 and z.read(files[0]) == FILE_BYTES and files[0].endswith("截图1.png")
    assert any(n.endswith(".txt") and "report" in n for n in names)
    cols = ops.texts()["package"]["manifest_columns"]
    rows = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode("utf-8-sig"))))
    rows = [{k: r[label] for k, label in cols.items()} for r in rows]
    assert rows[0]["sha256"] == hashlib.sha256(FILE_BYTES).hexdigest() and rows[0]["size"] == str(len(FILE_BYTES))
    assert rows[0]["link"] == "https://www.xiaohongshu.com/explore/abc" and rows[0]["file"] == files[0]
    assert rows[0]["received_at"] == ops.local_time(ago(39))
    # a path leading outside the files directory is listed as missing, never read
    assert rows[1]["file"] == "" and rows[1]["note"]
    assert not any("passwd" in n for n in names if n.startswith("evidence/"))


async def test_export_csv_has_bom_chinese_labels_and_beijing_time(env):
    resp, raw = await call(env, "GET", "/api/v1/export.csv", params={"platform": "小红书"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert raw.startswith(b"\xef\xbb\xbf")
    cols = ops.texts()["export_columns"]
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0]) == list(cols.values())
    a = {k: rows[0][label] for k, label in cols.items()}
    assert a["id"] == "HQ-2609-AAAA" and a["platform"] == "小红书" and a["province"] == "上海市"
    assert a["created_at"] == "2026-09-26 16:00"
    assert PHONE not in raw.decode("utf-8-sig") and "138****5678" in a["links"]
    assert len(rows) == 2


async def test_stats(env):
    status, s = await call_json(env, "GET", "/api/v1/stats")
    assert status == 200
    assert s["total"] == 4 and s["overdue"] == 1
    by = {k: {r["key"]: r["count"] for r in s[k]} for k in s if k.startswith("by_")}
    assert by["by_type"] == {"rumor": 2, "impersonation": 1, "insult": 1}
    assert by["by_platform"] == {"xiaohongshu": 2, "douyin": 1, "weibo": 1}
    assert by["by_province"]["shanghai"] == 2
    assert by["by_status"] == {"draft": 1, "submitted": 2, "closed": 1}
    assert sum(by["by_month"].values()) == 4 and by["by_subtype"]["insult.abuse"] == 1
    assert s["median_days_to_action"] == 3.0 and s["actions_measured"] == 1
    assert s["satisfaction"]["count"] == 1 and s["satisfaction"]["average"] == 4 and \
        s["satisfaction"]["scores"]["4"] == 1
    labels = {r["key"]: r["label"] for r in s["by_platform"]}
    assert labels["xiaohongshu"] == "小红书"
    status, s = await call_json(env, "GET", "/api/v1/stats", params={"province": "上海"})
    assert s["total"] == 2
