"""API keys: hashed storage, deny by default across the whole route table, scopes, revocation."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from starlette.routing import Route

import strataml as st
from strataml.serving import PUBLIC, create_key, list_keys, revoke_key
from strataml.serving._auth import AuthError, KeyStore

from .conftest import bearer, instance


def test_key_is_stored_only_as_a_hash(workspace: st.Workspace) -> None:
    rec, secret = create_key(workspace.catalog, ["predict:fraud"], name="ci")
    assert secret.startswith(f"sk_{rec.id}_") and len(secret) > 40
    stored = next(k for k in list_keys(workspace.catalog) if k.id == rec.id)
    assert stored.hash != secret and secret not in repr(stored.to_dict())
    db = Path(workspace.catalog.url.replace("sqlite:///", ""))
    blob = b"".join(p.read_bytes() for p in db.parent.glob("catalog.db*"))
    assert secret.encode() not in blob
    assert secret.split("_", 2)[2].encode() not in blob


def test_every_route_but_health_needs_a_key(client, keys) -> None:
    routes = [r for r in client.app.routes if isinstance(r, Route)]
    assert len(routes) >= 10
    checked = 0
    for r in routes:
        path = r.path.replace("{name}", "fraud")
        for method in sorted(r.methods or []):
            if method == "HEAD":
                continue
            kwargs = {"json": {"instances": [instance()]}} if method in ("POST", "PUT", "PATCH") else {}
            anon = client.request(method, path, **kwargs)
            bad = client.request(method, path, headers=bearer("sk_0123456789abcdef_" + "x" * 43), **kwargs)
            if r.path in PUBLIC:
                assert anon.status_code in (200, 503), (method, path, anon.status_code)
            else:
                assert anon.status_code == 401, (method, path, anon.status_code)
                assert bad.status_code == 401, (method, path, bad.status_code)
                assert anon.json()["error"]["type"] == "AuthError"
                assert anon.headers["www-authenticate"].startswith("Bearer")
                checked += 1
    assert checked >= 10
    assert {"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"} == PUBLIC


def test_scopes_are_enforced(client, keys) -> None:
    body = {"instances": [instance()]}
    assert client.post("/v1/models/fraud/predict", json=body, headers=bearer(keys["fraud"])).status_code == 200
    assert client.post("/v1/models/fraud/predict", json=body, headers=bearer(keys["other"])).status_code == 403
    assert client.get("/v1/deployments", headers=bearer(keys["fraud"])).status_code == 403
    assert client.patch("/v1/deployments/fraud", json={"rate": 5}, headers=bearer(keys["fraud"])).status_code == 403
    assert client.get("/v1/deployments", headers=bearer(keys["admin"])).status_code == 200
    listed = client.get("/v1/models", headers=bearer(keys["other"])).json()["models"]
    assert listed == []


def test_revocation_takes_effect_on_the_next_request(client, keys, workspace, python, cli_env) -> None:
    body = {"instances": [instance()]}
    key_id = keys["fraud"].split("_")[1]
    for _ in range(2):  # the second is answered from the keys already verified, which the revocation must clear
        assert client.post("/v1/models/fraud/predict", json=body, headers=bearer(keys["fraud"])).status_code == 200
    # revoked by another process, through the CLI
    out = subprocess.run([python, "-m", "strataml", "keys", "revoke", key_id, "--json", "-w", str(workspace.root)], env=cli_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    r = client.post("/v1/models/fraud/predict", json=body, headers=bearer(keys["fraud"]))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_malformed_and_unknown_keys_are_refused(workspace) -> None:
    store = KeyStore(workspace.catalog)
    for header in (None, "", "Basic abc", "Bearer", "Bearer sk_zz_" + "a" * 40, "Bearer sk_0123456789abcdef_" + "a" * 43):
        with pytest.raises(AuthError):
            store.authenticate(header)
    rec, secret = create_key(workspace.catalog, ["admin"])
    assert store.authenticate(f"Bearer {secret}").id == rec.id
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(AuthError):
        store.authenticate(f"Bearer {tampered}")
    revoke_key(workspace.catalog, rec.id)
    with pytest.raises(AuthError, match="revoked"):
        store.authenticate(f"Bearer {secret}")
    store.close()


def test_no_secret_reaches_the_logs(client, keys, caplog, workspace) -> None:
    with caplog.at_level(logging.DEBUG):
        client.post("/v1/models/fraud/predict", json={"instances": [instance()]}, headers=bearer(keys["fraud"]))
        client.post("/v1/models/fraud/predict", json={"instances": [{"f0": "x"}]}, headers=bearer(keys["fraud"]))
        client.get("/v1/models", headers=bearer(keys["fraud"] + "x"))
    text = caplog.text + " ".join(str(getattr(r, "fields", "")) for r in caplog.records)
    assert any(getattr(r, "fields", None) for r in caplog.records), "requests are logged"
    for k in keys.values():
        assert k not in text and k.split("_", 2)[2] not in text
    log_text = "".join(p.read_text() for p in (workspace.state_dir / "predictions").glob("*.jsonl"))
    for k in keys.values():
        assert k.split("_", 2)[2] not in log_text


def test_forwarded_headers_are_untrusted_by_default(client, workspace, models) -> None:
    from strataml.serving._app import HttpGateway

    http = HttpGateway(client.app.state.gateway)

    fwd = "6.6.6.6, 10.0.0.2"
    assert http.client_ip("127.0.0.1", fwd) == "127.0.0.1"
    http.cfg.trusted_proxies = ("127.0.0.1", "10.0.0.2")
    assert http.client_ip("127.0.0.1", fwd) == "6.6.6.6"
    assert http.client_ip("8.8.8.8", fwd) == "8.8.8.8"
