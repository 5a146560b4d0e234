"""Who is looking: API keys in the ``Authorization`` header, or a browser's session cookie.

The dashboard accepts the gateway's keys. A key needs the ``read`` scope (``admin``
includes it). A browser logs in once with a key and gets a session cookie
(HttpOnly, SameSite=Strict, path ``/ui``): ``KEYID.EXPIRY.MAC``, where MAC is an
HMAC-SHA256 over the key id, the expiry and the key's stored hash under a secret kept
in the workspace's state folder (created once, mode 0600). The cookie never holds the
key; every worker of ``strata serve`` verifies it with the same secret; revoking the
key ends its sessions at once (the key is looked up on every request).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from strataml.serving import ApiKey, AuthError, KeyStore
from strataml.spine import Workspace

COOKIE = "strata_session"
SCOPE = "read"
LIFETIME_S = 12 * 3600
_HINT = "log in at /ui/login with a key that has the 'read' scope ('strata keys create --scope read')"


def _secret(path: Path) -> bytes:
    """The workspace's session secret, created on first use (32 random bytes, owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be between creating and writing it
            data = path.read_bytes()
            if len(data) == 32:
                return data
            time.sleep(0.01)
        raise AuthError(f"the dashboard's session secret {path} is damaged", status=500, hint="delete the file; sessions start over") from None
    data = secrets.token_bytes(32)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return data


class Sessions:
    """Authenticates dashboard requests against the workspace's API keys."""

    def __init__(self, ws: Workspace) -> None:
        self.keys = KeyStore(ws.catalog)
        self._secret_path = ws.state_dir / "dashboard" / "session.key"
        self._secret_value: bytes | None = None

    @property
    def _secret(self) -> bytes:
        if self._secret_value is None:
            self._secret_value = _secret(self._secret_path)
        return self._secret_value

    def _mac(self, key: ApiKey, expiry: int) -> str:
        msg = f"{key.id}.{expiry}.{key.hash}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    @staticmethod
    def _require_read(key: ApiKey) -> ApiKey:
        if not key.allows(SCOPE):
            raise AuthError(f"API key {key.id} lacks the 'read' scope", status=403, hint="create one with 'strata keys create --scope read'")
        return key

    def login(self, key_text: str) -> tuple[ApiKey, str]:
        """Check a key typed into the login form; returns it and the cookie value to set."""
        key = self._require_read(self.keys.authenticate(f"Bearer {key_text.strip()}"))
        expiry = int(time.time()) + LIFETIME_S
        return key, f"{key.id}.{expiry}.{self._mac(key, expiry)}"

    def from_cookie(self, value: str) -> ApiKey:
        """The key behind a session cookie, or :class:`AuthError` (expired, forged, revoked)."""
        key_id, _, rest = value.partition(".")
        expiry_text, _, mac = rest.partition(".")
        expiry = 0
        with contextlib.suppress(ValueError):
            expiry = int(expiry_text)
        key = self.keys.get(key_id) if len(key_id) == 16 else None
        if key is None or expiry < time.time() or not hmac.compare_digest(self._mac(key, expiry), mac):
            raise AuthError("the session has expired or is not valid", hint=_HINT)
        if key.revoked:
            raise AuthError(f"API key {key.id} was revoked", hint=_HINT)
        return self._require_read(key)

    def authenticate(self, authorization: str | None, cookie: str | None) -> ApiKey:
        """The caller's key from the ``Authorization`` header, else from the session cookie."""
        if authorization:
            return self._require_read(self.keys.authenticate(authorization))
        if cookie:
            return self.from_cookie(cookie)
        raise AuthError("not logged in", hint=_HINT)

    def close(self) -> None:
        """Release the key store's connection."""
        self.keys.close()
