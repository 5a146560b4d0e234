"""Schemathesis against the gateway's own OpenAPI document: no input yields a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

import strataml as st
from strataml.serving import (
    GatewayConfig,
    InMemoryModels,
    create_app,
    create_key,
    from_lightgbm,
    openapi_document,
)

from .conftest import train_booster

_root = Path(tempfile.mkdtemp(prefix="strata-fuzz-"))
_ws = st.Workspace.init(_root / "ws")
_models = InMemoryModels()
_models.add(from_lightgbm("fraud", 1, train_booster(0)), ["champion"])
_ADMIN = create_key(_ws.catalog, ["admin"])[1]
app = create_app(_ws, _models, GatewayConfig(ratelimit_url="memory://", rate=None))
schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = app


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case) -> None:
    response = case.call(headers={"authorization": f"Bearer {_ADMIN}"})
    assert response.status_code < 500 or response.status_code in (503, 504), (response.status_code, response.text[:500])
    if response.status_code in (503, 504):  # refusals, not crashes: the body names the reason
        assert response.json()["error"]["type"] in ("Overloaded", "PredictionFailed", "DeadlineExceeded") or case.path == "/readyz"
    case.validate_response(response, checks=[status_code_conformance, response_schema_conformance])


def test_document_covers_every_route() -> None:
    from starlette.routing import Route

    doc = openapi_document()
    for r in app.routes:
        if isinstance(r, Route):
            assert r.path in doc["paths"], r.path
            assert {m.lower() for m in (r.methods or set()) if m != "HEAD"} <= set(doc["paths"][r.path])



_PREDICT = create_key(_ws.catalog, ["predict:fraud"])[1]


def _authed(secret: str) -> schemathesis.BaseSchema:
    """The document, with schemathesis sending ``secret`` as the bearer key (its auth checks know it)."""
    s = schemathesis.openapi.from_dict(openapi_document())
    s.app = app

    @s.auth()
    class Bearer:
        def get(self, case, ctx):  # type: ignore[no-untyped-def]
            return secret

        def set(self, case, data, ctx):  # type: ignore[no-untyped-def]
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return s


admin_schema = _authed(_ADMIN)
predict_schema = _authed(_PREDICT)


@pytest.mark.slow
@admin_schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_document_with_an_admin_key(case) -> None:
    """Every check schemathesis has, with an admin key."""
    case.call_and_validate()


@pytest.mark.slow
@predict_schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_document_with_a_predict_key(case) -> None:
    """Every check schemathesis has, with a key that may only predict."""
    case.call_and_validate()
