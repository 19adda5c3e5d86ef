"""The web chat in a real browser: Debian's Chromium through Playwright, a phone in WeChat's in-app browser."""
from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import pytest
from aiohttp import web

from bot import ops
from bot.config import load_settings
from bot.server import build_app
from bot.store import open_store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 13; V2196A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
             "MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 Weixin "
             "NetType/WIFI Language/zh_CN ABI/arm64")
PHONE = {"viewport": {"width": 360, "height": 740}, "has_touch": True, "is_mobile": True,
         "device_scale_factor": 2, "user_agent": WECHAT_UA, "locale": "zh-CN"}
DESCRIPTION = "有自媒体说我们杭州青禾食品资金链断裂马上破产 https://m.weibo.cn/status/4987654321"

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not (os.path.exists(CHROMIUM) or shutil.which("chromium")),
                                reason="Debian's chromium is not installed (apt-get install -y chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def service(tmp_path):
    port = free_port()
    settings = load_settings({"HUQI_DATA_DIR": str(tmp_path / "data"), "HUQI_HTTP_PORT": str(port)})
    store = open_store(None, backend="memory")
    app = build_app(settings, store)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", store
    finally:
        await runner.cleanup()


@asynccontextmanager
async def chromium():
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


LOG = "[role=log]"


async def bot_count(page) -> int:
    return await page.locator(f"{LOG} .msg.bot").count()


async def tap(page, label: str, before: int) -> None:
    """Tap the newest enabled option starting with ``label`` and wait for the answer."""
    chip = page.locator(f"{LOG} button.chip:enabled", has_text=label).last
    await chip.tap()
    await wait_more(page, before)


async def wait_more(page, before: int) -> None:
    await page.wait_for_function(
        "n => document.querySelectorAll('[role=log] .msg.bot').length > n"
        " && !document.querySelector('[role=log] .pending')", arg=before, timeout=20000)


async def enabled_labels(page) -> list[str]:
    return await page.locator(f"{LOG} button.chip:enabled").all_inner_texts()


async def test_a_newcomer_reports_from_a_phone_comes_back_and_hears_from_staff(tmp_path):
    screenshot = tmp_path / "weibo.png"
    screenshot.write_bytes(b"\x89PNG\r\n\x1a\n" + b"evidence" * 400)
    async with service(tmp_path) as (url, store), chromium() as browser:
        ctx = await browser.new_context(**PHONE)
        page = await ctx.new_page()
        errors, outside = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))
        await page.goto(url + "/chat")
        await page.wait_for_selector(f"{LOG} .msg.bot button.chip")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360     # no sideways scrolling
        # one typed description (Enter sends), then only taps
        n = await bot_count(page)
        await page.fill("input[name=text]", DESCRIPTION)
        await page.press("input[name=text]", "Enter")
        await wait_more(page, n)
        await tap(page, "谣言", await bot_count(page))
        n = await bot_count(page)
        await page.set_input_files("input[name=file]", str(screenshot))
        await wait_more(page, n)
        await tap(page, "都没有", await bot_count(page))
        for _ in range(12):
            labels = await enabled_labels(page)
            if any(label.startswith("保存为案件") for label in labels):
                break
            await tap(page, labels[0], await bot_count(page))          # the offered default
        await tap(page, "保存为案件", await bot_count(page))
        (case,) = await store.list()
        assert case["owner"]["messenger"] == "web"
        assert case["id"] in await page.locator(LOG).inner_text()
        (attachment,) = case["attachments"]
        assert attachment["sha256"] == hashlib.sha256(screenshot.read_bytes()).hexdigest()
        # every entry once, in order
        seqs = [int(s) for s in await page.locator(f"{LOG} .msg").evaluate_all(
            "els => els.map(e => e.dataset.seq)")]
        assert seqs == sorted(set(seqs))
        assert errors == [] and outside == []          # no script error, nothing fetched from elsewhere

        # the tab is closed; a new one in the same browser finds the case under 我的案件
        await page.close()
        page = await ctx.new_page()
        await page.goto(url + "/chat")
        await page.wait_for_selector(f"{LOG} .msg")
        await page.locator("nav button", has_text="我的案件").tap()
        item = page.locator(f"#cases li[data-case='{case['id']}']")
        await item.wait_for()
        async with page.expect_download() as dl:
            await item.locator("a", has_text="证据包").click()
        assert (await dl.value).suggested_filename.endswith(".zip")
        await page.locator("nav button", has_text="对话").tap()

        # staff write while the page is open: it appears at the end of the log, once
        await ops.message_owner(store, case["id"], "请补充营业执照扫描件", who="desk",
                                now=datetime.now(timezone.utc))
        await page.wait_for_function(
            "() => { const m = document.querySelectorAll('[role=log] .msg');"
            " return m.length && m[m.length - 1].textContent.includes('营业执照'); }", timeout=15000)
        assert (await page.locator(LOG).inner_text()).count("请补充营业执照扫描件") == 1

        # another phone: nothing of this case, even with its number
        other = await browser.new_context(**PHONE)
        stranger = await other.new_page()
        await stranger.goto(url + "/chat")
        await stranger.wait_for_selector(f"{LOG} .msg.bot")
        for path in (f"/chat/cases/{case['id']}/draft", f"/chat/cases/{case['id']}/package"):
            resp = await stranger.request.get(url + path)
            assert resp.status == 404
        await stranger.locator("nav button", has_text="我的案件").tap()
        await stranger.wait_for_selector("#cases-empty:not([hidden])")
        await stranger.locator("nav button", has_text="对话").tap()
        n = await bot_count(stranger)
        await stranger.fill("input[name=text]", f"查询案件 {case['id']}")
        await stranger.press("input[name=text]", "Enter")
        await wait_more(stranger, n)
        shown = await stranger.locator(LOG).inner_text()
        assert "营业执照" not in shown and "4987654321" not in shown
        await other.close()
        await ctx.close()


