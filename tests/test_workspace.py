"""The staff's web workspace (/ops/) over real HTTP through huqi serve's application: sign-in and
sessions, CSRF, roles, the queue, a case and its forms, statistics and downloads."""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import socket
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from html import unescape
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web

from bot import ops
from bot.config import load_settings
from bot.server import build_app
from bot.store import open_store
from bot.workspace.auth import COOKIE, SESSIONS

NOW = datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
ALICE = "alice-token-0123456789"
VIEWER = "viewer-token-0123456789"
OWNER = {"messenger": "telegram", "user_id": "777001"}
PHONE = "13812345678"
FILE_BYTES = b"\x89PNG fake screenshot bytes"
SCRIPT = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


def ago(days):
    return (NOW - timedelta(days=days)).isoformat()


def case(id_, status, subtype, platform, province, created_days, **extra):
    doc = {"id": id_, "owner": OWNER, "status": status, "type": subtype.split(".")[0], "subtype": subtype,
           "platform": platform, "province": province, "created_at": ago(created_days),
           "updated_at": ago(created_days), "enterprise": f"企业{id_[-4:]}有限公司", "links": [],
           "description": "有人在网上造谣我们公司要破产", "reporter_role": "self",
           "plan": [{"id": "p1", "channel": "platform", "kind": "do"},
                    {"id": "p2", "channel": "province", "kind": "do"}]}
    doc.update(extra)
    return doc


