"""The operators' JSON API (``/api/v1``) and its OpenAPI document, over :mod:`bot.ops`.

One table (:data:`ROUTES`) makes both the aiohttp routes and ``/openapi.json``.
Off (404) unless API tokens are configured; ``Authorization: Bearer`` checked
in constant time; viewer tokens only read. Every error is a JSON body
``{"error": {"code", "message"}}`` — never HTML.
"""
from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional

from aiohttp import web

from bot import ops
from bot.appkeys import CLOCK, SETTINGS, STORE
from bot.config import ApiToken
from bot.store import CaseNotFound, StoreError

log = logging.getLogger("huqi.api")

PREFIX = "/api/v1"
MAX_BODY = 64 * 1024
JSON_TYPE = "application/json"

Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Param:
    name: str
    where: str                 # "query" | "path"
    description: str
    schema: dict
    required: bool = False


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    op_id: str
    summary: str
    handler: Handler
    params: tuple = ()
    body: Optional[dict] = None          # JSON schema of the request body
    ok: tuple = (200, JSON_TYPE)         # (status, content type) of success
    writes: bool = False


def _err_text(key: str, **values) -> str:
    return ops.texts()["api_errors"][key].format(**values).strip()


def error_response(status: int, code: str, message: str, **details) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **details}}, status=status,
                             dumps=_dumps)


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _json(data, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


# --------------------------------------------------------------------------
# Errors as JSON, authentication


def _ours(path: str) -> bool:
    return path == "/openapi.json" or path == "/api" or path.startswith("/api/")


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _ours(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except ops.OpsError as e:
        resp = error_response(e.status, e.code, e.message, **e.details)
        if e.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="huqi"'
        return resp
    except CaseNotFound:  # gone between reading and writing (purged meanwhile)
        return error_response(404, "not_found", _err_text("gone"))
    except StoreError as e:
        log.error("API store error %s in %s %s", type(e).__name__, request.method, _route_name(request))
        return error_response(503, "store_unavailable", _err_text("store_unavailable"))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = _HTTP_CODES.get(e.status, f"http_{e.status}")
        if e.status == 404:
            message = _err_text("not_found", path=request.path[:200])
        elif e.status == 405:
            message = _err_text("method_not_allowed", method=request.method[:20])
        elif e.status == 413:
            message = _err_text("too_large", max=MAX_BODY)
        else:
            message = _err_text("http", status=e.status)
        resp = error_response(e.status, code, message)
        if "Allow" in e.headers:
            resp.headers["Allow"] = e.headers["Allow"]
        return resp
    except Exception as e:  # never a traceback page; never case data in the log
        log.error("API error %s in %s %s", type(e).__name__, request.method, _route_name(request))
        return error_response(500, "internal", _err_text("internal"))


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource if request.match_info and request.match_info.route else None
    return info.canonical if info is not None else "?"


def _authorised(request: web.Request, route: Route) -> ApiToken:
    settings = request.app[SETTINGS]
    if not settings.api_enabled:
        raise ops.OpsError("api_off", _err_text("api_off"), 404)
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    token = settings.token_named(presented.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise ops.OpsError("unauthorized", _err_text("unauthorized"), 401)
    if route.writes and not token.can_change:
        raise ops.OpsError("forbidden", _err_text("forbidden"), 403)
    return token


async def _body(request: web.Request, allowed: tuple) -> dict:
    """The JSON object of the request, at most MAX_BODY bytes, only ``allowed`` fields."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ops.OpsError("too_large", _err_text("too_large", max=MAX_BODY), 413)
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ops.OpsError("too_large", _err_text("too_large", max=MAX_BODY), 413)
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ops.OpsError("bad_json", _err_text("bad_json"), 400) from None
    if not isinstance(data, dict):
        raise ops.OpsError("bad_json", _err_text("bad_json"), 400)
    for key in data:
        if key not in allowed:
            raise ops.OpsError("unknown_field", _err_text("unknown_field", field=str(key)[:40],
                                                            fields=ops._sep().join(allowed)), 400)
    return data


def _filters(request: web.Request) -> dict:
    q = request.query
    return {k: q.getall(k) for k in FILTER_NAMES if k in q}


def _days(request: web.Request) -> int:
    return request.app[SETTINGS].reminder_days or ops.default_days()


def _now(request: web.Request):
    return request.app[CLOCK]()


def _case_number(request: web.Request) -> str:
    return request.match_info["number"]


# --------------------------------------------------------------------------
# Handlers


async def list_cases(request: web.Request, token: ApiToken) -> web.Response:
    limit_raw = request.query.get("limit")
    limit = ops.DEFAULT_PAGE
    if limit_raw is not None:
        try:
            limit = int(limit_raw)
        except ValueError:
            limit = -1  # refused below with the page-size message
    if limit_raw is not None and not 1 <= limit <= ops.MAX_PAGE:
        raise ops.OpsError("bad_filter", ops._error_text("bad_limit", value=limit_raw[:20], max=ops.MAX_PAGE))
    page = await ops.list_cases(request.app[STORE], _filters(request), now=_now(request), days=_days(request),
                                cursor=request.query.get("cursor") or None, limit=limit,
                                sort=request.query.get("sort") or "created")
    return _json(page)


async def get_case(request: web.Request, token: ApiToken) -> web.Response:
    return _json(await ops.case_detail(request.app[STORE], _case_number(request), now=_now(request),
                                       days=_days(request)))


TRANSITION_FIELDS = ("to", "note", "channel", "reference", "outcome", "reason")


async def post_transition(request: web.Request, token: ApiToken) -> web.Response:
    body = await _body(request, TRANSITION_FIELDS)
    result = await ops.transition(request.app[STORE], _case_number(request), body.get("to"),
                                  who=token.name, now=_now(request), days=_days(request),
                                  **{k: body.get(k) for k in TRANSITION_FIELDS[1:]})
    return _json(result)


async def post_message(request: web.Request, token: ApiToken) -> web.Response:
    body = await _body(request, ("text",))
    result = await ops.message_owner(request.app[STORE], _case_number(request), body.get("text"),
                                     who=token.name, now=_now(request))
    return _json(result, status=201)


async def get_package(request: web.Request, token: ApiToken) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    where = settings.data_dir if settings.data_dir.is_dir() else None  # private dir, not /tmp
    with tempfile.TemporaryFile(dir=where) as f:
        name = await ops.package(request.app[STORE], _case_number(request), files_dir=settings.files_dir,
                                 now=_now(request), out=f)
        size = f.tell()
        f.seek(0)
        resp = web.StreamResponse(headers={"Content-Type": "application/zip", "Content-Length": str(size),
                                           "Content-Disposition": f'attachment; filename="{name}"'})
        await resp.prepare(request)
        try:
            while block := await asyncio.to_thread(f.read, 1 << 20):
                await resp.write(block)
            await resp.write_eof()
        except ConnectionError:  # the client went away; headers are sent, nothing more to say
            pass
        return resp


async def get_export(request: web.Request, token: ApiToken) -> web.Response:
    now = _now(request)
    text, _ = await ops.export_csv(request.app[STORE], _filters(request), now=now, days=_days(request))
    name = f"huqi-cases-{now.astimezone(ops.LOCAL_ZONE):%Y%m%d}.csv"
    return web.Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def get_stats(request: web.Request, token: ApiToken) -> web.Response:
    return _json(await ops.stats(request.app[STORE], _filters(request), now=_now(request), days=_days(request)))


# --------------------------------------------------------------------------
# The route table and the OpenAPI document made from it


def _q(name: str, description: str, schema: Optional[dict] = None) -> Param:
    return Param(name, "query", description, schema or {"type": "string"})


FILTERS = (
    _q("status", "Status id or its label as staff read it; repeat or separate with commas"),
    _q("type", "Type id or its title (rumor)"),
    _q("subtype", "Sub-type id (rumor.fabricated_violation) or title"),
    _q("platform", "Platform id, name or alias (xiaohongshu)"),
    _q("province", "Province id, name or alias (shanghai)"),
    _q("overdue", "true: only cases past their follow-up date; false: only the others",
       {"type": "boolean"}),
    _q("messenger", "Where the owner talks to huqi (telegram, terminal, web)"),
    _q("q", "Text search in the case number or the enterprise name"),
    _q("older_than", "Created more than this many days ago", {"type": "integer", "minimum": 0}),
    _q("newer_than", "Created within this many days", {"type": "integer", "minimum": 0}),
)
FILTER_NAMES = tuple(p.name for p in FILTERS)
NUMBER = Param("number", "path", "Case number, e.g. HQ-2611-7K3Q", {"type": "string"}, True)

ROUTES = (
    Route("GET", f"{PREFIX}/cases", "listCases", "Cases matching the filters, oldest first, a page at a time",
          list_cases, FILTERS + (_q("cursor", "next_cursor of the previous page (same filters and sort)"),
                                 _q("sort", "Order: created (default, oldest first), updated or due; "
                                            "a leading - for newest/latest first", {"type": "string",
                                                                                   "enum": list(ops.SORTS)}),
                                 _q("limit", f"Page size, 1-{ops.MAX_PAGE} (default {ops.DEFAULT_PAGE})",
                                    {"type": "integer", "minimum": 1, "maximum": ops.MAX_PAGE}))),
    Route("GET", f"{PREFIX}/cases/{{number}}", "getCase",
          "A case with its history, evidence files, outbox entries and allowed transitions", get_case, (NUMBER,)),
    Route("POST", f"{PREFIX}/cases/{{number}}/transitions", "transitionCase",
          "Change the status (the lifecycle decides; 409 lists what is possible); the owner is notified",
          post_transition, (NUMBER,),
          body={"type": "object", "required": ["to"], "additionalProperties": False,
                "properties": {"to": {"type": "string"}, "note": {"type": "string"},
                               "channel": {"type": "string"}, "reference": {"type": "string"},
                               "outcome": {"type": "string"}, "reason": {"type": "string"}},
                "example": {"to": "accepted", "note": "accepted by the platform", "reference": "DY-1"}},
          writes=True),
    Route("POST", f"{PREFIX}/cases/{{number}}/messages", "messageOwner",
          "Queue a message to the case's owner (recorded in the history)", post_message, (NUMBER,),
          body={"type": "object", "required": ["text"], "additionalProperties": False,
                "properties": {"text": {"type": "string", "maxLength": ops.MAX_MESSAGE}},
                "example": {"text": "Please send the business licence."}},
          ok=(201, JSON_TYPE), writes=True),
    Route("GET", f"{PREFIX}/cases/{{number}}/package", "getPackage",
          "The evidence package: a zip with the report draft, every file and a manifest", get_package, (NUMBER,),
          ok=(200, "application/zip")),
    Route("GET", f"{PREFIX}/export.csv", "exportCases",
          "The matching cases as CSV (UTF-8 with BOM, Chinese labels, Beijing time)", get_export, FILTERS,
          ok=(200, "text/csv")),
    Route("GET", f"{PREFIX}/stats", "getStats",
          "Counts by type, sub-type, platform, province, status and month; median days from submission "
          "to action; overdue count; satisfaction", get_stats, FILTERS),
)


def openapi() -> dict:
    """The OpenAPI 3 document of :data:`ROUTES`."""
    error = {"$ref": "#/components/schemas/Error"}
    paths: dict = {}
    for r in ROUTES:
        status, ctype = r.ok
        responses = {str(status): {"description": "OK", "content": {ctype: {"schema": {} if ctype != JSON_TYPE
                                                                              else {"type": "object"}}}},
                     "400": {"description": "Bad request", "content": {JSON_TYPE: {"schema": error}}},
                     "401": {"description": "No or wrong token", "content": {JSON_TYPE: {"schema": error}}},
                     "404": {"description": "Unknown case, or the API is off",
                             "content": {JSON_TYPE: {"schema": error}}}}
        if r.writes:
            responses["403"] = {"description": "A viewer token cannot change", "content": {JSON_TYPE: {"schema": error}}}
            responses["409"] = {"description": "Refused: what is possible from here",
                                "content": {JSON_TYPE: {"schema": error}}}
            responses["413"] = {"description": "Body too large", "content": {JSON_TYPE: {"schema": error}}}
        op = {"operationId": r.op_id, "summary": r.summary, "security": [{"bearer": []}],
              "parameters": [{"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                              "description": p.description, "schema": p.schema} for p in r.params],
              "responses": responses}
        if r.body:
            op["requestBody"] = {"required": True, "content": {JSON_TYPE: {"schema": r.body}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "huqi operators' API", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "allowed": {"type": "array", "items": {"type": "object"}}}}}}},
        },
    }


async def get_openapi(request: web.Request) -> web.Response:
    if not request.app[SETTINGS].api_enabled:
        raise ops.OpsError("api_off", _err_text("api_off"), 404)
    return _json(openapi())


def _guarded(route: Route) -> Handler:
    known = {p.name for p in route.params if p.where == "query"}

    async def handle(request: web.Request) -> web.StreamResponse:
        token = _authorised(request, route)
        for name in request.query:
            if name not in known:
                raise ops.OpsError("unknown_parameter", _err_text(
                    "unknown_parameter", name=name[:40], names=ops._sep().join(sorted(known)) or "-"), 400)
        return await route.handler(request, token)
    handle.__name__ = route.op_id
    return handle


def setup(app: web.Application) -> None:
    """Add the API routes, /openapi.json and the JSON-errors middleware to ``app``."""
    app.middlewares.append(errors_as_json)
    for r in ROUTES:
        app.router.add_route(r.method, r.path, _guarded(r))
    app.router.add_get("/openapi.json", get_openapi)
