"""The web chat through real HTTP: identity, CSRF, ordering, notifications, uploads, recovery codes, e-mail."""
from __future__ import annotations

import asyncio
import email
import email.policy
import html
import json
import re
import socket
import stat
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import aiohttp
import pytest
from aiohttp import web

from bot import ops
from bot.config import SettingsError, load_settings
from bot.outbox import enqueue
from bot.server import build_app
from bot.store import open_store
from bot.webchat import WEBCHAT, identity
from bot.webchat.qr import qr_svg

DESCRIPTION = "有自媒体说我们杭州青禾食品资金链断裂马上破产 https://m.weibo.cn/status/4987654321"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def service(tmp_path, store=None, **env):
    port = free_port()
    settings = load_settings(dict({"HUQI_DATA_DIR": str(tmp_path / "data"), "HUQI_HTTP_PORT": str(port)}, **env))
    store = store if store is not None else open_store(None, backend="memory")
    app = build_app(settings, store)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", store, app
    finally:
        await runner.cleanup()


class Phone:
    """One browser: its own cookie jar, the page's CSRF token, the last entry number seen."""

    def __init__(self, url: str):
        self.url = url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.last = 0
        self.shown: list[dict] = []
        self.n = 0

    async def __aenter__(self):
        await self.open()
        return self

    async def __aexit__(self, *exc):
        await self.http.close()

    async def open(self) -> dict:
        async with self.http.get(self.url + "/chat") as resp:
            assert resp.status == 200
            page = await resp.text()
        self.csrf = json.loads(html.unescape(re.search(r'data-boot="([^"]*)"', page).group(1)))["csrf"]
        self.last, self.shown = 0, []
        return await self.poll()

    async def poll(self, wait: bool = False) -> dict:
        async with self.http.get(f"{self.url}/chat/api/events?after={self.last}" + ("&wait=1" if wait else "")) as r:
            body = await r.json()
            assert r.status == 200, body
        self.take(body)
        return body

    def take(self, body: dict) -> None:
        for e in body.get("messages", []):
            if e["seq"] > self.last:
                self.shown.append(e)
                self.last = e["seq"]

    async def post(self, path: str, body, headers=None, raw: bytes | None = None) -> tuple[int, dict]:
        h = {"X-CSRF-Token": self.csrf, **(headers or {})}
        kw = {"data": raw} if raw is not None else {"json": body}
        async with self.http.post(self.url + path, headers=h, **kw) as r:
            return r.status, await r.json()

    async def send(self, cid: str | None = None, **body) -> tuple[int, dict]:
        self.n += 1
        status, data = await self.post("/chat/api/send", dict(body, cid=cid or f"c{self.n}", after=self.last))
        if status == 200:
            self.take(data)
        return status, data

    def chips(self) -> list[dict]:
        last_me = max((i for i, e in enumerate(self.shown) if e["from"] == "me"), default=-1)
        return [b for e in self.shown[last_me + 1:] for b in e.get("buttons", [])]

    async def tap(self, label: str) -> dict:
        chip = next(b for b in self.chips() if b["label"].startswith(label))
        status, data = await self.send(value=chip["value"])
        assert status == 200, data
        return data

    async def upload(self, name: str, content: bytes, mime: str = "image/png") -> tuple[int, dict]:
        form = aiohttp.FormData()
        form.add_field("file", content, filename=name, content_type=mime)
        self.n += 1
        async with self.http.post(f"{self.url}/chat/api/upload?cid=u{self.n}&after={self.last}", data=form,
                                  headers={"X-CSRF-Token": self.csrf}) as r:
            data = await r.json()
        if r.status == 200:
            self.take(data)
        return r.status, data

    def text(self) -> str:
        return "\n".join(e.get("text", "") for e in self.shown)


