"""The HTTP gateway: routes, request parsing and validation, errors, OpenAPI, logs.

Every route but ``/healthz``, ``/readyz`` and ``/metrics`` needs an API key
(deny by default: a route is public only if it is listed in :data:`PUBLIC`).
Bodies are read in bounded chunks (413 beyond the limit), parsed with orjson (400 for
invalid or too deeply nested JSON), checked for shape (422) and then against the
model's signature (422 naming the field). Errors are JSON:
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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from strataml.errors import ConfigError, NotFound, StrataError, UnsafePath
from strataml.serving.auth import ApiKey, AuthError
from strataml.serving.gateway import Gateway, GatewayConfig, PredictionFailed, RateLimited
from strataml.serving.openapi import openapi_document
from strataml.serving.resilience import DeadlineExceeded, Overloaded
from strataml.serving.servable import InputError, ModelProvider
from strataml.spine.paths import check_name
from strataml.spine.workspace import Workspace

PUBLIC = frozenset({"/healthz", "/readyz", "/metrics"})
_RID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_SCALARS = (str, int, float, bool, type(None))
access_log = logging.getLogger("strataml.serving.access")
log = logging.getLogger("strataml.serving")


class BadRequest(StrataError):
    """The body is not valid JSON or is nested too deeply (HTTP 400)."""


class PayloadTooLarge(StrataError):
    """The body exceeds the gateway's limit (HTTP 413)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per log line (request fields come from ``extra={"fields": …}``)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def _status(exc: BaseException) -> int:
    if isinstance(exc, AuthError):
        return exc.status
    for kind, status in (
        (RateLimited, 429), (PayloadTooLarge, 413), (BadRequest, 400), (InputError, 422), (ConfigError, 422),
        (NotFound, 404), (UnsafePath, 404), (Overloaded, 503), (PredictionFailed, 503), (DeadlineExceeded, 504),
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
    if isinstance(exc, RateLimited):
        headers["retry-after"] = str(max(1, int(exc.retry_after + 0.999)))
    if isinstance(exc, AuthError) and status == 401:
        headers["www-authenticate"] = 'Bearer realm="strata"'
    return json_response({"error": err, "request_id": request_id}, status, headers)


def _too_deep(obj: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict):
            if d >= limit:
                return True
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            if d >= limit:
                return True
            stack.extend((v, d + 1) for v in o)
    return False


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
        """The request's body parsed as JSON (see :meth:`parse_json`)."""
        return await self.parse_json(request.headers.get("content-length"), request.stream())

    def _too_large(self, declared: str | None = None) -> PayloadTooLarge:
        size = f" of {declared} bytes" if declared is not None else ""
        return PayloadTooLarge(f"request body{size} exceeds the limit of {self.cfg.max_body_bytes} bytes", hint="split the instances over several requests")

    def _check_declared(self, declared: str | None) -> None:
        if declared is not None and (not declared.isdigit() or int(declared) > self.cfg.max_body_bytes):
            raise self._too_large(declared)

    async def parse_json(self, declared: str | None, stream: AsyncIterator[bytes]) -> Any:
        """A body of ``declared`` length (``Content-Length``) read from ``stream`` in bounded
        chunks and parsed: 413 beyond the limit, 400 for invalid or too deeply nested JSON."""
        self._check_declared(declared)
        limit = self.cfg.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in stream:  # the server stops reading at a declared length, which is within the limit
            size += len(chunk)
            if size > limit:
                raise self._too_large()
            chunks.append(chunk)
        return self.decode_json(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    async def receive_json(self, declared: str | None, receive: Receive) -> Any:
        """:meth:`parse_json` on raw ASGI messages; a body that came in one message (the
        usual case) is parsed without iterating over chunks."""
        self._check_declared(declared)
        first = await receive()
        if first["type"] == "http.request" and not first.get("more_body", False):
            body = first.get("body", b"")
            if len(body) > self.cfg.max_body_bytes:
                raise self._too_large()
            return self.decode_json(body)
        return await self.parse_json(None, _body_chunks(receive, first))

    def decode_json(self, body: bytes) -> Any:
        """A whole request body parsed as JSON: 400 when empty, invalid or nested too deeply."""
        if not body:
            raise BadRequest("the request body is empty", hint='send JSON such as {"instances": [{...}]}')
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}", hint="send UTF-8 JSON") from None
        if body.count(b"[") + body.count(b"{") > self.cfg.max_depth and _too_deep(doc, self.cfg.max_depth):
            raise BadRequest(f"the request body is nested more than {self.cfg.max_depth} levels deep", hint="send flat instances")
        return doc

    def instances(self, doc: Any) -> list[dict[str, Any]]:
        """The instances of a v1 body, with a 422 naming any shape problem."""
        if not isinstance(doc, dict):
            raise InputError("the body must be a JSON object with an 'instances' list", hint='{"instances": [{"feature": 1.0}]}')
        if (len(doc) != 1 or "instances" not in doc) and (extra := set(doc) - {"instances"}):
            raise InputError(f"unknown field(s) in the body: {', '.join(sorted(map(str, extra)))[:200]}", hint="only 'instances' is accepted")
        inst = doc.get("instances")
        if not isinstance(inst, list) or not inst:
            raise InputError("'instances' must be a non-empty list of objects", hint='{"instances": [{"feature": 1.0}]}')
        if len(inst) > self.cfg.max_instances:
            raise InputError(f"{len(inst)} instances exceed the limit of {self.cfg.max_instances} per request", hint="split the request")
        for i, row in enumerate(inst):
            if not isinstance(row, dict):
                raise InputError(f"instance {i} must be an object of feature values, got {type(row).__name__}")
            for k, v in row.items():
                if not isinstance(v, _SCALARS):
                    raise InputError(f"instance {i}: field {k!r} must be a number, string, boolean or null, got {type(v).__name__}", errors=[{"instance": i, "field": k, "problem": "not a scalar"}])
        return inst

    def infer_instances(self, doc: Any, names: list[str]) -> tuple[list[dict[str, Any]], str | None]:
        """Rows from an Open Inference Protocol v2 body (one tensor per feature, or one [N, F] tensor)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
            raise InputError("the body must be an object with a non-empty 'inputs' list of tensors", hint='{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [0.5]}]}')
        rid = doc.get("id")
        if rid is not None and not isinstance(rid, str):
            raise InputError("'id' must be a string")
        tensors: dict[str, list[Any]] = {}
        for j, t in enumerate(doc["inputs"]):
            if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(t.get("shape"), list) or not isinstance(t.get("data"), list) or not isinstance(t.get("datatype"), str):
                raise InputError(f"input tensor {j} needs 'name' (string), 'shape' (list), 'datatype' (string) and 'data' (list)")
            shape = t["shape"]
            if not shape or len(shape) > 2 or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1_000_000 for d in shape):
                raise InputError(f"input {t['name']!r}: shape must be [N] or [N, F] of positive integers")
            data = t["data"]
            flat = [x for row in data for x in row] if data and all(isinstance(r, list) for r in data) else data
            if any(not isinstance(x, _SCALARS) for x in flat):
                raise InputError(f"input {t['name']!r}: data must hold numbers, strings, booleans or nulls")
            n = shape[0] * (shape[1] if len(shape) == 2 else 1)
            if len(flat) != n:
                raise InputError(f"input {t['name']!r}: shape {shape} needs {n} values, got {len(flat)}")
            if len(shape) == 2 and shape[1] != 1:
                if shape[1] != len(names):
                    raise InputError(f"input {t['name']!r}: {shape[1]} columns, but the model takes {len(names)} features: {', '.join(names)}")
                if len(doc["inputs"]) != 1:
                    raise InputError("send either one [N, F] tensor or one [N] tensor per feature, not both")
                f = shape[1]
                rows = [dict(zip(names, flat[i * f : (i + 1) * f], strict=True)) for i in range(shape[0])]
                return self._cap(rows), rid
            tensors[t["name"]] = flat
        lengths = {len(v) for v in tensors.values()}
        if len(lengths) != 1:
            raise InputError("every input tensor must have the same batch size")
        (n,) = lengths
        rows = [{k: v[i] for k, v in tensors.items()} for i in range(n)]
        return self._cap(rows), rid

    def _cap(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(rows) > self.cfg.max_instances:
            raise InputError(f"{len(rows)} instances exceed the limit of {self.cfg.max_instances} per request", hint="split the request")
        return rows

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
        except Overloaded as exc:
            gw.metrics.overloaded.inc()
            return error_response(exc, rid), labels, key_id
        except Exception as exc:
            return error_response(exc, rid), labels, key_id

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

        read = functools.partial(self.receive_json, declared.decode("latin-1") if declared is not None else None, receive)
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
        doc = await self.gw.ready()
        return json_response(doc, 200 if doc["status"] == "ready" else 503)

    async def metrics(self, request: Request) -> Response:
        from strataml.serving.metrics import CONTENT_TYPE

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

    async def predict(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            return await self._predict(r.path_params["name"], rid, functools.partial(self.parse_json, r.headers.get("content-length"), r.stream()), key)

        return await self.handle(request, "v1.predict", self._predict_scope, body)

    async def _predict(self, raw_name: str, rid: str, read: Callable[[], Awaitable[Any]], key: ApiKey | None) -> tuple[Any, dict[str, str]]:
        assert key is not None  # the route needs a key
        name = self._checked_name(raw_name)
        tr = self.gw.deployment(name)
        self.gw.rate_limit(key, name, tr)  # before the body is read: a refused caller costs little
        instances = self.instances(await read())
        res, logged = await self.gw.predict_logging(name, instances, key, rid, "v1.predict", tr)
        doc: dict[str, Any] = {"model": res.model, "version": res.version, "predictions": res.predictions, "request_id": rid, "degraded": res.degraded}
        if res.degraded:
            doc["fallback"] = res.fallback
        return (doc if logged is None else AwaitingLog(doc, logged)), {"model": name, "version": str(res.version)}

    async def infer(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            assert key is not None
            name = self._name(r)
            tr = self.gw.deployment(name)
            self.gw.rate_limit(key, name, tr)
            doc = await self.read_json(r)
            champion = await self.gw.servable(name, tr.champion)
            instances, client_id = self.infer_instances(doc, champion.feature_names())
            res = await self.gw.predict(name, instances, key, rid, "v2.infer", tr)
            preds = res.predictions
            if preds and isinstance(preds[0], dict):
                labels = list(preds[0])
                data = [p[c] for p in preds for c in labels]
                out = {"name": "predictions", "datatype": "FP64", "shape": [len(preds), len(labels)], "data": data, "parameters": {"classes": labels}}
            else:
                out = {"name": "predictions", "datatype": "FP64", "shape": [len(preds)], "data": preds}
            resp = {"model_name": res.model, "model_version": str(res.version), "id": client_id or rid, "outputs": [out], "parameters": {"request_id": rid, "degraded": res.degraded}}
            return resp, {"model": name, "version": str(res.version)}

        return await self.handle(request, "v2.infer", self._predict_scope, body)

    async def model_metadata(self, request: Request) -> Response:
        async def body(r: Request, rid: str, key: ApiKey | None) -> tuple[Any, dict[str, str]]:
            name = self._name(r)
            s = await self.gw.servable(name, self.gw.deployment(name).champion)
            dtype = {"float": "FP64", "int": "INT64", "bool": "BOOL"}
            inputs = [{"name": f.name, "datatype": dtype.get(f.type, "BYTES"), "shape": [-1]} for f in s.features]
            return {"name": name, "versions": [str(s.version)], "platform": "strataml", "inputs": inputs, "outputs": [{"name": "predictions", "datatype": "FP64", "shape": [-1]}], "output_kind": s.output}, {"model": name}

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
            Route("/v1/models/{name}/predict", self.predict, methods=["POST"]),
            Route("/v1/models/{name}/rollback", self.rollback, methods=["POST"]),
            Route("/v2/models/{name}", self.model_metadata, methods=["GET"]),
            Route("/v2/models/{name}/infer", self.infer, methods=["POST"]),
            Route("/v1/deployments", self.deployments, methods=["GET"]),
            Route("/v1/deployments/{name}", self.deployment, methods=["GET", "PUT", "PATCH"]),
        ]


class GatewayApp(Starlette):
    """The gateway's ASGI application.

    ``POST /v1/models/{name}/predict``, the busiest route, goes straight to its handler,
    past route matching and the error and exception middleware: the handler turns every
    error into its JSON answer itself. Everything else (other routes, a mounted root
    path, lifespan) goes through Starlette's router."""

    def __init__(self, http: HttpGateway, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.startswith("/v1/models/") and path.endswith("/predict"):
                name = path[11:-8]
                if name and "/" not in name:
                    await self.http.predict_asgi(scope, receive, send, name)
                    return
        await super().__call__(scope, receive, send)


async def _body_chunks(receive: Receive, first: Message | None = None) -> AsyncIterator[bytes]:
    """A request body's chunks as the server delivers them (``first``: a message already received)."""
    while True:
        message, first = (first, None) if first is not None else (await receive(), None)
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def create_app(ws: Workspace, models: ModelProvider | None = None, config: GatewayConfig | None = None) -> Starlette:
    """The gateway as an ASGI application (``app.state.gateway`` holds its state)."""
    gw = Gateway(ws, models, config)
    http = HttpGateway(gw)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await gw.startup()
        try:
            yield
        finally:
            await gw.shutdown()

    app = GatewayApp(http, routes=http.routes(), lifespan=lifespan)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        msg = "no such route" if status == 404 else "method not allowed on this route"
        return json_response({"error": {"status": status, "type": "NotFound" if status == 404 else "MethodNotAllowed", "message": f"{msg}: {request.method} {request.url.path[:200]}", "hint": "GET /openapi.json (with a key) lists every route"}}, status)

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    app.state.gateway = gw
    return app
