"""Serving: the HTTP gateway (auth, rate limits, micro-batching, traffic, resilience,
cache, metrics, durable prediction log) and batch scoring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.serving._log_query import log_dir as prediction_log_dir
    from strataml.serving._log_query import log_relation_sql as prediction_log_sql
    from strataml.serving._log_query import query as query_predictions
    from strataml.serving._log_query import stats as prediction_stats
    from strataml.serving.app import PUBLIC, create_app
    from strataml.serving.audit import AuditLog
    from strataml.serving.auth import ApiKey, AuthError, KeyStore, create_key, list_keys, revoke_key
    from strataml.serving.batch import score
    from strataml.serving.errorlog import error_log_dir, error_log_sql
    from strataml.serving.gateway import Gateway, GatewayConfig
    from strataml.serving.openapi import openapi_document
    from strataml.serving.servable import (
        FeatureSpec,
        InMemoryModels,
        InputError,
        ModelProvider,
        RegistryModels,
        Servable,
        from_lightgbm,
        from_loaded,
    )
    from strataml.serving.traffic import (
        Traffic,
        Variant,
        get_traffic,
        list_traffic,
        set_traffic,
        write_traffic,
    )

_EXPORTS = {
    "PUBLIC": "app",
    "create_app": "app",
    "AuditLog": "audit",
    "query_predictions": "_log_query:query",
    "prediction_stats": "_log_query:stats",
    "ApiKey": "auth",
    "AuthError": "auth",
    "create_key": "auth",
    "list_keys": "auth",
    "revoke_key": "auth",
    "score": "batch",
    "Gateway": "gateway",
    "GatewayConfig": "gateway",
    "openapi_document": "openapi",
    "FeatureSpec": "servable",
    "InMemoryModels": "servable",
    "InputError": "servable",
    "ModelProvider": "servable",
    "RegistryModels": "servable",
    "Servable": "servable",
    "from_lightgbm": "servable",
    "from_loaded": "servable",
    "Traffic": "traffic",
    "Variant": "traffic",
    "get_traffic": "traffic",
    "list_traffic": "traffic",
    "set_traffic": "traffic",
    "write_traffic": "traffic",
    "prediction_log_dir": "_log_query:log_dir",
    "prediction_log_sql": "_log_query:log_relation_sql",
    "KeyStore": "auth",
    "error_log_dir": "errorlog",
    "error_log_sql": "errorlog",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "PUBLIC",
    "ApiKey",
    "AuditLog",
    "AuthError",
    "FeatureSpec",
    "Gateway",
    "GatewayConfig",
    "InMemoryModels",
    "InputError",
    "KeyStore",
    "ModelProvider",
    "RegistryModels",
    "Servable",
    "Traffic",
    "Variant",
    "create_app",
    "create_key",
    "error_log_dir",
    "error_log_sql",
    "from_lightgbm",
    "from_loaded",
    "get_traffic",
    "list_keys",
    "list_traffic",
    "openapi_document",
    "prediction_log_dir",
    "prediction_log_sql",
    "prediction_stats",
    "query_predictions",
    "revoke_key",
    "score",
    "set_traffic",
    "write_traffic",
]
