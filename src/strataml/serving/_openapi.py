"""The gateway's OpenAPI 3.1 document, describing every route, body and error.

Request and response bodies are pydantic models whose JSON schemas are embedded as
components; the document is built once and cached.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from strataml._version import __version__
from strataml.serving._traffic import Traffic

Scalar = str | int | float | bool | None
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$"


class PredictRequest(BaseModel):
    """``POST /v1/models/{name}/predict``: entity keys and request-time fields, or raw features."""

    model_config = ConfigDict(extra="forbid")
    instances: list[dict[str, Scalar]] = Field(min_length=1, max_length=1000)


class MissingFeatures(BaseModel):
    """An instance (by position) answered without the stored features its entity lacks."""

    instance: int
    features: list[str]


class PredictResponse(BaseModel):
    """One prediction per instance: probability (binary), value (regression) or class → probability."""

    model: str
    version: int
    predictions: list[float | dict[str, float | None] | Any | None]
    request_id: str
    degraded: bool
    fallback: str | None = None
    missing_features: list[MissingFeatures] | None = Field(
        None, description="instances whose entity the online store does not know, with the features answered as nulls "
        "(absent when every entity is known; the deployment's unknown_entity setting decides whether such an answer is degraded or refused)")


class Tensor(BaseModel):
    """An Open Inference Protocol v2 tensor."""

    name: str
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """``POST /v2/models/{name}/infer``."""

    id: str | None = None
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


class InferResponse(BaseModel):
    """The v2 inference response."""

    model_name: str
    model_version: str
    id: str
    outputs: list[Tensor]
    parameters: dict[str, Any] = Field(
        description="request_id, degraded, and missing_features (as in the v1 predict answer) when the online store "
        "did not know an instance's entity")


class ErrorBody(BaseModel):
    """Every error response."""

    class Detail(BaseModel):
        status: int
        type: str
        message: str
        hint: str | None = None
        details: list[dict[str, Any]] | None = None

    error: Detail
    request_id: str | None = None


class TrafficChange(BaseModel):
    """A change to a deployment's traffic (PATCH merges, PUT replaces); ``reason`` is recorded."""

    model_config = ConfigDict(extra="allow")
    reason: str | None = None


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "invalid or too deeply nested JSON", 401: "missing, invalid or revoked API key", 403: "the key lacks the scope",
            404: "unknown model or route", 500: "a server fault (an artifact failed its integrity check); the log has the details", 409: "the operation conflicts with the current state", 413: "body too large",
            422: "the body does not match the expected shape or the model's signature", 429: "rate limit exceeded (see Retry-After)",
            503: "overloaded, draining, or every fallback failed", 504: "the request's deadline passed"}
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {str(c): {"description": text[c], "content": ref} for c in codes}


def _op(summary: str, ok: dict[str, Any], errors: tuple[int, ...], *, public: bool = False, body: str | None = None, name: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": ok, **_errors(*errors)}}
    if public:
        op["security"] = []
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
    if name:
        op["parameters"] = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": NAME_PATTERN}}]
    return op


def _infer_op(errors: tuple[int, ...]) -> dict[str, Any]:
    op = _op("Inference (Open Inference Protocol v2); binary tensor data with Inference-Header-Content-Length.", _json("InferResponse"), errors, body="InferRequest", name=True)
    op["description"] = ("A body may also be binary tensor data: the JSON header, then each input's bytes, its length "
                         "in the Inference-Header-Content-Length header (the protocol's binary data extension).")
    op["responses"]["200"]["content"]["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
    return op


def _json(ref: str | None = None, schema: dict[str, Any] | None = None, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or {"$ref": f"#/components/schemas/{ref}"}}}}


@functools.lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the gateway."""
    components: dict[str, Any] = {}
    for model in (PredictRequest, PredictResponse, Tensor, InferRequest, InferResponse, ErrorBody, Traffic, TrafficChange):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for k, v in schema.pop("$defs", {}).items():
            components[k] = v
        components[model.__name__] = schema
    obj = {"type": "object"}
    auth = (401, 403)
    predict_errors = (*auth, 400, 404, 413, 422, 429, 503, 504)
    paths = {
        "/healthz": {"get": _op("Liveness: the process answers.", _json(schema=obj), (), public=True)},
        "/readyz": {"get": _op("Readiness: models loaded and stores reachable (503 when not); the checks only for an admin key.", _json(schema=obj), (503,), public=True)},
        "/v2": {"get": _op("Server metadata (Open Inference Protocol v2).", _json(schema=obj), auth)},
        "/v2/health/live": {"get": _op("Liveness (Open Inference Protocol v2).", _json(schema=obj), (), public=True)},
        "/v2/health/ready": {"get": _op("Readiness (Open Inference Protocol v2); 503 when not ready.", _json(schema=obj), (503,), public=True)},
        "/v2/models/{name}/ready": {"get": _op("Whether the model's champion can answer (Open Inference Protocol v2).", _json(schema=obj), (*auth, 404, 500, 503), name=True)},
        "/metrics": {"get": _op("Prometheus metrics (strata_ prefix).", {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}, (), public=True)},
        "/openapi.json": {"get": _op("This document.", _json(schema=obj), auth)},
        "/v1/models": {"get": _op("Models this key may call, with their traffic.", _json(schema=obj), auth)},
        "/v1/models/{name}/predict": {"post": _op("Predict for instances.", _json("PredictResponse"), predict_errors, body="PredictRequest", name=True)},
        "/v1/models/{name}/rollback": {"post": _op("Move the champion back to its previous version (admin).", _json(schema=obj), (*auth, 404, 409), name=True)},
        "/v2/models/{name}": {"get": _op("Model metadata (Open Inference Protocol v2): the inputs a request takes.", _json(schema=obj), (*auth, 404, 500, 503), name=True)},
        "/v2/models/{name}/infer": {"post": _infer_op(predict_errors)},
        "/v1/deployments": {"get": _op("Every configured deployment (admin).", _json(schema=obj), auth)},
        "/v1/deployments/{name}": {
            "get": _op("A deployment's traffic (admin).", _json(schema=obj), (*auth, 404), name=True),
            "patch": _op("Change a deployment's traffic, merging (admin).", _json(schema=obj), (*auth, 400, 404, 413, 422), body="TrafficChange", name=True),
            "put": _op("Replace a deployment's traffic (admin).", _json(schema=obj), (*auth, 400, 404, 413, 422), body="TrafficChange", name=True),
            "delete": _op("Delete a deployment (admin).", _json(schema=obj), (*auth, 404), name=True),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "strataml gateway", "version": __version__},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
