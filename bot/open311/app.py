"""The Open311 GeoReport v2 web API as an aiohttp sub-application (mounted at /open311/v2/).

    GET  discovery.{json|xml}              where the API is and what it speaks
    GET  services.{json|xml}               one service per district category
    GET  services/{code}.{json|xml}        its extra attributes (service definition)
    POST requests.{json|xml}               report a problem (api_key of a client that may write)
    GET  requests.{json|xml}               cases: service_request_id, service_code, start_date,
                                           end_date, status; 90 days and 1,000 at most
    GET  requests/{id}.{json|xml}          one case by its number
    GET  tokens/{token}.{json|xml}         the case a POST's token stands for

Reading needs no key (the spec's GET calls take none); nothing read names or describes a
resident, and a case's point is published snapped to the district's grid (about 100 m), as
stored only to a client whose key may see exact locations (sent in the X-API-Key header). A
key goes in the POST body or that header, never in the URL: a URL is written into access logs
and histories, and a call with `api_key` in its query string is refused. Texts are in the
`locale` parameter's language or Accept-Language's, else Chinese.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from bot.context import AppContext
from bot.i18n import plain
from bot.open311.errors import Open311Error, bad_request, forbidden, not_found
from bot.open311.keys import authenticate
from bot.open311.params import language, w3c
from bot.open311.queries import RequestQuery, find_requests, request_query
from bot.open311.render import Value, format_of, respond, shown
from bot.open311.services import definition, service
from bot.open311.submission import read_submission
from bot.open311.submit import TOKEN_PREFIX, is_token, submit
from bot.open311.view import Grid, service_request
from storage.cases import case_by_idempotency_key
from storage.models import Open311Client

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ContextSource:
    """Where the handlers find the AppContext: given at once, or once the server has started."""

    def __init__(self, ctx: AppContext | None = None) -> None:
        self.ctx = ctx

    def get(self) -> AppContext:
        if self.ctx is None:
            raise web.HTTPServiceUnavailable(text="starting")
        return self.ctx


SOURCE_KEY: web.AppKey[ContextSource] = web.AppKey("open311_ctx", ContextSource)
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FMT = "{fmt:json|xml}"
MAX_BODY = 64 * 1024
API_KEY = "api_key"
API_KEY_HEADER = "X-API-Key"


def _ctx(request: web.Request) -> AppContext:
    return request.app[SOURCE_KEY].get()


async def discovery(request: web.Request) -> web.Response:
    ctx, lang = _ctx(request), language(request)
    base = str(request.url.with_query(None)).rsplit("/", 1)[0]
    changed = w3c(_services_changed(ctx), ctx.district.tz)
    district = ctx.district.name(ctx.district, lang)
    body: dict[str, Value] = {
        "changeset": changed,
        "contact": plain(lang, "open311.discovery.contact", district=district),
        "key_service": plain(lang, "open311.discovery.key_service", district=district),
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": base,
                "changeset": changed,
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    return respond(request.match_info["fmt"], "discovery", body)


def _services_changed(ctx: AppContext) -> datetime:
    """When the service list last changed: when the district file was last written."""
    try:
        mtime = (ctx.settings.district_dir / "district.toml").stat().st_mtime
    except OSError:
        return ctx.clock.now()
    return datetime.fromtimestamp(int(mtime), UTC)


async def services(request: web.Request) -> web.Response:
    ctx, lang = _ctx(request), language(request)
    body: list[Value] = [service(ctx.district, c, lang) for c in ctx.district.categories.values()]
    return respond(request.match_info["fmt"], "services", body)


async def service_definition(request: web.Request) -> web.Response:
    ctx, lang = _ctx(request), language(request)
    code = request.match_info["code"]
    category = ctx.district.categories.get(code)
    if category is None:
        raise not_found("unknown_service_code", service_code=code[:64])
    return respond(request.match_info["fmt"], "service_definition", definition(category, lang))


async def create_request(request: web.Request) -> web.Response:
    ctx, lang = _ctx(request), language(request)
    if (request.content_length or 0) > MAX_BODY:
        raise Open311Error(413, "open311.error.too_large")
    form = await request.post()
    params = {k: v for k, v in request.query.items()}
    params |= {k: v for k, v in form.items() if isinstance(v, str)}
    api_key = params.pop(API_KEY, "").strip() or request.headers.get(API_KEY_HEADER, "").strip()
    if not api_key:
        raise forbidden("api_key_missing")
    client = await _client(ctx, api_key)
    if not client.can_write:
        raise forbidden("api_key_read_only")
    sub = read_submission(params, ctx.district, ctx.locator)
    done = await submit(ctx, client, sub, lang)
    body: list[Value] = [
        {"service_request_id": done.number, "token": done.token, "service_notice": done.notice}
    ]
    return respond(
        request.match_info["fmt"], "service_requests", body, status=201 if done.created else 200
    )


async def _client(ctx: AppContext, api_key: str) -> Open311Client:
    """The client whose key this is; a wrong or revoked key is refused (403)."""
    async with ctx.sessionmaker() as session:
        client = await authenticate(session, api_key)
    if client is None:
        raise forbidden("api_key_invalid")
    return client


async def _grid(request: web.Request, ctx: AppContext) -> Grid | None:
    """How points are published to this reader: on the district's grid, or exactly (None) to
    a client allowed it. A key that is sent must be right, so a client never mistakes
    snapped points for exact ones."""
    api_key = request.headers.get(API_KEY_HEADER, "").strip()
    if api_key and (await _client(ctx, api_key)).exact_location:
        return None
    return Grid(ctx.district.privacy.open311_location_precision_m)


async def list_requests(request: web.Request) -> web.Response:
    ctx, lang = _ctx(request), language(request)
    query = request_query(request.query, now=ctx.clock.now(), tz=ctx.district.tz)
    grid = await _grid(request, ctx)
    async with ctx.sessionmaker() as session:
        found = await find_requests(session, query)
        body: list[Value] = [
            service_request(
                ctx.district, case, lang, ctx.district.tz, grid, original=original or None
            )
            for case, original in found
        ]
    return respond(request.match_info["fmt"], "service_requests", body)


async def one_request(request: web.Request) -> web.Response:
    ctx, lang = _ctx(request), language(request)
    number = request.match_info["id"]
    grid = await _grid(request, ctx)
    async with ctx.sessionmaker() as session:
        found = await find_requests(session, RequestQuery(numbers=(number,)))
        if not found:
            raise not_found("unknown_request", id=number[:40])
        case, original = found[0]
        body: list[Value] = [
            service_request(
                ctx.district, case, lang, ctx.district.tz, grid, original=original or None
            )
        ]
    return respond(request.match_info["fmt"], "service_requests", body)


async def token(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    value = request.match_info["token"]
    case = None
    if is_token(value):
        async with ctx.sessionmaker() as session:
            case = await case_by_idempotency_key(session, TOKEN_PREFIX + value)
    if case is None:
        raise not_found("unknown_token", token=value[:40])
    body: list[Value] = [{"service_request_id": case.number, "token": value}]
    return respond(request.match_info["fmt"], "service_requests", body)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal as the spec's errors list, in the format and language asked for."""
    try:
        return await handler(request)
    except Open311Error as exc:
        status, key, params = exc.status, exc.key, exc.params
    except web.HTTPRequestEntityTooLarge:
        status, key, params = 413, "open311.error.too_large", {}
    lang = language(request)
    values = {k: v(lang) if callable(v) else v for k, v in params.items()}
    values = {k: shown(v) if isinstance(v, str) else v for k, v in values.items()}
    body: list[Value] = [{"code": status, "description": plain(lang, key, **values)}]
    return respond(format_of(request.path), "errors", body, status=status)


@web.middleware
async def _no_key_in_url(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A key in the URL is refused before anything else: it is already in some log."""
    if API_KEY in request.query:
        raise bad_request("api_key_in_url", header=API_KEY_HEADER)
    return await handler(request)


async def no_such_path(request: web.Request) -> web.Response:
    raise not_found("no_such_path", method=request.method)


def make_app(ctx: AppContext | ContextSource) -> web.Application:
    """The API for one running bot: cases are created and announced through `ctx`."""
    app = web.Application(middlewares=[_errors, _no_key_in_url])
    app[SOURCE_KEY] = ctx if isinstance(ctx, ContextSource) else ContextSource(ctx)
    app.router.add_get(f"/discovery.{FMT}", discovery)
    app.router.add_get(f"/services.{FMT}", services)
    app.router.add_get(f"/services/{{code}}.{FMT}", service_definition)
    app.router.add_get(f"/requests.{FMT}", list_requests)
    app.router.add_post(f"/requests.{FMT}", create_request)
    app.router.add_get(f"/requests/{{id}}.{FMT}", one_request)
    app.router.add_get(f"/tokens/{{token}}.{FMT}", token)
    app.router.add_route("*", "/{tail:.*}", no_such_path)
    return app
