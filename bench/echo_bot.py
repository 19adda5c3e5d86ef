"""A plain PTB echo bot in webhook mode: the floor any PTB bot pays on this machine (bench/telegram.py).

Usage: python -m bench.echo_bot PORT BASE_URL  (from the project's root)
"""
from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web
from telegram import Update
from telegram.ext import ApplicationBuilder, MessageHandler, filters


async def main(port: int, base_url: str) -> None:
    app = ApplicationBuilder().token("123456:TEST-token").base_url(base_url).updater(None) \
        .concurrent_updates(256).build()

    async def echo(update: Update, context) -> None:
        await context.bot.send_message(update.effective_chat.id, update.effective_message.text)
    app.add_handler(MessageHandler(filters.TEXT, echo))
    await app.initialize()
    await app.start()

    async def hook(request: web.Request) -> web.Response:
        update = Update.de_json(json.loads(await request.read()), app.bot)
        await app.process_update(update)
        return web.json_response({"ok": True})
    web_app = web.Application()
    web_app.router.add_post("/hook", hook)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
