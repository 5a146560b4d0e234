"""The HTTP gateway: routes, errors, OpenAPI, metrics and access logs.

Every route but the probes (``/healthz``, ``/readyz``, ``/v2/health/live``,
``/v2/health/ready``) and ``/metrics`` needs an API key (deny by default: a route is
public only if it is listed in :data:`PUBLIC`); a public probe says ready or not and
nothing more, its details are for admin keys.
Bodies are read and checked by :mod:`strataml.serving._bodies` (413, 400, 422), then
against the model's signature (422 naming the field). Errors are JSON:
``{"error": {"status", "type", "message", "hint", "details"}, "request_id"}``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from strataml.errors import ConfigError, IntegrityError, NotFound, StrataError, UnsafePath
from strataml.serving import _oip as oip
from strataml.serving._auth import ApiKey, AuthError
from strataml.serving._bodies import BadRequest, BodyReader, PayloadTooLarge
from strataml.serving._continuity import ModelUnservable, PredictionFailed
from strataml.serving._gateway import Gateway, GatewayConfig, RateLimited
from strataml.serving._openapi import openapi_document
from strataml.serving._resilience import DeadlineExceeded, Overloaded, Unavailable
from strataml.serving._servable import InputError, ModelProvider
from strataml.spine import Workspace, check_name

PUBLIC = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})
_RID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
access_log = logging.getLogger("strataml.serving.access")
log = logging.getLogger("strataml.serving")


def _status(exc: BaseException) -> int:
    if isinstance(exc, AuthError):
        return exc.status
    for kind, status in (
        (RateLimited, 429), (PayloadTooLarge, 413), (BadRequest, 400), (InputError, 422), (ConfigError, 422),
        (NotFound, 404), (UnsafePath, 404), (Overloaded, 503), (PredictionFailed, 503), (Unavailable, 503), (DeadlineExceeded, 504),
        (ModelUnservable, 503), (IntegrityError, 500), (ClientDisconnect, 408),  # an integrity error's message names a server path: logged, not answered
    ):
        if isinstance(exc, kind):
            return status
    if isinstance(exc, StrataError):
        return 409
    return 500


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY, default=str), status, headers, media_type="application/json")


def error_response(exc: BaseException, request_id: str) -> Response:
    """The JSON error body for ``exc`` with its HTTP status."""
    status = _status(exc)
    if status == 500:
        log.error("unexpected error in request %s", request_id, exc_info=exc, extra={"fields": {"request_id": request_id}})
        err = {"status": 500, "type": "InternalError", "message": "internal error; the request id is in the gateway's log", "hint": None}
    else:
        err = {"status": status, "type": type(exc).__name__, "message": getattr(exc, "message", str(exc)), "hint": getattr(exc, "hint", None)}
        if isinstance(exc, InputError) and exc.errors:
            err["details"] = exc.errors
    headers = {"x-request-id": request_id}
    if isinstance(exc, RateLimited | Unavailable):
        headers["retry-after"] = str(max(1, int(exc.retry_after + 0.999)))
    if isinstance(exc, AuthError) and status == 401:
        headers["www-authenticate"] = 'Bearer realm="strata"'
    return json_response({"error": err, "request_id": request_id}, status, headers)


def missing_features(missing: dict[int, list[str]]) -> list[dict[str, Any]]:
    """An answer's ``missing_features``: each instance whose entity the store does not know, with the features it lacked."""
    return [{"instance": i, "features": f} for i, f in sorted(missing.items())]


@dataclass(slots=True)
class AwaitingLog:
    """A handler's answer that may be sent once ``flushed`` (the prediction log's flush of
    its records) is done: awaited by :meth:`HttpGateway.run`, near the top of the call
    chain, so that the flush resumes two frames rather than every one down to the log."""

    doc: Any
    flushed: asyncio.Future[None]


