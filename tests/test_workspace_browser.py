"""The workspace in a real browser: Debian's Chromium, headless, driven by Playwright (no browser download).

Skipped only when no Chromium executable can be found (``apt-get install chromium``). A failing
test leaves ``failure.png`` in its temporary folder."""
from __future__ import annotations

import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.test_workspace import ALICE, OWNER, SCRIPT, VIEWER, service

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("HUQI_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found at /usr/bin/chromium; "
                                "install Debian's package: apt-get install -y chromium")


@asynccontextmanager
async def browser_page(tmp_path, **context_options):
    """A fresh browser page; on failure a screenshot is saved as tmp_path/failure.png."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(locale="zh-CN", **context_options)
            page = await context.new_page()
            page.set_default_timeout(15_000)
            dialogs: list = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.dialogs = dialogs
            try:
                yield page
            except BaseException:
                await page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                raise
        finally:
            await browser.close()


async def sign_in(page, url, token=ALICE):
    await page.goto(url + "/ops/cases")
    assert "/ops/login" in page.url
    await page.fill("#token", token)
    await page.click("#signin")


async def api_stats(url) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/api/v1/stats", headers={"Authorization": f"Bearer {ALICE}"}) as resp:
            return await resp.json()


async def rows_of(page, selector) -> list[list[str]]:
    return await page.eval_on_selector_all(
        selector + " tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))")


async def test_sign_in_filter_open_change_status_and_message_in_the_browser(tmp_path):
    async with service(tmp_path, "tinydb") as svc, browser_page(tmp_path) as page:
        await sign_in(page, svc.url)
        await page.wait_for_selector("#queue")
        assert await page.inner_text("#total") == "4"
        # filter the queue
        await page.select_option("select[name=status]", "submitted")
        await page.click("#apply")
        await page.wait_for_url("**/ops/cases?*status=submitted*")
        ids = await page.eval_on_selector_all("#queue tbody tr", "rs => rs.map(r => r.dataset.case)")
        assert sorted(ids) == ["HQ-2610-BBBB", "HQ-2611-DDDD"]
        assert await page.get_attribute("tr[data-case=HQ-2610-BBBB]", "class") == "overdue"
        # open a case
        await page.click("text=HQ-2610-BBBB")
        await page.wait_for_url("**/ops/cases/HQ-2610-BBBB")
        offered = await page.eval_on_selector_all("#to option", "os => os.map(o => o.value)")
        assert "accepted@platform" in offered and "ready" not in offered and "draft" not in offered
        # change the status with a note
        await page.select_option("#to", "accepted@platform")
        await page.fill("#reference", "DY-2026-77")
        await page.fill("#note", "平台客服电话确认已受理")
        await page.click("#change")
        await page.wait_for_selector("#done")
        assert await page.inner_text("#status") == "已受理"
        timeline = await page.inner_text("#timeline")
        assert "平台客服电话确认已受理" in timeline and "DY-2026-77" in timeline and "alice" in timeline
        queued = await rows_of(page, "#outbox")
        assert len(queued) == 1 and await page.get_attribute("#outbox tbody tr", "data-kind") == "status"
        assert await page.get_attribute("#outbox .ob-status", "data-status") in ("pending", "claimed")  # queued
        # send a message
        await page.fill("#text", "请补充营业执照扫描件")
        await page.click("#send")
        await page.wait_for_selector("#done")
        kinds = await page.eval_on_selector_all("#outbox tbody tr", "rs => rs.map(r => r.dataset.kind)")
        assert sorted(kinds) == ["message", "status"]
        assert "请补充营业执照扫描件" in await page.inner_text("#outbox")
        # what the store holds agrees
        stored = await svc.store.get("HQ-2610-BBBB")
        assert stored["status"] == "accepted" and stored["history"][-2]["note"] == "平台客服电话确认已受理"
        outbox = await svc.store.outbox_list(case_id="HQ-2610-BBBB")
        assert {m["kind"] for m in outbox} == {"status", "message"} and all(m["owner"] == OWNER for m in outbox)
        # sign out
        await page.click("#logout")
        await page.wait_for_url("**/ops/login?bye=1")
        await page.goto(svc.url + "/ops/cases")
        assert "/ops/login" in page.url


async def test_statistics_in_the_browser_match_the_api(tmp_path):
    async with service(tmp_path, "tinydb") as svc, browser_page(tmp_path) as page:
        await sign_in(page, svc.url)
        await page.click("nav >> text=统计")
        await page.wait_for_selector("#chart-month_type svg rect")
        api = await api_stats(svc.url)
        assert await page.inner_text("#fig-total") == str(api["total"])
        assert await page.inner_text("#fig-overdue") == str(api["overdue"])
        for chart, key in (("platform", "by_platform"), ("province", "by_province"), ("status", "by_status")):
            rows = await rows_of(page, f"#table-{chart}")
            assert [(r[0], int(r[1])) for r in rows] == [(x["label"], x["count"]) for x in api[key]], chart
            bars = await page.eval_on_selector_all(f"#chart-{chart} svg rect", "rs => rs.length")
            assert bars == len(api[key])
        months = await rows_of(page, "#table-month_type")
        assert [(r[0], int(r[-1])) for r in months] == [(x["label"], x["count"]) for x in api["by_month"]]
        # nothing was fetched from anywhere but this server
        html = await page.content()
        assert "http://" not in html.replace(svc.url, "").replace("http://www.w3.org/2000/svg", "")
        async with page.expect_download() as dl:
            await page.click("#chart-platform a.csv")
        path = await (await dl.value).path()
        text = Path(path).read_text(encoding="utf-8-sig")
        assert text.splitlines()[1].split(",")[0] == api["by_platform"][0]["label"]


async def test_wrong_token_forged_form_and_script_description_in_the_browser(tmp_path):
    async with service(tmp_path) as svc, browser_page(tmp_path) as page:
        # a wrong token is refused
        await sign_in(page, svc.url, token="not-the-token-0123456789")
        await page.wait_for_selector("#error")
        assert "/ops/login" in page.url and await page.query_selector("#queue") is None
        # the right one works
        await page.fill("#token", ALICE)
        await page.click("#signin")
        await page.wait_for_selector("#queue")
        # a description with <script> shows as text and runs nothing
        await page.goto(svc.url + "/ops/cases/HQ-2609-AAAA")
        description = await page.inner_text("#description")
        assert "<script>" in description and SCRIPT.split("<img")[0] in description
        assert await page.title() != "pwned" and page.dialogs == []
        assert await page.eval_on_selector_all("main img", "imgs => imgs.length") == 0
        # a form without the CSRF token, submitted from the signed-in browser, is refused
        async with page.expect_navigation() as nav:
            await page.evaluate("""() => {
                const f = document.createElement('form');
                f.method = 'post'; f.action = '/ops/cases/HQ-2609-AAAA/status';
                for (const [k, v] of [['to', 'ready'], ['note', 'forged']]) {
                    const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i);
                }
                document.body.appendChild(f); f.submit();
            }""")
        assert (await nav.value).status == 403
        assert await page.is_visible("#error")
        case = await svc.store.get("HQ-2609-AAAA")
        assert case["status"] == "draft" and not case.get("history")


async def test_a_viewer_on_a_phone_reads_without_forms(tmp_path):
    async with service(tmp_path) as svc, browser_page(tmp_path, viewport={"width": 390, "height": 844},
                                                      is_mobile=True, has_touch=True) as page:
        await sign_in(page, svc.url, token=VIEWER)
        await page.wait_for_selector("#queue")
        wide = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 1                                   # the page fits; the table scrolls inside
        await page.click("text=HQ-2610-BBBB")
        await page.wait_for_selector("#read-only")
        assert await page.query_selector("#status-form") is None
        assert await page.query_selector("#message-form") is None