async def test_double_taps_reloads_and_markup_keep_the_conversation_consistent(tmp_path):
    async with service(tmp_path) as (url, store), chromium() as browser:
        ctx = await browser.new_context(**PHONE)
        page = await ctx.new_page()
        await page.goto(url + "/chat")
        await page.wait_for_selector(f"{LOG} .msg.bot button.chip")
        # markup typed by the user is shown as text, never run
        n = await bot_count(page)
        await page.fill("input[name=text]", '<img src=x onerror="window.pwned=1">')
        await page.press("input[name=text]", "Enter")
        await wait_more(page, n)
        assert await page.evaluate("window.pwned === undefined")
        assert await page.locator(f"{LOG} img").count() == 0
        assert '<img src=x onerror="window.pwned=1">' in await page.locator(LOG).inner_text()
        # typing while the answer is pending: both messages taken, in order
        n = await bot_count(page)
        await page.fill("input[name=text]", DESCRIPTION)
        await page.press("input[name=text]", "Enter")
        await page.fill("input[name=text]", "/help")
        await page.press("input[name=text]", "Enter")
        await page.wait_for_function(
            "() => document.querySelectorAll('[role=log] .msg.me:not(.pending)').length >= 3"
            " && !document.querySelector('[role=log] .pending')", timeout=20000)
        mine = await page.locator(f"{LOG} .msg.me").all_inner_texts()
        assert mine[-2:] == [DESCRIPTION, "/help"]
        # reload in the middle of the intake: the same conversation, the options still there
        await page.reload()
        await page.wait_for_selector(f"{LOG} .msg.bot button.chip:enabled")
        assert (await page.locator(f"{LOG} .msg.me").all_inner_texts())[-2:] == [DESCRIPTION, "/help"]
        await page.fill("input[name=text]", DESCRIPTION)
        await page.press("input[name=text]", "Enter")
        await page.wait_for_function(
            "() => Array.from(document.querySelectorAll('[role=log] button.chip:enabled'))"
            ".some(b => b.textContent.startsWith('谣言'))", timeout=20000)
        # a double tap on an option counts once
        n = await page.locator(f"{LOG} .msg.me").count()
        chip = page.locator(f"{LOG} button.chip:enabled", has_text="谣言").last
        await chip.dblclick()
        await page.wait_for_function(
            "n => document.querySelectorAll('[role=log] .msg.me').length > n"
            " && !document.querySelector('[role=log] .pending')", arg=n, timeout=20000)
        await asyncio.sleep(0.5)
        assert await page.locator(f"{LOG} .msg.me").count() == n + 1
        # a second tab of the same browser shows the same log, each entry once
        tab = await ctx.new_page()
        await tab.goto(url + "/chat")
        await tab.wait_for_selector(f"{LOG} .msg.me")
        seqs = await tab.locator(f"{LOG} .msg").evaluate_all("els => els.map(e => +e.dataset.seq)")
        assert seqs == list(range(1, len(seqs) + 1))
        await ctx.close()


async def test_a_recovery_code_shown_once_opens_the_same_conversation_on_another_phone(tmp_path):
    async with service(tmp_path) as (url, store), chromium() as browser:
        old_ctx, new_ctx = await browser.new_context(**PHONE), await browser.new_context(**PHONE)
        old = await old_ctx.new_page()
        await old.goto(url + "/chat")
        await old.wait_for_selector(f"{LOG} .msg.bot button.chip")
        n = await bot_count(old)
        await old.fill("input[name=text]", DESCRIPTION)
        await old.press("input[name=text]", "Enter")
        await wait_more(old, n)
        await old.locator("nav button", has_text="找回").tap()
        await old.locator("#code-make").tap()
        await old.wait_for_selector("#code-shown:not([hidden])")
        code = (await old.locator("#code-value").inner_text()).strip()
        assert len(code.replace("-", "")) == 12
        new = await new_ctx.new_page()
        await new.goto(url + "/chat")
        await new.wait_for_selector(f"{LOG} .msg.bot")
        assert DESCRIPTION not in await new.locator(LOG).inner_text()
        await new.locator("nav button", has_text="找回").tap()
        await new.fill("#code-input", code.lower())
        async with new.expect_navigation():
            await new.locator("#code-form button").tap()
        await new.wait_for_function(
            "d => document.querySelector('[role=log]').textContent.includes(d)", arg=DESCRIPTION, timeout=15000)
        await old_ctx.close()
        await new_ctx.close()