class HttpGateway:
    """Binds a :class:`Gateway` to Starlette routes."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.cfg = gw.config
        self.bodies = BodyReader(gw.config)
        self._rid_prefix = uuid.uuid4().hex[:16]
        self._rid_counter = itertools.count(1)
        self._series: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}

    # --- plumbing --------------------------------------------------------------------

    def request_id(self, given: str | None) -> str:
        """The client's ``X-Request-ID`` when well-formed, else a fresh id (process prefix + counter)."""
        if given and _RID.fullmatch(given):
            return given
        return f"{self._rid_prefix}{next(self._rid_counter):08x}"

    def client_ip(self, peer: str, fwd: str | None) -> str:
        """The caller's address (``peer``); ``X-Forwarded-For`` (``fwd``) counts only from a configured proxy."""
        if fwd and peer in self.cfg.trusted_proxies:
            hops = [h.strip() for h in fwd.split(",") if h.strip()]
            for hop in reversed(hops):
                if hop not in self.cfg.trusted_proxies:
                    return hop
        return peer

    async def read_json(self, request: Request) -> Any:
        """The request's body parsed as JSON (see :meth:`BodyReader.parse`)."""
        return await self.bodies.parse(request.headers.get("content-length"), request.stream())


    def _name(self, request: Request) -> str:
        return self._checked_name(request.path_params["name"])

    @staticmethod
    def _checked_name(name: str) -> str:
        try:
            return check_name(name, "model name")
        except UnsafePath:
            raise NotFound(f"no model named {name[:130]!r}", hint="GET /v1/models lists the models you may use") from None

    async def handle(
        self, request: Request, route: str, scope: Callable[[Request], str] | None,
        body: Callable[[Request, str, ApiKey | None], Awaitable[tuple[Any, dict[str, str]]]],
    ) -> Response:
        """Run one request through admission, auth and the handler, with metrics and an access log."""
        t0 = time.perf_counter()
        headers = request.headers
        rid = self.request_id(headers.get("x-request-id"))
        out, labels, key_id = await self.run(rid, headers.get("authorization"), scope(request) if scope else None, functools.partial(body, request, rid))
        resp = out if isinstance(out, Response) else json_response(out, headers={"x-request-id": rid})
        self.account(route, labels, resp.status_code, t0, rid, request.method, request.client.host if request.client else "-", headers.get("x-forwarded-for"), key_id)
        return resp

    async def run(
        self, rid: str, authorization: str | None, scope: str | None,
        body: Callable[[ApiKey | None], Awaitable[tuple[Any, dict[str, str]]]],
    ) -> tuple[Any, dict[str, str], str | None]:
        """Admission, auth for ``scope`` (None: public) and the handler ``body``: its
        document (or a Response, errors included), metric labels and the key id."""
        labels = {"model": "-", "version": "-"}
        key_id = None
        gw = self.gw
        try:
            gw.admission.enter()
            if gw.count_inflight:
                gw.metrics.inflight.inc()
            try:
                key = None
                if scope is not None:
                    key = gw.authorize(authorization, scope)
                    key_id = key.id
                doc, labels_upd = await body(key)
                labels.update(labels_upd)
                if type(doc) is AwaitingLog:  # answered once its predictions are on disk
                    await doc.flushed
                    doc = doc.doc
            finally:
                gw.admission.leave()
                if gw.count_inflight:
                    gw.metrics.inflight.dec()
            return doc, labels, key_id
        except Exception as exc:
            if isinstance(exc, Overloaded):
                gw.metrics.overloaded.inc()
            resp = error_response(exc, rid)
            gw.errors.record(rid, scope, labels, resp.status_code, type(exc).__name__)
            return resp, labels, key_id

    def account(
        self, route: str, labels: dict[str, str], status_code: int, t0: float, rid: str, method: str, peer: str, fwd: str | None, key_id: str | None,
    ) -> None:
        """Record one answered request in the latency and request metrics and the access log."""
        status = str(status_code)
        elapsed = time.perf_counter() - t0
        series = (route, labels["model"], labels["version"], status)
        children = self._series.get(series)
        if children is None:
            m = self.gw.metrics
            children = (m.latency.labels(*series), m.requests.labels(*series))
            if len(self._series) < 10_000:  # beyond that many series, each request updates Prometheus itself
                children = (m.tally(children[0]), m.tally(children[1]))
                self._series[series] = children
        children[0].observe(elapsed)
        children[1].inc()
        if self.cfg.log_requests and access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request", extra={"fields": {
                    "request_id": rid, "route": route, "method": method, "status": status_code,
                    "latency_ms": round(elapsed * 1000, 3), "client": self.client_ip(peer, fwd), "key_id": key_id, **labels,
                }},
            )

    async def predict_asgi(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        """``POST /v1/models/{name}/predict`` on raw ASGI messages: the same steps as the
        route, without Starlette's request and response objects, whose header and body
        plumbing cost more than the gateway's own bookkeeping."""
        t0 = time.perf_counter()
        headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))  # the first of repeated headers wins, as in Starlette
        given = headers.get(b"x-request-id")
        rid = self.request_id(given.decode("latin-1") if given is not None else None)
        auth = headers.get(b"authorization")
        declared = headers.get(b"content-length")

        read = functools.partial(self.bodies.receive, declared.decode("latin-1") if declared is not None else None, receive)
        out, labels, key_id = await self.run(rid, auth.decode("latin-1") if auth is not None else None, f"predict:{name}", functools.partial(self._predict, name, rid, read))
        if isinstance(out, Response):
            status = out.status_code
            await out(scope, receive, send)
        else:
            status = 200
            payload = orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), (b"x-request-id", rid.encode()),
            ]})
            await send({"type": "http.response.body", "body": payload})
        client = scope.get("client")
        fwd = headers.get(b"x-forwarded-for")
        self.account("v1.predict", labels, status, t0, rid, "POST", client[0] if client else "-", fwd.decode("latin-1") if fwd is not None else None, key_id)

    # --- routes ----------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready or not; the checks behind the answer only for an admin key."""
        doc = await self.gw.ready()
        admin = False
        if request.headers.get("authorization"):
            try:
                self.gw.authorize(request.headers.get("authorization"), "admin")
                admin = True
            except AuthError:
                pass
        out: dict[str, Any] = {"status": doc["status"]}
        if admin:
            out.update(checks=doc["checks"], draining=doc["draining"])
        if doc["status"] == "ready":
            return json_response(out)
        rid = self.request_id(request.headers.get("x-request-id"))
        err = {"status": 503, "type": "NotReady", "message": "the gateway is not ready", "hint": "an admin key sees the failing checks" if not admin else None}
        return json_response({**out, "error": err, "request_id": rid}, 503, {"x-request-id": rid})

    async def live_v2(self, request: Request) -> Response:
        """``GET /v2/health/live`` (Open Inference Protocol)."""
        return json_response({"live": True})

    async def ready_v2(self, request: Request) -> Response:
        """``GET /v2/health/ready``: 200 when ready, else 503."""
        ready = (await self.gw.ready())["status"] == "ready"
        if ready:
            return json_response({"ready": True})
        rid = self.request_id(request.headers.get("x-request-id"))
        err = {"status": 503, "type": "NotReady", "message": "the gateway is not ready", "hint": "GET /readyz with an admin key shows the failing checks"}
        return json_response({"ready": False, "error": err, "request_id": rid}, 503, {"x-request-id": rid})

    async def server_metadata(self, request: Request) -> Response:
        """``GET /v2``: the server's name, version and protocol extensions."""
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            return {"name": "strataml", "version": openapi_document()["info"]["version"], "extensions": oip.EXTENSIONS}, {}

        return await self.handle(request, "v2.server", lambda r: "", body)

    async def model_ready(self, request: Request) -> Response:
        """``GET /v2/models/{name}/ready``: 200 when the champion loads, 503 when it cannot be served."""
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            name = self._name(r)
            s = await self.gw.servable(name, self.gw.deployment(name).champion)
            return {"name": name, "ready": True, "version": str(s.version)}, {"model": name}

        return await self.handle(request, "v2.ready", self._predict_scope, body)

    async def metrics(self, request: Request) -> Response:
        from strataml.serving._metrics import CONTENT_TYPE

        self.gw.sync_metrics()
        return Response(self.gw.metrics.render(), 200, media_type=CONTENT_TYPE)

    async def openapi(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            return openapi_document(), {}

        return await self.handle(request, "openapi", lambda r: "", body)

    async def models(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            assert key is not None
            return {"models": self.gw.list_models(key)}, {}

        return await self.handle(request, "v1.models", lambda r: "", body)

    async def _predict(self, raw_name: str, rid: str, read: Callable[[], Awaitable[Any]], key: ApiKey | None) -> tuple[Any, dict[str, str]]:
        assert key is not None  # the route needs a key
        name = self._checked_name(raw_name)
        tr = self.gw.deployment(name)
        pending = self.gw.rate_limit(key, name, tr)  # before the body is read: a refused caller costs little
        if pending is not None:  # a network rate-limit store, asked off the loop
            await pending
        instances = self.bodies.instances(await read())
        res, logged = await self.gw.predict_logging(name, instances, key, rid, "v1.predict", tr)
        doc: dict[str, Any] = {"model": res.model, "version": res.version, "predictions": res.predictions, "request_id": rid, "degraded": res.degraded}
        if res.degraded:
            doc["fallback"] = res.fallback
        if res.missing is not None:
            doc["missing_features"] = missing_features(res.missing)
        return (doc if logged is None else AwaitingLog(doc, logged)), {"model": name, "version": str(res.version)}

    async def infer(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            assert key is not None
            name = self._name(r)
            tr = self.gw.deployment(name)
            pending = self.gw.rate_limit(key, name, tr)
            if pending is not None:
                await pending
            raw = await self.bodies.read(r.headers.get("content-length"), r.stream())
            doc = oip.decode_request(raw, r.headers.get("inference-header-content-length"), self.bodies.decode)
            champion = await self.gw.servable(name, tr.champion)
            instances, client_id = self.bodies.infer_instances(doc, [i["name"] for i in oip.request_inputs(champion)])
            res = await self.gw.predict(name, instances, key, rid, "v2.infer", tr)
            preds = res.predictions
            if preds and isinstance(preds[0], dict):
                labels = list(preds[0])
                data = [p[c] for p in preds for c in labels]
                out = {"name": "predictions", "datatype": "FP64", "shape": [len(preds), len(labels)], "data": data, "parameters": {"classes": labels}}
            else:
                out = {"name": "predictions", "datatype": "FP64", "shape": [len(preds)], "data": preds}
            params: dict[str, Any] = {"request_id": rid, "degraded": res.degraded}
            if res.missing is not None:
                params["missing_features"] = missing_features(res.missing)
            resp = {"model_name": res.model, "model_version": str(res.version), "id": client_id or rid, "outputs": [out], "parameters": params}
            series = {"model": name, "version": str(res.version)}
            if not oip.wants_binary(doc):
                return resp, series
            payload, headers = oip.encode_response(resp, True)
            return Response(payload, 200, {**headers, "x-request-id": rid}), series

        return await self.handle(request, "v2.infer", self._predict_scope, body)

    async def model_metadata(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            name = self._name(r)
            s = await self.gw.servable(name, self.gw.deployment(name).champion)
            return oip.model_metadata(name, s), {"model": name}

        return await self.handle(request, "v2.metadata", self._predict_scope, body)

    def _predict_scope(self, request: Request) -> str:
        return f"predict:{request.path_params['name']}"

    async def deployments(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            self.gw.traffic.refresh_if_changed()
            return {"deployments": {n: t.model_dump(mode="json") for n, t in self.gw.traffic.configured().items()}}, {}

        return await self.handle(request, "admin.deployments", lambda r: "admin", body)

    async def deployment(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            name = self._name(r)
            if r.method == "GET":
                return {"name": name, "traffic": self.gw.deployment(name).model_dump(mode="json")}, {"model": name}
            if r.method == "DELETE":
                old = self.gw.delete_traffic(name, f"deleted through the gateway by key {key.id if key else '-'}")
                return {"name": name, "deleted": True, "traffic": old.model_dump(mode="json")}, {"model": name}
            doc = await self.read_json(r)
            if not isinstance(doc, dict):
                raise InputError("the body must be an object of traffic settings")
            reason = doc.pop("reason", None)
            if reason is not None and not isinstance(reason, str):
                raise InputError("'reason' must be a string")
            new = self.gw.set_traffic(name, doc, r.method == "PUT", reason, key.id if key else "-")
            return {"name": name, "traffic": new.model_dump(mode="json")}, {"model": name}

        return await self.handle(request, "admin.traffic", lambda r: "admin", body)

    async def rollback(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            name = self._name(r)
            return self.gw.rollback(name, f"rollback through the gateway by key {key.id if key else '-'}"), {"model": name}

        return await self.handle(request, "admin.rollback", lambda r: "admin", body)

    def routes(self) -> list[Route]:
        """The route table."""
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/models/{name}/predict", PredictRoute(self), methods=["POST"]),
            Route("/v1/models/{name}/rollback", self.rollback, methods=["POST"]),
            Route("/v2", self.server_metadata, methods=["GET"]),
            Route("/v2/health/live", self.live_v2, methods=["GET"]),
            Route("/v2/health/ready", self.ready_v2, methods=["GET"]),
            Route("/v2/models/{name}", self.model_metadata, methods=["GET"]),
            Route("/v2/models/{name}/ready", self.model_ready, methods=["GET"]),
            Route("/v2/models/{name}/infer", self.infer, methods=["POST"]),
            Route("/v1/deployments", self.deployments, methods=["GET"]),
            Route("/v1/deployments/{name}", self.deployment, methods=["GET", "PUT", "PATCH", "DELETE"]),
        ]


class PredictRoute:
    """The route table's entry for ``POST /v1/models/{name}/predict``: an ASGI app (not a
    function, which Starlette would hand a Request) running :meth:`HttpGateway.predict_asgi`,
    the one predict handler, for a request that reaches it through the router."""

    __slots__ = ("http",)

    def __init__(self, http: HttpGateway) -> None:
        self.http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.http.predict_asgi(scope, receive, send, scope["path_params"]["name"])


class GatewayApp(Starlette):
    """The gateway's ASGI application.

    ``POST /v1/models/{name}/predict``, the busiest route, goes straight to its handler,
    past route matching and the error and exception middleware: the handler turns every
    error into its JSON answer itself. Under a root path (uvicorn's ``--root-path``, or a
    ``Mount``) the path is read below it, as the router reads it. Everything else (other
    routes, lifespan) goes through Starlette's router, whose predict route runs the same
    handler."""

    def __init__(self, http: HttpGateway, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            if path.startswith("/v1/models/") and path.endswith("/predict"):
                name = path[11:-8]
                if name and "/" not in name:
                    await self.http.predict_asgi(scope, receive, send, name)
                    return
        await super().__call__(scope, receive, send)



def create_app(
    ws: Workspace, models: ModelProvider | None = None, config: GatewayConfig | None = None, mounts: Sequence[BaseRoute] = (),
) -> Starlette:
    """The gateway as an ASGI application (``app.state.gateway`` holds its state).

    ``mounts`` are further routes (e.g. a ``Mount`` of another application under a
    prefix) added after the gateway's own; they handle their own authentication."""
    gw = Gateway(ws, models, config)
    http = HttpGateway(gw)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await gw.startup()
        try:
            yield
        finally:
            await gw.shutdown()

    app = GatewayApp(http, routes=[*http.routes(), *mounts], lifespan=lifespan)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        msg = "no such route" if status == 404 else "method not allowed on this route"
        headers = dict(getattr(exc, "headers", None) or {})  # a 405 names the allowed methods in Allow
        return json_response({"error": {"status": status, "type": "NotFound" if status == 404 else "MethodNotAllowed", "message": f"{msg}: {request.method} {request.url.path[:200]}", "hint": "GET /openapi.json (with a key) lists every route"}}, status, headers)

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    app.state.gateway = gw
    return app