def seed_cases():
    return [
        case("HQ-2609-AAAA", "draft", "rumor.fabricated_violation", "xiaohongshu", "shanghai", 40,
             description=f"联系电话 {PHONE} " + SCRIPT,
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def service(tmp_path, backend="memory", tokens=True, cases=None):
    """huqi serve's application (no bot) on a free port with the seeded cases; yields its parts."""
    port = free_port()
    env = {"HUQI_DATA_DIR": str(tmp_path / "data"), "HUQI_REMINDER_DAYS": "7", "HUQI_HTTP_PORT": str(port)}
    if tokens:
        env["HUQI_API_TOKENS"] = f"alice:{ALICE},val:{VIEWER}:viewer"
    settings = load_settings(env)
    files = settings.files_dir / "HQ-2609-AAAA"
    files.mkdir(parents=True)
    (files / "1.png").write_bytes(FILE_BYTES)
    if backend == "memory":
        store = open_store(None, backend="memory", clock=lambda: NOW)
    else:
        store = open_store(str(settings.data_dir), clock=lambda: NOW)
    for c in seed_cases() if cases is None else cases:
        await store.create(c)
    app = build_app(settings, store, clock=lambda: NOW)
    delays: list = []

    async def no_wait(seconds):
        delays.append(seconds)
    app[SESSIONS].sleep = no_wait
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", store=store, app=app, settings=settings,
                              delays=delays)
    finally:
        await runner.cleanup()
        await store.close()


@pytest.fixture(params=["memory", "tinydb"])
async def svc(request, tmp_path):
    async with service(tmp_path, request.param) as s:
        yield s


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(http, svc, token=ALICE) -> aiohttp.ClientResponse:
    resp = await http.post(svc.url + "/ops/login", data={"token": token, "next": "/ops/cases"},
                           allow_redirects=False)
    return resp


async def page(http, svc, path) -> tuple[int, str]:
    async with http.get(svc.url + path) as resp:
        return resp.status, await resp.text()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def queue_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="[^"]*" data-case="([^"]+)"', html)


# -- sign-in, sessions ---------------------------------------------------------------------------


async def test_pages_need_a_session_and_sign_in_sets_a_strict_httponly_cookie(svc):
    async with client() as http:
        async with http.get(svc.url + "/ops/cases/HQ-2610-BBBB", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/ops/login?next=")
        status, html = await page(http, svc, "/ops/cases/HQ-2610-BBBB")
        assert status == 200 and 'name="token"' in html and "HQ-2610-BBBB" not in html.split("<main>")[1] \
            .replace('value="/ops/cases/HQ-2610-BBBB"', "")
        resp = await sign_in(http, svc)
        assert resp.status == 303 and resp.headers["Location"] == "/ops/cases"
        cookie = resp.headers["Set-Cookie"]
        assert cookie.startswith(COOKIE + "=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Path=/ops" in cookie and "Secure" not in cookie          # plain HTTP here
        status, html = await page(http, svc, "/ops/cases")
        assert status == 200 and "alice" in html and len(queue_ids(html)) == 4


async def test_the_cookie_is_secure_behind_https(svc):
    async with client() as http:
        resp = await http.post(svc.url + "/ops/login", data={"token": ALICE}, allow_redirects=False,
                               headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in resp.headers["Set-Cookie"]


async def test_a_wrong_token_is_refused_slowed_and_logged_without_the_token(svc, caplog):
    caplog.set_level(logging.INFO)
    async with client() as http:
        for n in range(3):
            resp = await sign_in(http, svc, token="wrong-token-but-long-enough-" + str(n))
            html = await resp.text()
            assert resp.status == 401 and 'role="alert"' in html and COOKIE not in resp.headers.get("Set-Cookie", "")
        resp = await sign_in(http, svc, token="")
        assert resp.status == 401
        status, html = await page(http, svc, "/ops/cases")
        assert 'name="token"' in html                  # still not signed in
    assert len(svc.delays) == 4 and svc.delays[0] > 0 and svc.delays[1] > svc.delays[0]
    assert "wrong-token" not in caplog.text and "refused" in caplog.text
    async with client() as http:                       # a success clears the address's failures
        await sign_in(http, svc)
    assert not svc.app[SESSIONS].failures
    assert "sign-in by alice" in caplog.text and ALICE not in caplog.text


async def test_a_session_expires_after_inactivity_and_sign_out_ends_it(svc):
    sessions = svc.app[SESSIONS]
    t = [1000.0]
    sessions.clock = lambda: t[0]
    async with client() as http:
        await sign_in(http, svc)
        t[0] += sessions.idle - 5
        status, html = await page(http, svc, "/ops/cases")
        assert status == 200 and queue_ids(html)           # activity keeps it alive
        t[0] += sessions.idle + 1
        async with http.get(svc.url + "/ops/cases", allow_redirects=False) as resp:
            assert resp.status == 303 and "expired=1" in resp.headers["Location"]
        await sign_in(http, svc)
        status, html = await page(http, svc, "/ops/cases")
        token = csrf_of(html)
        async with http.post(svc.url + "/ops/logout", data={"csrf": token}, allow_redirects=False) as resp:
            assert resp.status == 303
        async with http.get(svc.url + "/ops/cases", allow_redirects=False) as resp:
            assert resp.status == 303
    assert not sessions.by_id


async def test_the_workspace_is_off_without_tokens(tmp_path):
    async with service(tmp_path, tokens=False) as svc:
        async with client() as http:
            status, html = await page(http, svc, "/ops/login")
            assert 'name="token"' not in html and "HUQI_API_TOKENS" in html
            resp = await sign_in(http, svc, token=ALICE)
            assert resp.status == 404


async def test_security_headers_and_no_outside_resources(svc):
    async with client() as http:
        await sign_in(http, svc)
        for path in ("/ops/cases", "/ops/stats", "/ops/cases/HQ-2609-AAAA", "/ops/login"):
            async with http.get(svc.url + path) as resp:
                html = await resp.text()
                assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert not re.search(r'(src|href)="(https?:)?//', html), path   # nothing fetched from outside
                assert "<script" not in html.replace("&lt;script", "")


# -- CSRF and roles --------------------------------------------------------------------------------


async def test_changes_without_the_csrf_token_are_refused(svc):
    async with client() as http:
        await sign_in(http, svc)
        for data in ({"to": "accepted@platform", "note": "forged"}, {"to": "accepted@platform", "csrf": "x" * 43}):
            async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/status", data=data) as resp:
                assert resp.status == 403
        async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/message", data={"text": "forged"}) as resp:
            assert resp.status == 403
    async with client() as other:                  # no session at all
        async with other.post(svc.url + "/ops/cases/HQ-2610-BBBB/status", data={"to": "accepted@platform"}) as r:
            assert r.status == 403
    case = await svc.store.get("HQ-2610-BBBB")
    assert case["status"] == "submitted" and len(case["history"]) == 1
    assert await svc.store.outbox_list() == []


async def test_a_viewer_sees_but_cannot_change(svc):
    async with client() as http:
        await sign_in(http, svc, VIEWER)
        status, html = await page(http, svc, "/ops/cases/HQ-2610-BBBB")
        assert status == 200 and 'id="status-form"' not in html and 'id="read-only"' in html
        token = csrf_of(html)                      # the sign-out form's token
        for path, data in (("status", {"to": "accepted@platform"}), ("message", {"text": "hi"})):
            async with http.post(svc.url + f"/ops/cases/HQ-2610-BBBB/{path}", data={**data, "csrf": token}) as r:
                assert r.status == 403
        async with http.post(svc.url + "/ops/logout", data={"csrf": token}, allow_redirects=False) as r:
            assert r.status == 303                 # a viewer may sign out
    assert (await svc.store.get("HQ-2610-BBBB"))["status"] == "submitted"
    assert await svc.store.outbox_list() == []


# -- the queue --------------------------------------------------------------------------------------


async def test_queue_filters_sorting_and_overdue_rows(svc):
    async with client() as http:
        await sign_in(http, svc)
        _, html = await page(http, svc, "/ops/cases?status=submitted")
        assert sorted(queue_ids(html)) == ["HQ-2610-BBBB", "HQ-2611-DDDD"]
        _, html = await page(http, svc, "/ops/cases?platform=xiaohongshu&province=shanghai")
        assert sorted(queue_ids(html)) == ["HQ-2609-AAAA", "HQ-2611-DDDD"]
        _, html = await page(http, svc, "/ops/cases?q=bbbb")
        assert queue_ids(html) == ["HQ-2610-BBBB"]
        _, html = await page(http, svc, "/ops/cases?overdue=true")
        assert queue_ids(html) == ["HQ-2610-BBBB"]
        assert re.search(r'<tr class="overdue" data-case="HQ-2610-BBBB"', html)
        _, html = await page(http, svc, "/ops/cases?type=rumor&sort=-age")
        assert queue_ids(html) == ["HQ-2610-CCCC", "HQ-2609-AAAA"]
        _, html = await page(http, svc, "/ops/cases?sort=age")
        assert queue_ids(html) == ["HQ-2609-AAAA", "HQ-2610-CCCC", "HQ-2610-BBBB", "HQ-2611-DDDD"]
        _, html = await page(http, svc, "/ops/cases?sort=-age")
        assert queue_ids(html) == ["HQ-2611-DDDD", "HQ-2610-BBBB", "HQ-2610-CCCC", "HQ-2609-AAAA"]
        _, html = await page(http, svc, "/ops/cases?sort=-id")
        assert queue_ids(html) == sorted(queue_ids(html), reverse=True)
        _, html = await page(http, svc, "/ops/cases?platform=xiaohongshu")
        export = unescape(re.search(r'href="([^"]+)" id="export"', html).group(1))
        async with http.get(svc.url + export) as resp:
            text = (await resp.read()).decode("utf-8-sig")
            assert resp.status == 200 and resp.headers["Content-Disposition"].startswith("attachment")
        assert sorted(r[0] for r in list(csv.reader(io.StringIO(text)))[1:]) == ["HQ-2609-AAAA", "HQ-2611-DDDD"]
        status, html = await page(http, svc, "/ops/cases?status=nonsense")
        assert status == 400 and "nonsense" in html and queue_ids(html) == []


async def test_queue_pages_through_many_cases(tmp_path):
    many = [case(f"HQ-2610-{i:04d}", "submitted", "insult.abuse", "douyin", "beijing", 60 - i % 50,
                 history=[{"when": ago(1), "who": "user", "from": "ready", "to": "submitted", "channel": "platform"}])
            for i in range(120)]
    async with service(tmp_path, cases=many) as svc:
        async with client() as http:
            await sign_in(http, svc)
            seen = []
            path = "/ops/cases?sort=id"
            while path:
                _, html = await page(http, svc, path)
                seen += queue_ids(html)
                m = re.search(r'href="(/ops/cases\?[^"]+)" id="next"', html)
                path = unescape(m.group(1)) if m else None
            assert seen == sorted(c["id"] for c in many)
            assert '<strong id="total">120</strong>' in html


# -- a case ---------------------------------------------------------------------------------------


async def test_case_page_shows_timeline_tracks_evidence_and_escapes_user_text(svc):
    async with client() as http:
        await sign_in(http, svc)
        status, html = await page(http, svc, "/ops/cases/HQ-2609-AAAA")
        assert status == 200
        assert "<script>document" not in html and "&lt;script&gt;" in html and "<img src=x" not in html
        assert PHONE not in html and "138****5678" in html
        assert hashlib.sha256(FILE_BYTES).hexdigest() in html
        assert 'href="/ops/cases/HQ-2609-AAAA/files/0"' in html and 'href="/ops/cases/HQ-2609-AAAA/package"' in html
        options = re.findall(r'<option value="([^"]+)"', html.split('id="to"')[1].split("</select>")[0])
        assert set(options) == {"ready", "submitted@platform", "submitted@province", "closed#withdrawn"}
        async with http.get(svc.url + "/ops/cases/HQ-2609-AAAA/files/0") as resp:
            assert resp.status == 200 and await resp.read() == FILE_BYTES
            assert resp.headers["Content-Type"] == "application/octet-stream"
            assert resp.headers["Content-Disposition"].startswith("attachment")
        async with http.get(svc.url + "/ops/cases/HQ-2609-AAAA/files/1") as resp:
            assert resp.status == 404                   # a path leading outside the files folder
        async with http.get(svc.url + "/ops/cases/HQ-2609-AAAA/package") as resp:
            assert resp.status == 200 and resp.content_type == "application/zip"
        status, html = await page(http, svc, "/ops/cases/HQ-2610-BBBB")
        assert 'data-channel="platform"' in html and "DY-1" in html
        status, html = await page(http, svc, "/ops/cases/HQ-2611-ZZZZ")
        assert status == 404 and 'role="alert"' in html


async def test_a_status_change_goes_through_ops_records_and_notifies_the_owner(svc):
    async with client() as http:
        await sign_in(http, svc)
        _, html = await page(http, svc, "/ops/cases/HQ-2610-BBBB")
        data = {"csrf": csrf_of(html), "to": "accepted@platform", "note": "平台回复已受理", "reference": "DY-7"}
        async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/status", data=data) as resp:
            html = await resp.text()
            assert resp.status == 200 and 'id="done"' in html
        case = await svc.store.get("HQ-2610-BBBB")
        assert case["status"] == "accepted"
        ev = case["history"][-1]
        assert ev["who"] == "alice" and ev["to"] == "accepted" and ev["note"] == "平台回复已受理" and ev["ref"] == "DY-7"
        outbox = await svc.store.outbox_list(case_id="HQ-2610-BBBB")
        assert [m["kind"] for m in outbox] == ["status"] and outbox[0]["owner"] == OWNER
        assert "平台回复已受理" in html and "DY-7" in html and re.search(r'data-status="(pending|claimed)"', html)  # queued, not delivered
        # what the lifecycle does not allow from here is refused with the page, nothing changes
        data["to"] = "submitted@platform"
        async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/status", data=data) as resp:
            assert resp.status == 409 and 'role="alert"' in await resp.text()
        data.update(to="closed#resolved")
        async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/status", data=data) as resp:
            assert resp.status == 409
        assert len((await svc.store.get("HQ-2610-BBBB"))["history"]) == 2


async def test_a_refused_change_keeps_what_was_typed(svc):
    async with client() as http:
        await sign_in(http, svc)
        _, html = await page(http, svc, "/ops/cases/HQ-2610-BBBB")
        data = {"csrf": csrf_of(html), "to": "action_taken@platform", "note": "没选处置结果"}
        async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/status", data=data) as resp:
            html = await resp.text()
        assert resp.status == 409 and 'role="alert"' in html and "没选处置结果</textarea>" in html
        assert (await svc.store.get("HQ-2610-BBBB"))["status"] == "submitted"


async def test_a_message_to_the_owner_is_queued_and_recorded(svc):
    async with client() as http:
        await sign_in(http, svc)
        _, html = await page(http, svc, "/ops/cases/HQ-2610-BBBB")
        token = csrf_of(html)
        async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/message", data={"csrf": token, "text": "  "}) as r:
            assert r.status == 400
        async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/message",
                             data={"csrf": token, "text": "请补充营业执照 <b>谢谢</b>"}) as resp:
            html = await resp.text()
            assert resp.status == 200 and 'id="done"' in html and "&lt;b&gt;谢谢" in html
        outbox = await svc.store.outbox_list(case_id="HQ-2610-BBBB")
        assert [m["kind"] for m in outbox] == ["message"] and "请补充营业执照" in outbox[0]["text"]
        assert (await svc.store.get("HQ-2610-BBBB"))["history"][-1]["kind"] == "message"
        async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/message",
                             data={"csrf": token, "text": "x" * (ops.MAX_MESSAGE + 1)}) as r:
            assert r.status == 400
        assert len(await svc.store.outbox_list(case_id="HQ-2610-BBBB")) == 1


# -- statistics --------------------------------------------------------------------------------------


def table(html: str, chart: str) -> list[list[str]]:
    body = html.split(f'id="table-{chart}"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [[unescape(c) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", r)] for r in rows]


async def test_statistics_tables_and_csv_agree_with_the_api(svc):
    async with client() as http:
        await sign_in(http, svc)
        async with http.get(svc.url + "/api/v1/stats", headers={"Authorization": f"Bearer {ALICE}"}) as resp:
            api = await resp.json()
        status, html = await page(http, svc, "/ops/stats")
        assert status == 200 and html.count("<svg") >= 5
        assert f'<span class="num" id="fig-total">{api["total"]}</span>' in html
        assert f'<span class="num" id="fig-overdue">{api["overdue"]}</span>' in html
        for chart, key in (("platform", "by_platform"), ("province", "by_province"), ("status", "by_status")):
            rows = table(html, chart)[1:]
            assert [(r[0], int(r[1])) for r in rows] == [(x["label"], x["count"]) for x in api[key]], chart
        months = table(html, "month_type")
        assert [(r[0], int(r[-1])) for r in months[1:]] == [(x["label"], x["count"]) for x in api["by_month"]]
        assert months[0][1:-1] == [x["label"] for x in api["by_type"]]
        sat = table(html, "satisfaction")[1:]
        assert {r[0]: int(r[1]) for r in sat} == {k: v for k, v in api["satisfaction"]["scores"].items()}
        async with http.get(svc.url + "/ops/stats/platform.csv") as resp:
            text = (await resp.read()).decode("utf-8")
            assert resp.status == 200 and text.startswith("\ufeff")
            assert resp.headers["Content-Disposition"].startswith("attachment")
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:]
        assert [(r[0], int(r[1])) for r in rows] == [(x["label"], x["count"]) for x in api["by_platform"]]
        # filters apply to the page and the CSV alike
        _, html = await page(http, svc, "/ops/stats?platform=xiaohongshu")
        assert '<span class="num" id="fig-total">2</span>' in html
        async with http.get(svc.url + "/ops/stats/nothing.csv") as resp:
            assert resp.status == 404


# -- bad input ------------------------------------------------------------------------------------


async def test_bad_input_gets_a_page_never_a_traceback(svc):
    async with client() as http:
        # sign-in with garbage, a huge body, a file
        async with http.post(svc.url + "/ops/login", data=b"\xff\xfe\x00token=\xff",
                             headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
            assert resp.status == 401
        async with http.post(svc.url + "/ops/login", data={"token": "x" * (2 << 20)}) as resp:
            assert resp.status == 413 and 'role="alert"' in await resp.text()
        form = aiohttp.FormData()
        form.add_field("token", b"\x00\x01", filename="token.bin")
        async with http.post(svc.url + "/ops/login", data=form) as resp:
            assert resp.status == 401
        await sign_in(http, svc)
        for path, want in (("/ops/cases?page=-5&sort=%3Cscript%3E", 200), ("/ops/cases?page=" + "9" * 5000, 200),
                           ("/ops/cases?q=" + "x" * 500, 400), ("/ops/stats?province=nowhere", 400),
                           ("/ops/stats/province.csv?province=nowhere", 400), ("/ops/cases/%00%ff", 404),
                           ("/ops/cases/HQ-2609-AAAA/files/99", 404), ("/ops/nothing", 404)):
            status, html = await page(http, svc, path)
            assert status == want, path
            assert "Traceback" not in html and "<script>" not in html
        _, html = await page(http, svc, "/ops/cases/HQ-2610-BBBB")
        token = csrf_of(html)
        for data in ({"csrf": token, "to": "accepted@platform", "note": "x" * (ops.MAX_NOTE + 1)},
                     {"csrf": token, "to": "accepted@platform", "reference": "r" * 500},
                     {"csrf": token, "to": ""}, {"csrf": token}):
            async with http.post(svc.url + "/ops/cases/HQ-2610-BBBB/status", data=data) as resp:
                assert resp.status in (400, 409) and 'role="alert"' in await resp.text()
        async with http.post(svc.url + "/ops/cases/HQ-2611-ZZZZ/status",
                             data={"csrf": token, "to": "accepted@platform"}) as resp:
            assert resp.status == 404
        async with http.post(svc.url + "/ops/cases/HQ-2611-ZZZZ/message", data={"csrf": token, "text": "hi"}) as r:
            assert r.status == 404
    case = await svc.store.get("HQ-2610-BBBB")
    assert case["status"] == "submitted" and len(case["history"]) == 1
    assert await svc.store.outbox_list() == []


async def test_the_invite_page_shows_the_chat_link_and_a_qr_code_that_is_an_svg(svc):
    async with client() as http:
        status, html = await page(http, svc, "/ops/invite")
        assert "/ops/login" in html                               # signed out: the sign-in form
        await sign_in(http, svc)
        status, html = await page(http, svc, "/ops/invite")
        assert status == 200 and 'id="chat-qr"' in html
        link = re.search(r'id="chat-link">([^<]+)<', html).group(1)
        assert link.endswith("/chat")
        async with http.get(svc.url + "/chat/qr.svg") as resp:
            assert resp.status == 200 and resp.content_type == "image/svg+xml"
            assert (await resp.text()).lstrip().startswith(("<?xml", "<svg"))
