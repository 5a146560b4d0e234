"""Request bodies: read in bounded chunks, parsed as JSON, and checked for shape.

A body beyond the gateway's limit is refused with 413 (by its declared length before
anything is read, else as soon as the chunks exceed it); invalid or too deeply nested
JSON with 400; a v1 body that is not ``{"instances": [{...}, ...]}`` of scalar values,
or an Open Inference Protocol v2 body whose tensors do not make rows, with 422 naming
the problem. The model's own signature is checked later, by the servable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from strataml.errors import StrataError
from strataml.serving._gateway import GatewayConfig
from strataml.serving._servable import InputError

_SCALARS = (str, int, float, bool, type(None))


class BadRequest(StrataError):
    """The body is not valid JSON or is nested too deeply (HTTP 400)."""


class PayloadTooLarge(StrataError):
    """The body exceeds the gateway's limit (HTTP 413)."""


class BodyReader:
    """Reads and checks request bodies within a gateway's limits (body size, nesting
    depth and instances per request, from its :class:`GatewayConfig`)."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg

    def too_large(self, declared: str | None = None) -> PayloadTooLarge:
        """The 413 error for a body beyond the limit (``declared``: its Content-Length)."""
        size = f" of {declared} bytes" if declared is not None else ""
        return PayloadTooLarge(f"request body{size} exceeds the limit of {self.cfg.max_body_bytes} bytes", hint="split the instances over several requests")

    def check_declared(self, declared: str | None) -> None:
        """413 when a declared Content-Length exceeds the limit (or is not a number)."""
        if declared is not None and (not declared.isdigit() or int(declared) > self.cfg.max_body_bytes):
            raise self.too_large(declared)

    async def parse(self, declared: str | None, stream: AsyncIterator[bytes]) -> Any:
        """A body of ``declared`` length (``Content-Length``) read from ``stream`` in bounded
        chunks and parsed: 413 beyond the limit, 400 for invalid or too deeply nested JSON."""
        return self.decode(await self.read(declared, stream))

    async def read(self, declared: str | None, stream: AsyncIterator[bytes]) -> bytes:
        """A body's bytes, read as :meth:`parse` does (413 beyond the limit)."""
        self.check_declared(declared)
        limit = self.cfg.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in stream:  # the server stops reading at a declared length, which is within the limit
            size += len(chunk)
            if size > limit:
                raise self.too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    async def receive(self, declared: str | None, receive: Receive) -> Any:
        """:meth:`parse` on raw ASGI messages; a body that came in one message (the
        usual case) is parsed without iterating over chunks."""
        self.check_declared(declared)
        first = await receive()
        if first["type"] == "http.request" and not first.get("more_body", False):
            body = first.get("body", b"")
            if len(body) > self.cfg.max_body_bytes:
                raise self.too_large()
            return self.decode(body)
        return await self.parse(None, body_chunks(receive, first))

    def decode(self, body: bytes) -> Any:
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


async def body_chunks(receive: Receive, first: Message | None = None) -> AsyncIterator[bytes]:
    """A request body's chunks as the server delivers them (``first``: a message already received)."""
    while True:
        message, first = (first, None) if first is not None else (await receive(), None)
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
