"""The dashboard's ASGI application: pages, their JSON, login, and the security headers.

Pages are rendered on the server by Jinja2 with autoescaping on for every template, so
a dataset, column, category, model, rule or alert text is always HTML-escaped; charts
are drawn in the browser by one small script per page that reads JSON from
``/ui/api/…``. Every response carries a Content-Security-Policy that allows scripts,
styles and requests from the dashboard's own origin only (no inline script or style),
so even a string that slipped past escaping could not run.

Every page and its JSON need a key with the ``read`` scope, sent as
``Authorization: Bearer`` or held by the browser's session cookie (see
:mod:`strataml.dashboard._session`). Catalog and log reads run in worker threads so
that, mounted inside ``strata serve``, the dashboard never stalls the gateway's loop.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strataml.dashboard import _loops
from strataml.dashboard import _observed as observed
from strataml.dashboard import _views as views
from strataml.dashboard._session import COOKIE, LIFETIME_S, Sessions
from strataml.errors import NotFound, StrataError, UnsafePath
from strataml.monitoring import prediction_lineage
from strataml.serving import ApiKey, AuthError
from strataml.spine import Workspace, check_name

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined,
)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


_env.filters["fmt"] = _fmt
_env.filters["pct"] = lambda v: "-" if v is None else f"{float(v) * 100:.1f}%"


class SecurityHeaders:
    """Adds the CSP and its companions to every response of the wrapped application."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in SECURITY_HEADERS if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)


Handler = Callable[[Request, ApiKey], Awaitable[Response]]


