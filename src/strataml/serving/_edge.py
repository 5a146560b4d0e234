"""The gateway's HTTP edge: limits on what a client may send before the application runs.

uvicorn's httptools protocol reads a request's head without bound and waits for a slow
sender forever; :class:`EdgeProtocol` (``strata serve`` runs with it) adds

- a limit on the bytes of a request's head (request line and headers) and on the number
  of headers: beyond either, **431** and the connection is closed, having buffered at
  most the limit and one read;
- a deadline to receive the whole head (``header_timeout_s``, from the connection's
  opening or the request's first byte) and one to receive the whole body
  (``body_timeout_s``): past either, **408** and the connection is closed, so a client
  trickling bytes cannot hold a connection (or a worker's request) forever.

The body's size is limited by the application (413, see :mod:`strataml.serving._bodies`).
Limits come from :class:`EdgeLimits`, which ``strata serve`` passes to its workers in the
``STRATA_SERVE_SPEC`` environment variable.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


@dataclass(frozen=True)
class EdgeLimits:
    """What one request may send before the application sees it."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    @classmethod
    def from_env(cls) -> EdgeLimits:
        """The limits ``strata serve`` set in ``STRATA_SERVE_SPEC`` (the defaults otherwise)."""
        spec = json.loads(os.environ.get("STRATA_SERVE_SPEC", "{}")).get("edge") or {}
        return cls(**{k: v for k, v in spec.items() if k in cls.__dataclass_fields__})


def refusal(status: int, kind: str, message: str, hint: str) -> bytes:
    """A whole HTTP response, written straight to the socket, that closes the connection."""
    body = orjson.dumps({"error": {"status": status, "type": kind, "message": message, "hint": hint}, "request_id": None})
    return b"".join([
        STATUS_LINE[status], b"content-type: application/json\r\n", b"content-length: ", str(len(body)).encode(), b"\r\n",
        b"connection: close\r\n\r\n", body,
    ])


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`EdgeLimits` (pass as ``uvicorn.run(http=…)``)."""

    limits = EdgeLimits.from_env()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0  # received while the head is incomplete (bounds what the parser buffers)
        self._head_size = 0  # of the request line and headers, as parsed
        self._header_count = 0
        self._refusal: str | None = None
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, "the request's headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(seconds, self._timed_out, what, seconds)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self, what: str, seconds: float) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        if self.cycle is not None:  # the application waits for a body that will not come: it sees a disconnect
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self._refuse(408, "RequestTimeout", f"{what} did not arrive within {seconds:g}s", "send the whole request promptly")

    def _refuse(self, status: int, kind: str, message: str, hint: str) -> None:
        self._disarm()
        self.logger.warning("refused a request from %s: %s", self.client[0] if self.client else "-", message)
        self.transport.write(refusal(status, kind, message, hint))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._refusal is None and self._in_head and self._head_bytes > self.limits.max_header_bytes:
            self._refusal = f"the request's headers exceed {self.limits.max_header_bytes} bytes"
        if self._refusal is not None:
            self._refuse(431, "HeadersTooLarge", self._refusal, f"send at most {self.limits.max_headers} headers of {self.limits.max_header_bytes} bytes in all")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # the next request on a kept-alive connection
            self._in_head = True
            self._head_bytes = 0
            self._arm(self.limits.header_timeout_s, "the request's headers")
        self._header_count = 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._head_size += len(name) + len(value) + 4
        if self._header_count > self.limits.max_headers:
            self._refusal = f"more than {self.limits.max_headers} headers"
        if self._refusal is None:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._refusal is None and self._head_size > self.limits.max_header_bytes:
            self._refusal = f"the request's headers exceed {self.limits.max_header_bytes} bytes"
        if self._refusal is not None:
            return  # refused once the parser returns
        self._arm(self.limits.body_timeout_s, "the request's body")
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refusal is not None:
            return
        self._disarm()
        super().on_message_complete()
