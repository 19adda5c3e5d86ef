"""The staff's web workspace under ``/ops/``: server-rendered pages over :mod:`bot.ops`.

``setup(app)`` adds the routes, the Jinja2 templates (autoescaped), the
stylesheet, the sessions and a middleware that turns errors on ``/ops`` into
pages and adds the security headers.  Off (the sign-in page says so) unless
operator tokens are configured.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import aiohttp_jinja2
import jinja2
import yaml
from aiohttp import web

from bot import ops
from bot.config import SettingsError
from bot.store import CaseNotFound, StoreError

log = logging.getLogger("huqi.workspace")

HERE = Path(__file__).parent
PREFIX = "/ops"
TEMPLATES = web.AppKey("workspace_templates", jinja2.Environment)
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


@lru_cache(maxsize=1)
def texts() -> dict:
    with open(HERE / "texts.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def message(key: str, **values) -> str:
    return texts()["messages"][key].format(**values).strip()


def _ours(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_page(request: web.Request, status: int, text: str) -> web.Response:
    from bot.workspace.auth import current

    session, _ = current(request)
    return aiohttp_jinja2.render_template("error.html", request, {"error": text, "session": session,
                                                                  "status": status},
                                          status=status, app_key=TEMPLATES)


@web.middleware
async def pages(request: web.Request, handler) -> web.StreamResponse:
    if not _ours(request.path):
        return await handler(request)
    try:
        resp = await handler(request)
    except ops.OpsError as e:
        resp = error_page(request, e.status, e.message)
    except CaseNotFound:
        resp = error_page(request, 404, message("not_found"))
    except StoreError as e:
        log.error("workspace store error %s on %s", type(e).__name__, request.method)
        resp = error_page(request, 503, message("store_unavailable"))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        resp = error_page(request, e.status, message("not_found") if e.status == 404
                          else message("bad_request", status=e.status))
    except Exception as e:  # never a traceback page; never case data in the log
        log.error("workspace error %s on %s", type(e).__name__, request.method)
        log.debug("workspace error details", exc_info=True)
        resp = error_page(request, 500, message("internal"))
    if not resp.prepared:
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        if not request.path.startswith(PREFIX + "/static/"):
            resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _idle_seconds(settings) -> float:
    raw = (settings.env or {}).get("HUQI_OPS_IDLE_MINUTES")
    if raw is None or not str(raw).strip():
        from bot.workspace.auth import IDLE_SECONDS
        return IDLE_SECONDS
    try:
        minutes = float(raw)
    except ValueError:
        raise SettingsError(f"HUQI_OPS_IDLE_MINUTES={raw!r} is not a number") from None
    if not 1 <= minutes <= 24 * 60:
        raise SettingsError(f"HUQI_OPS_IDLE_MINUTES={raw!r} must be between 1 and 1440")
    return minutes * 60


def setup(app: web.Application) -> None:
    """Add the workspace to ``app`` (which already holds STORE, SETTINGS and CLOCK)."""
    from bot.appkeys import SETTINGS
    from bot.workspace import views
    from bot.workspace.auth import SESSIONS, Sessions
    from bot.workspace.cache import CACHE, CaseCache

    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                               app_key=TEMPLATES,
                               trim_blocks=True, lstrip_blocks=True)
    env.globals["t"] = texts()
    env.globals["local_time"] = ops.local_time
    app[SESSIONS] = Sessions(idle=_idle_seconds(app[SETTINGS]))
    app[CACHE] = CaseCache()
    app.middlewares.append(pages)
    r = app.router
    r.add_get(PREFIX, views.home)
    r.add_get(PREFIX + "/", views.home)
    r.add_get(PREFIX + "/login", views.login_form)
    r.add_post(PREFIX + "/login", views.login)
    r.add_post(PREFIX + "/logout", views.logout)
    r.add_get(PREFIX + "/cases", views.queue)
    r.add_get(PREFIX + "/cases/{number}", views.case_page)
    r.add_post(PREFIX + "/cases/{number}/status", views.change_status)
    r.add_post(PREFIX + "/cases/{number}/message", views.send_message)
    r.add_get(PREFIX + "/cases/{number}/files/{index:\\d+}", views.evidence_file)
    r.add_get(PREFIX + "/cases/{number}/package", views.evidence_package)
    r.add_get(PREFIX + "/export.csv", views.export_csv)
    r.add_get(PREFIX + "/stats", views.stats_page)
    r.add_get(PREFIX + "/stats/{chart}.csv", views.stats_csv)
    r.add_get(PREFIX + "/invite", views.invite_page)
    r.add_static(PREFIX + "/static", HERE / "static", append_version=False)