class Dashboard:
    """The dashboard's routes over one workspace."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.sessions = Sessions(ws)

    # --- plumbing ------------------------------------------------------------------------

    @staticmethod
    def base(request: Request) -> str:
        """The prefix the dashboard is mounted at (``/ui``)."""
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(self, request: Request, template: str, code: int = 200, **ctx: Any) -> HTMLResponse:
        """A page from ``templates/`` (autoescaped), never cached."""
        html = _env.get_template(template).render(base=self.base(request), path=request.url.path, **ctx)
        return HTMLResponse(html, code, headers={"cache-control": "no-store"})

    @staticmethod
    def json(doc: Any, status: int = 200) -> Response:
        """A JSON answer (NaN and infinities become null)."""
        body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str)
        return Response(body, status, media_type="application/json", headers={"cache-control": "no-store"})

    def guard(self, handler: Handler, *, api: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Authenticate, then run ``handler``; errors become a page (or JSON under ``/api``)."""

        async def endpoint(request: Request) -> Response:
            try:
                key = await run_in_threadpool(self.sessions.authenticate, request.headers.get("authorization"), request.cookies.get(COOKIE))
            except AuthError as exc:
                if api or request.headers.get("authorization") or exc.status != 401:
                    return self.error(request, exc, api)
                nxt = urllib.parse.quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="/")
                return RedirectResponse(f"{self.base(request)}/login?next={nxt}", 303)
            try:
                return await handler(request, key)
            except (StrataError, ValueError) as exc:
                return self.error(request, exc, api)

        return endpoint

    def error(self, request: Request, exc: Exception, api: bool) -> Response:
        """The error as JSON (``/api``) or as a page, with its HTTP status."""
        if isinstance(exc, AuthError):
            status = exc.status
        elif isinstance(exc, NotFound | UnsafePath):
            status = 404
        elif isinstance(exc, observed.MonitoringUnavailable):
            status = 503
        else:
            status = 400 if isinstance(exc, ValueError) else 409
        message, hint = getattr(exc, "message", str(exc)), getattr(exc, "hint", None)
        if api:
            return self.json({"error": {"status": status, "type": type(exc).__name__, "message": message, "hint": hint}}, status)
        headers = {"www-authenticate": 'Bearer realm="strata"'} if status == 401 else None
        resp = self.render(request, "error.html", status, title="Error", message=message, hint=hint, status=status)
        if headers:
            resp.headers.update(headers)
        return resp

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking read in a worker thread."""
        return await run_in_threadpool(functools.partial(fn, *args, **kwargs))

    @staticmethod
    def name(request: Request, what: str = "name") -> str:
        """A path parameter that must be a safe identifier (404 otherwise)."""
        raw = request.path_params["name"]
        try:
            return check_name(raw, what)
        except UnsafePath:
            raise NotFound(f"no {what.split()[0]} named {raw[:80]!r}") from None

    # --- login ---------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        nxt = request.query_params.get("next", "")
        if request.method == "GET":
            return self.render(request, "login.html", title="Log in", next=nxt, message=None)
        body = (await request.body())[:8192].decode("utf-8", "replace")
        form = urllib.parse.parse_qs(body)
        key_text = (form.get("key") or [""])[0]
        nxt = (form.get("next") or [nxt])[0]
        try:
            _, cookie = await run_in_threadpool(self.sessions.login, key_text)
        except AuthError as exc:
            return self.render(request, "login.html", exc.status, title="Log in", next=nxt, message=exc.message)
        base = self.base(request)
        # only a path inside the dashboard: never an open redirect
        target = nxt if nxt.startswith(f"{base}/") and not nxt.startswith("//") and "\\" not in nxt else f"{base}/"
        resp = RedirectResponse(target, 303)
        resp.set_cookie(COOKIE, cookie, max_age=LIFETIME_S, path=f"{base}/" if base else "/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
        return resp

    async def logout(self, request: Request) -> Response:
        base = self.base(request)
        resp = RedirectResponse(f"{base}/login", 303)
        resp.delete_cookie(COOKIE, path=f"{base}/" if base else "/", httponly=True, samesite="strict")
        return resp

    # --- pages ---------------------------------------------------------------------------

    async def index(self, request: Request, key: ApiKey) -> Response:
        def gather() -> dict[str, Any]:
            alerts: list[dict[str, Any]] | None
            try:
                alerts = observed.alerts(self.ws, state="firing")
            except observed.MonitoringUnavailable:
                alerts = None
            return {"datasets": views.datasets(self.ws), "models": views.models(self.ws),
                    "deployments": views.deployments(self.ws), "events": views.events(self.ws, 15), "alerts": alerts}

        return self.render(request, "index.html", title="Overview", **await self.call(gather))

    async def datasets(self, request: Request, key: ApiKey) -> Response:
        return self.render(request, "datasets.html", title="Datasets", datasets=await self.call(views.datasets, self.ws))

    async def dataset(self, request: Request, key: ApiKey) -> Response:
        d = await self.call(views.dataset, self.ws, self.name(request, "dataset name"))
        return self.render(request, "dataset.html", title=f"Dataset {d['name']}", d=d)

    async def models(self, request: Request, key: ApiKey) -> Response:
        return self.render(request, "models.html", title="Models", models=await self.call(views.models, self.ws))

    async def model(self, request: Request, key: ApiKey) -> Response:
        m = await self.call(views.model, self.ws, self.name(request, "model name"))
        return self.render(request, "model.html", title=f"Model {m['name']}", m=m)

    async def deployments(self, request: Request, key: ApiKey) -> Response:
        return self.render(request, "deployments.html", title="Deployments", deployments=await self.call(views.deployments, self.ws))

    def _window(self, request: Request, name: str, default: str) -> str:
        v = request.query_params.get(name, default)
        if not (1 < len(v) <= 8 and v[:-1].isdigit() and v[-1] in "smhd"):
            raise StrataError(f"invalid {name} {v[:20]!r}", hint="use a number and a unit: 30s, 5m, 1h, 7d")
        return v

    async def deployment(self, request: Request, key: ApiKey) -> Response:
        name = self.name(request, "deployment name")
        window, bucket = self._window(request, "window", "1h"), self._window(request, "bucket", "1m")

        def gather() -> dict[str, Any]:
            slo, unavailable = None, None
            try:
                slo = observed.slo(self.ws, name, window, bucket)
            except observed.MonitoringUnavailable as exc:
                unavailable = exc.message
            traffic = next((d["traffic"] for d in views.deployments(self.ws) if d["name"] == name), None)
            return {"slo": slo, "unavailable": unavailable, "traffic": traffic, "recent": views.recent_predictions(self.ws, name)}

        return self.render(request, "deployment.html", title=f"Deployment {name}", name=name, window=window, bucket=bucket, **await self.call(gather))

    async def drift(self, request: Request, key: ApiKey) -> Response:
        name = self.name(request, "model name")
        since = self._since(request)
        try:
            report = await self.call(observed.drift, self.ws, name, since)
        except observed.MonitoringUnavailable as exc:
            return self.render(request, "unavailable.html", title=f"Drift of {name}", message=exc.message)
        return self.render(request, "drift.html", title=f"Drift of {name}", name=name, r=report, since=since or "")

    def _since(self, request: Request) -> str | None:
        return self._window(request, "since", "") if request.query_params.get("since") else None

    async def quality(self, request: Request, key: ApiKey) -> Response:
        name = self.name(request, "model name")
        labels = request.query_params.get("labels") or await self.call(self._labels_of, name)
        try:
            q = await self.call(observed.quality, self.ws, name, labels, self._by(request)) if labels else None
        except observed.MonitoringUnavailable as exc:
            return self.render(request, "unavailable.html", title=f"Quality of {name}", message=exc.message)
        return self.render(request, "quality.html", title=f"Quality of {name}", name=name, labels=labels, q=q, by=self._by(request))

    @staticmethod
    def _by(request: Request) -> str:
        by = request.query_params.get("by", "hour")
        if by not in ("hour", "day"):
            raise StrataError(f"invalid 'by' {by[:20]!r}", hint="hour or day")
        return by

    def _labels_of(self, name: str) -> str | None:
        """The labels dataset a model declares, else the one its newest version was trained on."""
        m = next((x for x in self.ws.definitions.all("model") if x.name == name), None)
        labels = getattr(m, "labels", None)
        if isinstance(labels, str):
            return labels
        versions = views.model(self.ws, name)["versions"]
        trained = versions[-1]["lineage"].get("labels") if versions else None
        return str(trained).split("@", 1)[0] if trained else None

    async def events(self, request: Request, key: ApiKey) -> Response:
        kind = request.query_params.get("kind") or None

        def gather() -> dict[str, Any]:
            alerts: list[dict[str, Any]] | None
            try:
                alerts = observed.alerts(self.ws)
            except observed.MonitoringUnavailable:
                alerts = None
            return {"events": views.events(self.ws, 300, kind), "alerts": alerts}

        return self.render(request, "events.html", title="Events", kind=kind, **await self.call(gather))

    async def loops(self, request: Request, key: ApiKey) -> Response:
        return self.render(request, "loops.html", title="Loops", d=await self.call(_loops.loops, self.ws))

    async def loop(self, request: Request, key: ApiKey) -> Response:
        d = await self.call(_loops.loop, self.ws, request.path_params["id"])
        run = d["run"]
        return self.render(request, "loop.html", title=f"Loop of {run['model']} v{run['canary_version']}", d=d)

    async def api_loop(self, request: Request, key: ApiKey) -> Response:
        return self.json(await self.call(_loops.loop_chart, self.ws, request.path_params["id"]))

    async def lineage(self, request: Request, key: ApiKey) -> Response:
        rid = request.query_params.get("request_id", "").strip()
        lin = await self.call(prediction_lineage, self.ws, rid) if rid else None
        return self.render(request, "lineage.html", title="Prediction lineage", request_id=rid, lin=lin)

    # --- JSON for the charts ---------------------------------------------------------------

    async def api_dataset(self, request: Request, key: ApiKey) -> Response:
        return self.json(await self.call(views.dataset_chart, self.ws, self.name(request, "dataset name")))

    async def api_model(self, request: Request, key: ApiKey) -> Response:
        return self.json(await self.call(views.model_chart, self.ws, self.name(request, "model name")))

    async def api_events(self, request: Request, key: ApiKey) -> Response:
        evts = await self.call(views.events, self.ws, 300, request.query_params.get("kind") or None)
        return self.json(views.events_chart(evts))

    async def api_slo(self, request: Request, key: ApiKey) -> Response:
        name = self.name(request, "deployment name")
        window, bucket = self._window(request, "window", "1h"), self._window(request, "bucket", "1m")
        return self.json(await self.call(observed.slo, self.ws, name, window, bucket))

    async def api_drift(self, request: Request, key: ApiKey) -> Response:
        return self.json(await self.call(observed.drift, self.ws, self.name(request, "model name"), self._since(request)))

    async def api_distribution(self, request: Request, key: ApiKey) -> Response:
        name = self.name(request, "model name")
        column = request.query_params.get("column")
        if not column:
            raise StrataError("which input? pass ?column=NAME", hint="the drift page passes the feature clicked")
        return self.json(await self.call(observed.distributions, self.ws, name, column, self._since(request)))

    async def api_quality(self, request: Request, key: ApiKey) -> Response:
        name = self.name(request, "model name")
        labels = request.query_params.get("labels") or await self.call(self._labels_of, name)
        if not labels:
            raise StrataError(f"model {name!r} declares no labels dataset", hint="pass ?labels=DATASET")
        return self.json(await self.call(observed.quality, self.ws, name, labels, self._by(request)))

    def routes(self) -> list[BaseRoute]:
        """The route table (relative to the mount point)."""
        g, a = self.guard, functools.partial(self.guard, api=True)
        return [
            Route("/", g(self.index)),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/datasets", g(self.datasets)),
            Route("/datasets/{name}", g(self.dataset)),
            Route("/models", g(self.models)),
            Route("/models/{name}", g(self.model)),
            Route("/deployments", g(self.deployments)),
            Route("/deployments/{name}", g(self.deployment)),
            Route("/drift/{name}", g(self.drift)),
            Route("/quality/{name}", g(self.quality)),
            Route("/events", g(self.events)),
            Route("/lineage", g(self.lineage)),
            Route("/loops", g(self.loops)),
            Route("/loops/{id}", g(self.loop)),
            Route("/api/loops/{id}", a(self.api_loop)),
            Route("/api/datasets/{name}", a(self.api_dataset)),
            Route("/api/models/{name}", a(self.api_model)),
            Route("/api/events", a(self.api_events)),
            Route("/api/deployments/{name}/slo", a(self.api_slo)),
            Route("/api/drift/{name}", a(self.api_drift)),
            Route("/api/drift/{name}/distribution", a(self.api_distribution)),
            Route("/api/quality/{name}", a(self.api_quality)),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]


def dashboard_mounts(ws: Workspace) -> list[BaseRoute]:
    """The dashboard mounted at ``/ui``, for :func:`strataml.serving.create_app`'s ``mounts``."""
    return [Mount("/ui", app=create_dashboard(ws))]


def create_dashboard(ws: Workspace) -> ASGIApp:
    """The dashboard as an ASGI application, to be mounted at ``/ui``."""
    d = Dashboard(ws)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return d.render(request, "error.html", status, title="Not found", status=status, message=f"no page at {request.url.path[:200]}", hint=None)

    app = Starlette(routes=d.routes(), exception_handlers={404: not_found, 405: not_found})
    app.state.dashboard = d
    return SecurityHeaders(app)


def standalone_app(ws: Workspace) -> Starlette:
    """The dashboard alone (``strata ui``): mounted at ``/ui``, with ``/`` leading there."""

    async def home(request: Request) -> Response:
        return RedirectResponse("/ui/", 307)

    return Starlette(routes=[Route("/", home), Mount("/ui", app=create_dashboard(ws))])