async def report(phone: Phone, store) -> dict:
    """Description, a reading, defaults, saved: the case."""
    await phone.send(text=DESCRIPTION)
    await phone.tap("谣言")
    await phone.tap("都没有")
    for _ in range(12):
        if any(b["label"].startswith("保存为案件") for b in phone.chips()):
            break
        await phone.tap(phone.chips()[0]["label"])
    await phone.tap("保存为案件")
    (case,) = [c for c in await store.list() if c["owner"]["user_id"] == phone_user(phone)]
    return case


def phone_user(phone: Phone) -> str:
    cookie = next(c for c in phone.http.cookie_jar if c.key == identity.COOKIE)
    return cookie.value.rpartition(".")[0]


async def wait_sent(store) -> None:
    for _ in range(100):
        counts = await store.outbox_counts()
        if not counts.get("pending") and not counts.get("claimed"):
            return
        await asyncio.sleep(0.1)


def now() -> datetime:
    return datetime.now(timezone.utc)


# ── identity ────────────────────────────────────────────────────────
async def test_a_visitor_gets_a_signed_httponly_cookie_and_a_greeting_once(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as phone:
        cookie = next(c for c in phone.http.cookie_jar if c.key == identity.COOKIE)
        assert cookie["httponly"] and cookie["path"] == "/chat"
        greeting = list(phone.shown)
        assert greeting and greeting[-1]["buttons"]
        await phone.open()                    # a reload: the same conversation, nothing added
        assert phone.shown == greeting


async def test_a_forged_or_foreign_cookie_reaches_nothing(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as alice:
        case = await report(alice, store)
        uid = phone_user(alice)
        for forged in (f"{uid}.{'A' * 43}", identity.sign(b"another server's secret", uid), uid, "x" * 500):
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                http.cookie_jar.update_cookies({identity.COOKIE: forged})
                async with http.get(f"{url}/chat/api/events?after=0") as r:
                    assert r.status == 401
                async with http.get(f"{url}/chat/cases/{case['id']}/draft") as r:
                    assert r.status == 401
                async with http.get(f"{url}/chat") as r:          # the page starts a new, empty identity
                    assert r.status == 200
                    new = r.cookies[identity.COOKIE].value
                assert identity.verify(_app[WEBCHAT].secret, new) not in (None, uid)
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                http.cookie_jar.update_cookies({identity.COOKIE: new})
                async with http.get(f"{url}/chat/api/cases") as r:
                    assert r.status == 200 and (await r.json())["cases"] == []


async def test_nobody_reaches_another_users_case_by_its_number(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as alice, Phone(url) as bob:
        case = await report(alice, store)
        async with alice.http.get(f"{url}/chat/cases/{case['id']}/draft") as r:
            assert r.status == 200 and case["id"] in r.headers["Content-Disposition"] and await r.read()
        for path in (f"/chat/cases/{case['id']}/draft", f"/chat/cases/{case['id']}/package"):
            async with bob.http.get(url + path) as r:
                assert r.status == 404
        async with bob.http.get(f"{url}/chat/api/cases") as r:
            assert (await r.json())["cases"] == []
        await bob.send(text="/cases")
        assert case["id"] not in bob.text()


async def test_the_cookie_secret_is_made_once_kept_private_and_survives_a_restart(tmp_path):
    async with service(tmp_path) as (url, store, _app):
        phone = Phone(url)
        await phone.open()
        await phone.send(text=DESCRIPTION)
        secret_file = tmp_path / "data" / identity.SECRET_FILE
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    async with service(tmp_path, store=store) as (url2, _s, _app):
        phone.url = url2
        phone.last = 0
        await phone.poll()                          # the same cookie still works: the conversation is there
        assert DESCRIPTION in phone.text()
        await phone.http.close()
    with pytest.raises(SettingsError, match="HUQI_COOKIE_SECRET"):
        load_settings({"HUQI_COOKIE_SECRET": "short"})


# ── untrusted input ─────────────────────────────────────────────────
async def test_writes_need_the_pages_csrf_token_and_our_origin(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as phone:
        before = phone.last
        async with phone.http.post(f"{url}/chat/api/send", json={"text": DESCRIPTION}) as r:
            assert r.status == 403 and (await r.json())["text"]
        status, _ = await phone.post("/chat/api/send", {"text": DESCRIPTION}, headers={"X-CSRF-Token": "x" * 43})
        assert status == 403
        status, _ = await phone.post("/chat/api/send", {"text": DESCRIPTION}, headers={"Origin": "https://evil.example"})
        assert status == 403
        await phone.poll()
        assert phone.last == before                # nothing was taken


async def test_bad_input_gets_a_clear_answer_and_loses_nothing(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as phone:
        for raw, expected in ((b"{not json", 400), (b"\xff\xfe\x00binary", 400), (b"[1, 2]", 400),
                              (json.dumps({"text": "   "}).encode(), 400),
                              (json.dumps({"text": "字" * 2001}).encode(), 413),
                              (json.dumps({"text": "x" * 20000}).encode(), 413),
                              (json.dumps({"value": 5}).encode(), 400)):
            status, body = await phone.post("/chat/api/send", None, raw=raw,
                                            headers={"Content-Type": "application/json"})
            assert status == expected and body["text"], raw[:20]
        # a forged option is refused by the engine, the conversation goes on
        status, _ = await phone.send(value="sub:not.offered")
        assert status == 200
        status, _ = await phone.send(text=DESCRIPTION)
        assert status == 200 and any(b["label"].startswith("谣言") for b in phone.chips())
        # markup is data, never markup
        await phone.send(text='<img src=x onerror="alert(1)">')
        assert any(e.get("text") == '<img src=x onerror="alert(1)">' for e in phone.shown)


async def test_requests_are_rate_limited_per_identity_and_per_address(tmp_path):
    async with service(tmp_path, HUQI_WEB_ADDRESS_RATE="100") as (url, store, app):
        chat = app[WEBCHAT]
        for limiter in (chat.user_rate, chat.addr_rate, chat.new_ids):
            limiter.clock = lambda: 1000.0          # no refill while the test runs, however slow the machine
        async with Phone(url) as phone:
            statuses = [(await phone.send(text="/help"))[0] for _ in range(62)]
            assert statuses[0] == 200 and statuses[-1] == 429 and statuses.count(200) < 60
            async with Phone(url) as other:         # another identity is not held up by the first
                assert (await other.send(text="/help"))[0] == 200
        # one address: 100 writes a minute however many identities it uses
        statuses = []
        for _ in range(3):
            async with Phone(url) as p:
                statuses += [(await p.send(text="/help"))[0] for _ in range(20)]
        assert 429 in statuses
        limited = 0
        for _ in range(12):                         # new identities from one address
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}/chat") as r:
                    limited += r.status == 429
        assert limited


async def test_uploads_are_checked_kept_under_their_sha256_and_refusals_explained(tmp_path):
    import hashlib

    async with service(tmp_path, HUQI_MAX_FILE_MB="0.01") as (url, store, _app), Phone(url) as phone:
        await phone.send(text=DESCRIPTION)
        await phone.tap("谣言")
        status, _ = await phone.upload("big.png", b"\x89PNG" + b"0" * 20000)
        assert status == 200 and "big.png" in phone.text() and "MB" in phone.text()
        status, _ = await phone.upload("tool.exe", b"MZ" + b"\0" * 100, mime="application/x-msdownload")
        assert status == 200 and "tool.exe" in phone.shown[-1]["text"]
        good = b"\x89PNG\r\n\x1a\n" + b"shot" * 100
        status, _ = await phone.upload("微博截图.png", good)
        assert status == 200
        sha = hashlib.sha256(good).hexdigest()
        assert (tmp_path / "data" / "files" / sha[:2] / sha).read_bytes() == good
        assert any(e.get("file_name") == "微博截图.png" for e in phone.shown)
        status, body = await phone.post("/chat/api/upload", None, raw=b"not multipart",
                                        headers={"Content-Type": "text/plain"})
        assert status == 400 and body["text"]


# ── order and delivery ──────────────────────────────────────────────
async def test_double_taps_and_two_tabs_keep_one_turn_at_a_time_in_order(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as phone:
        await phone.send(text=DESCRIPTION)
        chip = next(b for b in phone.chips() if b["label"].startswith("谣言"))
        # the same tap arriving twice (double tap, resend after a reload) counts once
        results = await asyncio.gather(*(phone.send(cid="same-tap", value=chip["value"]) for _ in range(3)))
        assert all(s == 200 for s, _ in results)
        await phone.poll()
        assert sum(1 for e in phone.shown if e.get("cid") == "same-tap") == 1
        # a second tab of the same browser types at the same time: every message once, each answered in turn
        tab = Phone(url)
        tab.http.cookie_jar.update_cookies({c.key: c.value for c in phone.http.cookie_jar})
        tab.http._cookie_jar = phone.http.cookie_jar
        tab.csrf = phone.csrf
        words = ["/help"] * 6
        await asyncio.gather(*(p.send(cid=f"t{i}", text=w) for i, (p, w) in
                               enumerate(zip([phone, tab] * 3, words))))
        await tab.http.close()
        phone.last, phone.shown = 0, []
        await phone.poll()
        seqs = [e["seq"] for e in phone.shown]
        assert seqs == sorted(set(seqs)) and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        mine = [i for i, e in enumerate(phone.shown) if e.get("cid", "").startswith("t")]
        assert len(mine) == 6
        for a, b in zip(mine, mine[1:]):            # each message's answers come before the next message
            assert b - a > 1 and all(e["from"] == "bot" for e in phone.shown[a + 1:b])


async def test_a_staff_message_reaches_the_open_page_once_even_after_reconnects(tmp_path):
    async with service(tmp_path) as (url, store, app), Phone(url) as phone:
        case = await report(phone, store)
        waiting = asyncio.create_task(phone.poll(wait=True))
        await asyncio.sleep(0.2)
        await ops.message_owner(store, case["id"], "请补充营业执照", who="desk", now=now())
        body = await asyncio.wait_for(waiting, 15)
        assert "请补充营业执照" in "".join(e["text"] for e in body["messages"])
        assert body["messages"][-1]["news"] and body["messages"][-1]["case_id"] == case["id"]
        # the sender delivering the same outbox message again (a crash before it was marked sent)
        (msg,) = [m for m in await store.outbox_list() if m.get("kind") == "message"]
        await app[WEBCHAT].deliver_owner(msg)
        again = await phone.poll()                  # a reconnect from the last number
        assert again["messages"] == []
        phone.last, phone.shown = 0, []
        await phone.poll()
        assert phone.text().count("请补充营业执照") == 1


async def test_news_while_away_is_shown_as_what_changed_since_the_last_visit(tmp_path):
    async with service(tmp_path) as (url, store, app), Phone(url) as phone:
        case = await report(phone, store)
        await phone.poll()                           # the page saw everything up to here
        await phone.poll()
        await ops.transition(store, case["id"], "submitted", who="desk", now=now(), channel="platform")
        await wait_sent(store)
        first = await phone.open()                   # comes back later
        assert first["unseen"] == 1 and not first["email"]
        await phone.poll()                           # what the page polls next marks it seen
        assert (await phone.open())["unseen"] == 0


# ── recovery code ───────────────────────────────────────────────────
async def test_a_recovery_code_brings_the_cases_to_another_phone_and_is_never_stored(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as old, Phone(url) as new:
        case = await report(old, store)
        status, body = await old.post("/chat/api/code", {})
        code = body["code"]
        assert status == 200 and identity.normalise_code(code)
        assert code not in json.dumps(await store.get_state(f"web:{phone_user(old)}"))
        status, body = await new.post("/chat/api/restore", {"code": code.lower().replace("-", " ")})
        assert status == 200
        new.csrf = body["csrf"]
        await new.open()
        assert case["id"] in new.text()
        async with new.http.get(f"{url}/chat/api/cases") as r:
            assert [c["id"] for c in (await r.json())["cases"]] == [case["id"]]
        # a new code replaces the old one
        status, body = await old.post("/chat/api/code", {})
        async with Phone(url) as third:
            status, _ = await third.post("/chat/api/restore", {"code": code})
            assert status == 400


async def test_guessing_recovery_codes_is_rate_limited(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as owner, Phone(url) as guesser:
        _, body = await owner.post("/chat/api/code", {})
        statuses = [(await guesser.post("/chat/api/restore", {"code": identity.new_code()}))[0] for _ in range(6)]
        assert statuses[:5] == [400] * 5 and statuses[5] == 429
        status, _ = await guesser.post("/chat/api/restore", {"code": body["code"]})
        assert status == 429                         # even the right code, once the tries are used up


# ── e-mail ──────────────────────────────────────────────────────────
async def test_a_user_who_left_an_email_is_told_to_come_back_without_case_details(tmp_path):
    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
            return "250 OK"

    port = free_port()
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        async with service(tmp_path, HUQI_SMTP_URL=f"smtp://127.0.0.1:{port}?from=huqi@example.org",
                           HUQI_PUBLIC_URL="https://huqi.example.org") as (url, store, _app), Phone(url) as phone:
            case = await report(phone, store)
            status, body = await phone.post("/chat/api/email", {"email": "not an address"})
            assert status == 400 and body["text"]
            status, body = await phone.post("/chat/api/email", {"email": "officer@example.com"})
            assert status == 200 and body["ok"]
            await ops.message_owner(store, case["id"], "请补充营业执照", who="desk", now=now())
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.1)
            ((rcpt, raw),) = received
            assert rcpt == ["officer@example.com"]
            content = email.message_from_string(raw, policy=email.policy.default).get_content()
            assert "https://huqi.example.org/chat" in content and "营业执照" not in content
            # more news before they came back: no second e-mail; once they have looked, the next news mails again
            await ops.message_owner(store, case["id"], "请补充授权书", who="desk", now=now())
            await wait_sent(store)
            assert len(received) == 1
            assert (await phone.open())["email"]
            await phone.poll()
            await ops.message_owner(store, case["id"], "已受理", who="desk", now=now())
            for _ in range(100):
                if len(received) == 2:
                    break
                await asyncio.sleep(0.1)
            assert len(received) == 2
    finally:
        smtp.stop()


async def test_without_smtp_the_page_says_to_come_back(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as phone:
        status, body = await phone.post("/chat/api/email", {"email": "officer@example.com"})
        assert status == 200 and not body["ok"] and body["text"]
        async with phone.http.get(url + "/chat") as r:
            assert "come-back-chat" in await r.text()


# ── QR code ─────────────────────────────────────────────────────────
async def test_the_qr_code_encodes_the_public_chat_link(tmp_path):
    import segno

    async with service(tmp_path, HUQI_PUBLIC_URL="https://huqi.example.org/") as (url, store, _app):
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/chat/qr.svg") as r:
                assert r.status == 200 and r.content_type == "image/svg+xml"
                svg = await r.text()
    assert svg.startswith("<svg") and svg == qr_svg("https://huqi.example.org/chat")
    assert qr_svg("https://a.example/chat") != svg
    assert segno.make("https://huqi.example.org/chat", error="m").designator  # the same encoder, no network


async def test_a_closed_case_asks_the_web_owner_once_how_satisfied_they_are(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as phone, Phone(url) as other:
        case = await report(phone, store)
        for step in ({"to": "submitted", "channel": "platform"}, {"to": "action_taken", "outcome": "deleted"},
                     {"to": "closed", "reason": "resolved"}):
            await ops.transition(store, case["id"], who="desk", now=now(), **step)
        for _ in range(100):
            await phone.poll()
            if any(len(e.get("buttons", [])) == 5 for e in phone.shown):
                break
            await asyncio.sleep(0.1)
        ask = [e for e in phone.shown if len(e.get("buttons", [])) == 5]
        assert len(ask) == 1 and ask[0]["news"]
        five = next(b for b in ask[0]["buttons"] if b["label"].startswith("5"))
        await other.send(value=five["value"])                  # someone else's tap: nothing changes
        assert "satisfaction" not in await store.get(case["id"])
        await phone.send(value=five["value"])
        assert phone.shown[-2]["from"] == "me" and phone.shown[-2]["text"] == five["label"]
        await phone.send(text="处理很快，谢谢")
        sat = (await store.get(case["id"]))["satisfaction"]
        assert sat["score"] == 5 and sat["comment"] == "处理很快，谢谢"


# ── SMS binding (a fake sender: HUQI_SMS_SENDER names this module's factory) ─────
SMS_OUTBOX: list[tuple[str, str]] = []


class FakeSms:
    def __init__(self, settings):
        self.settings = settings

    async def send(self, phone: str, text: str) -> None:
        SMS_OUTBOX.append((phone, text))


def last_code(phone: str) -> str:
    return re.search(r"\d{6}", next(t for p, t in reversed(SMS_OUTBOX) if p == phone)).group(0)


async def test_a_mobile_number_confirmed_by_sms_brings_the_cases_to_another_phone(tmp_path):
    SMS_OUTBOX.clear()
    env = {"HUQI_SMS_SENDER": "tests.test_webchat:FakeSms"}
    async with service(tmp_path, **env) as (url, store, app), Phone(url) as old, Phone(url) as new:
        case = await report(old, store)
        status, body = await old.post("/chat/api/phone", {"phone": "12345"})
        assert status == 400 and body["text"]
        status, body = await old.post("/chat/api/phone", {"phone": "+86 138-0013-8000"})
        assert status == 200 and "138****8000" in body["text"]
        code = last_code("13800138000")
        stored = json.dumps(await store.get_state(f"web:{phone_user(old)}"))
        assert "13800138000" not in stored and code not in stored
        status, body = await old.post("/chat/api/phone/confirm", {"code": code})
        assert status == 200 and not body["switched"]
        # the new phone proves the same number: it takes on the old identity and finds the case
        status, _ = await new.post("/chat/api/phone", {"phone": "13800138000"})
        wrong = "000000" if last_code("13800138000") != "000000" else "111111"
        status, body = await new.post("/chat/api/phone/confirm", {"code": wrong})
        assert status == 400
        status, body = await new.post("/chat/api/phone/confirm", {"code": last_code("13800138000")})
        assert status == 200 and body["switched"]
        new.csrf = body["csrf"]
        await new.open()
        assert case["id"] in new.text()


async def test_sms_codes_expire_after_five_wrong_tries_and_sending_is_rate_limited(tmp_path):
    SMS_OUTBOX.clear()
    async with service(tmp_path, HUQI_SMS_SENDER="tests.test_webchat:FakeSms") as (url, store, app), \
            Phone(url) as phone:
        await phone.post("/chat/api/phone", {"phone": "13900139000"})
        code = last_code("13900139000")
        wrong = "000000" if code != "000000" else "111111"
        statuses = [(await phone.post("/chat/api/phone/confirm", {"code": wrong}))[0] for _ in range(5)]
        assert statuses == [400] * 5
        status, body = await phone.post("/chat/api/phone/confirm", {"code": code})
        assert status == 400 and body["error"] == "sms_expired"          # the right code, too late
        sends = [(await phone.post("/chat/api/phone", {"phone": "13900139000"}))[0] for _ in range(3)]
        assert sends[-1] == 429 and len(SMS_OUTBOX) == 3


async def test_without_an_sms_sender_there_is_no_phone_binding(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as phone:
        status, body = await phone.post("/chat/api/phone", {"phone": "13800138000"})
        assert status == 404 and body["text"]
    with pytest.raises(SettingsError, match="HUQI_SMS_SENDER"):
        load_settings({"HUQI_SMS_SENDER": "not a spec"})


async def test_a_traditional_writer_gets_the_page_in_traditional_too(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as phone:
        async with phone.http.get(url + "/chat") as r:
            simplified = await r.text()
        await phone.send(text="有自媒體說我們公司資金鏈斷裂馬上破產 https://m.weibo.cn/status/4987654321")
        async with phone.http.get(url + "/chat") as r:
            page = await r.text()
        assert "我的案件" in simplified and "我的案件" in page            # the same in both scripts
        assert "對話" in page and "对话" not in page.split("<main>")[0]


async def test_a_long_conversation_keeps_the_record_small_and_the_page_complete(tmp_path):
    from bot.webchat import CHUNK, CHUNKS_KEPT, RECENT

    async with service(tmp_path) as (url, store, app), Phone(url) as phone:
        app[WEBCHAT].user_rate = identity.RateLimiter(10**6)
        for i in range(40):
            status, _ = await phone.send(text="/help" if i % 2 else "/faq")
            assert status == 200
        record = await store.get_state(f"web:{phone_user(phone)}")
        assert len(record["web"]["log"]) < RECENT and len(record["web"]["archive"]) <= CHUNKS_KEPT
        live = list(phone.shown)
        phone.last, phone.shown = 0, []
        await phone.poll()                           # a reload: everything still kept, once, in order
        seqs = [e["seq"] for e in phone.shown]
        assert seqs == list(range(seqs[0], record["web"]["seq"] + 1))
        assert len(seqs) >= min(len(live), CHUNK * CHUNKS_KEPT)
        assert phone.shown == live[-len(phone.shown):]
        phone.last = seqs[-1] - 70                   # a page far behind catches up from the archive
        phone.shown = []
        await phone.poll()
        assert [e["seq"] for e in phone.shown] == list(range(seqs[-1] - 69, seqs[-1] + 1))


async def test_without_telegram_the_web_sender_leaves_telegram_messages_waiting(tmp_path):
    async with service(tmp_path) as (url, store, app):            # no token: only the web deliverer runs
        msg = await enqueue(store, kind="message", owner={"messenger": "telegram", "user_id": "1001"},
                            text="hello", now=now())
        for _ in range(30):
            got = await store.outbox_get(msg["id"])
            if got["status"] != "pending" or got.get("attempts"):
                break
            await asyncio.sleep(0.1)
        assert (await store.outbox_get(msg["id"]))["status"] == "pending"        # not parked, not lost


async def test_a_store_failure_is_a_clear_answer_and_the_page_still_loads(tmp_path):
    async with service(tmp_path) as (url, store, app), Phone(url) as phone:
        await store.close()
        status, body = await phone.send(text=DESCRIPTION)
        assert status == 503 and body["text"]
        async with phone.http.get(url + "/chat") as r:
            assert r.status == 200


async def test_a_draft_offered_in_the_chat_downloads_for_its_owner_only(tmp_path):
    async with service(tmp_path) as (url, store, _app), Phone(url) as alice, Phone(url) as bob:
        await report(alice, store)
        await alice.tap("查看草稿")
        await alice.tap("下载草稿文件")
        (entry,) = [e for e in alice.shown if e.get("file")]
        async with alice.http.get(f"{url}/chat/api/file/{entry['file']['id']}") as r:
            assert r.status == 200 and r.headers["Content-Disposition"].startswith("attachment")
            assert r.headers["Content-Type"].startswith("text/plain") and len(await r.read()) > 100
        async with bob.http.get(f"{url}/chat/api/file/{entry['file']['id']}") as r:
            assert r.status == 404
        async with bob.http.get(f"{url}/chat/api/file/..%2F..%2Fetc") as r:
            assert r.status == 404
