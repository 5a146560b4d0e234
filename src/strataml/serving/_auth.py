"""API keys: created once, stored hashed, compared in constant time, scoped, revocable.

A key reads ``sk_<id>_<secret>``. The catalog keeps only the sha256 of the whole key
(the secret has 256 bits of entropy, so a fast hash is enough); the key itself is
shown once, at creation. Scopes are ``admin`` (everything), ``predict:NAME``
(``predict:*`` for every model) or ``read`` (the dashboard: reading, never changing). Revocation is immediate: the gateway notices any
catalog commit before it authenticates the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from strataml.errors import NotFound, StrataError
from strataml.serving import _tables as tables
from strataml.spine import (
    Catalog,
    DataVersion,
    append_event,
    check_name,
    current_actor,
    utcnow,
)

_KEY = re.compile(r"^sk_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,128})$")
_DUMMY_HASH = hashlib.sha256(b"strata-dummy-key").hexdigest()


class AuthError(StrataError):
    """A request's credentials are missing, unknown, revoked or lack the scope (401/403)."""

    def __init__(self, message: str, *, status: int = 401, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret)."""

    id: str
    name: str | None
    scopes: tuple[str, ...]
    hash: str
    created_at: str
    revoked: bool

    def allows(self, scope: str) -> bool:
        """Whether this key may act within ``scope`` (``admin``, ``predict:NAME`` or ``read``)."""
        if "admin" in self.scopes:
            return True
        if scope.startswith("predict:"):
            return scope in self.scopes or "predict:*" in self.scopes
        return scope in self.scopes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description without the hash."""
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes), "created_at": self.created_at, "revoked": self.revoked}


def check_scope(scope: str) -> str:
    """Refuse a malformed scope."""
    if scope in ("admin", "read", "predict:*"):
        return scope
    if scope.startswith("predict:"):
        check_name(scope.split(":", 1)[1], "model name in scope")
        return scope
    raise StrataError(f"unknown scope {scope!r}", hint="use 'admin', 'read', 'predict:NAME' or 'predict:*'")


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(catalog: Catalog, scopes: list[str], name: str | None = None) -> tuple[ApiKey, str]:
    """Create a key; returns the stored record and the key itself (shown once, never stored)."""
    if not scopes:
        raise StrataError("a key needs at least one scope", hint="pass --scope predict:NAME or --scope admin")
    scopes = [check_scope(s) for s in scopes]
    key_id = uuid.uuid4().hex[:16]
    secret = f"sk_{key_id}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    with catalog.write() as conn:
        conn.execute(
            tables.api_keys.insert().values(
                id=key_id, name=name, hash=hash_key(secret), scopes=scopes, created_at=now, created_by=current_actor(), revoked_at=None
            )
        )
        append_event(conn, "key.created", f"key:{key_id}", {"scopes": scopes, "name": name})
    return ApiKey(key_id, name, tuple(scopes), hash_key(secret), now.isoformat(), False), secret


def revoke_key(catalog: Catalog, key_id: str) -> ApiKey:
    """Revoke a key; every gateway refuses it from its next request on."""
    t = tables.api_keys
    with catalog.write() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == key_id)).mappings().first()
        if row is None:
            raise NotFound(f"no API key with id {key_id!r}", hint="'strata keys list' shows the ids")
        if row["revoked_at"] is None:
            conn.execute(t.update().where(t.c.id == key_id).values(revoked_at=utcnow()))
            append_event(conn, "key.revoked", f"key:{key_id}", {})
    return _row(dict(row), revoked=True)


def _row(r: dict[str, Any], revoked: bool | None = None) -> ApiKey:
    created = r["created_at"]
    return ApiKey(
        r["id"], r["name"], tuple(r["scopes"]), r["hash"],
        created.isoformat() if hasattr(created, "isoformat") else str(created),
        bool(r["revoked_at"] is not None) if revoked is None else revoked,
    )


def list_keys(catalog: Catalog) -> list[ApiKey]:
    """Every key, oldest first (revoked ones included, marked)."""
    t = tables.api_keys
    with catalog.read() as conn:
        return [_row(dict(r)) for r in conn.execute(sa.select(t).order_by(t.c.created_at)).mappings()]


class CatalogWatcher:
    """Tells cheaply whether anyone committed to the catalog since the last look.

    On SQLite this reads the catalog's :class:`~strataml.spine._data_version.DataVersion`
    on a private connection: a commit by another process is seen within 10 ms,
    one made through this process's catalog object at once. On other databases every
    look reports a change, unless the watcher is :meth:`polled`: then its version is a
    number that whoever polls the catalog (off the event loop) moves on a change.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._con: sqlite3.Connection | None = None
        self._watch: DataVersion | None = None
        self._lock = threading.Lock()
        url = make_url(catalog.url)
        if catalog.dialect == "sqlite" and url.database and url.database != ":memory:":
            self._con = sqlite3.connect(url.database, check_same_thread=False, isolation_level=None)
            self._watch = DataVersion(self._con.cursor())
        self._last: int | None = None
        self._polled: int | None = None

    def polled(self) -> None:
        """Take the version from :meth:`bump` (called by a poller of the catalog) rather
        than ask the catalog: no look blocks on a database server."""
        if self._polled is None:
            self._polled = 0

    def bump(self, version: int) -> None:
        """Publish the poller's new version."""
        self._polled = version

    @property
    def exact(self) -> bool:
        """Whether :meth:`changed` can say "no" (SQLite, or polled) or always says "yes"."""
        return self._watch is not None or self._polled is not None

    def changed(self) -> bool:
        """True when a commit happened since the previous call (always True off SQLite, unless polled)."""
        if self._watch is None and self._polled is None:
            return True
        v = self.version()
        if v != self._last:
            self._last = v
            return True
        return False

    def version(self) -> int:
        """A number that changes whenever someone commits (-1 off SQLite and unpolled: unknown)."""
        if self._polled is not None:
            return self._polled
        if self._watch is None:
            return -1
        with self._lock:
            return self._watch.read(self._catalog.commits)

    def close(self) -> None:
        """Release the private connection."""
        if self._con is not None:
            self._con.close()


class KeyStore:
    """Authenticates bearer keys against the catalog, noticing revocations at once."""

    def __init__(self, catalog: Catalog, watcher: CatalogWatcher | None = None) -> None:
        self.catalog = catalog
        self.watcher = watcher or CatalogWatcher(catalog)
        self._keys: dict[str, ApiKey] = {}
        self._seen: int | None = None
        self._lock = threading.Lock()
        # Authorization headers already verified against the keys of catalog version
        # _seen: a repeat skips parsing and hashing. Emptied whenever the catalog changes
        # (a revocation is a commit), and kept only where changes are seen at once (SQLite).
        self._verified: dict[str, ApiKey] = {}

    def _reload(self) -> None:
        self._keys = {k.id: k for k in list_keys(self.catalog)}
        self._verified = {}

    def install(self, keys: list[ApiKey], version: int) -> None:
        """Take ``keys`` (read by a poller of the catalog) as those of catalog ``version``."""
        with self._lock:
            self._keys = {k.id: k for k in keys}
            self._verified = {}
            self._seen = version

    def _lookup(self, key_id: str, version: int | None = None) -> ApiKey | None:
        with self._lock:
            if self.watcher.exact:
                v = self.watcher.version() if version is None else version
                if v != self._seen:
                    self._reload()
                    self._seen = v
                return self._keys.get(key_id)
        t = tables.api_keys
        with self.catalog.read() as conn:
            r = conn.execute(sa.select(t).where(t.c.id == key_id)).mappings().first()
        return _row(dict(r)) if r is not None else None

    def get(self, key_id: str) -> ApiKey | None:
        """The stored key with this id (revoked ones included, marked), or None."""
        return self._lookup(key_id)

    def authenticate(self, authorization: str | None, version: int | None = None) -> ApiKey:
        """The key named by an ``Authorization: Bearer`` header, or :class:`AuthError` (401).

        ``version`` is the catalog's current change number when the caller already read it."""
        if version is not None and version == self._seen and authorization is not None:
            known = self._verified.get(authorization)
            if known is not None:
                return known
        hint = "send 'Authorization: Bearer <key>'; create a key with 'strata keys create'"
        if not authorization:
            raise AuthError("missing API key", hint=hint)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        m = _KEY.fullmatch(token) if scheme.lower() == "bearer" else None
        if m is None:
            raise AuthError("malformed Authorization header", hint=hint)
        key = self._lookup(m.group(1), version)
        stored = key.hash if key is not None else _DUMMY_HASH
        ok = hmac.compare_digest(stored, hash_key(token))
        if key is None or not ok:
            raise AuthError("invalid API key", hint=hint)
        if key.revoked:
            raise AuthError(f"API key {key.id} was revoked", hint="create a new key with 'strata keys create'")
        if version is not None:
            with self._lock:
                if self._seen == version:  # _seen is set only where the watcher is exact
                    if len(self._verified) >= 4096:
                        self._verified = {}
                    self._verified[authorization] = key
        return key

    def close(self) -> None:
        """Release the watcher's connection."""
        self.watcher.close()
