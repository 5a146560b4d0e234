"""Serving: the HTTP gateway (auth, rate limits, micro-batching, traffic, resilience,
cache, metrics, durable prediction log) and batch scoring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.serving._app import PUBLIC, create_app
    from strataml.serving._audit import AuditLog
    from strataml.serving._auth import (
        ApiKey,
        AuthError,
        KeyStore,
        create_key,
        list_keys,
        revoke_key,
    )
    from strataml.serving._batch import score
    from strataml.serving._edge import EdgeLimits, EdgeProtocol
    from strataml.serving._entry import app_from_env
    from strataml.serving._errorlog import error_log_dir, error_log_sql
    from strataml.serving._gateway import Gateway, GatewayConfig
    from strataml.serving._log_query import COLUMNS as PREDICTION_LOG_COLUMNS
    from strataml.serving._log_query import log_dir as prediction_log_dir
    from strataml.serving._log_query import log_relation_sql as prediction_log_sql
    from strataml.serving._log_query import query as query_predictions
    from strataml.serving._log_query import stats as prediction_stats
    from strataml.serving._logging import log_config
    from strataml.serving._openapi import openapi_document
    from strataml.serving._servable import (
        FeatureSpec,
        InMemoryModels,
        InputError,
        ModelProvider,
        RegistryModels,
        Servable,
        from_lightgbm,
        from_loaded,
    )
    from strataml.serving._traffic import (
        Traffic,
        Variant,
        delete_traffic,
        get_traffic,
        list_traffic,
        set_traffic,
        traffic_check,
        write_traffic,
    )

_EXPORTS = {
    "app_from_env": "_entry",
    "delete_traffic": "_traffic",
    "traffic_check": "_traffic",
    "EdgeProtocol": "_edge",
    "EdgeLimits": "_edge",
    "PUBLIC": "_app",
    "create_app": "_app",
    "AuditLog": "_audit",
    "query_predictions": "_log_query:query",
    "prediction_stats": "_log_query:stats",
    "ApiKey": "_auth",
    "AuthError": "_auth",
    "create_key": "_auth",
    "list_keys": "_auth",
    "revoke_key": "_auth",
    "score": "_batch",
    "Gateway": "_gateway",
    "GatewayConfig": "_gateway",
    "openapi_document": "_openapi",
    "FeatureSpec": "_servable",
    "InMemoryModels": "_servable",
    "InputError": "_servable",
    "ModelProvider": "_servable",
    "RegistryModels": "_servable",
    "Servable": "_servable",
    "from_lightgbm": "_servable",
    "from_loaded": "_servable",
    "Traffic": "_traffic",
    "Variant": "_traffic",
    "get_traffic": "_traffic",
    "list_traffic": "_traffic",
    "set_traffic": "_traffic",
    "write_traffic": "_traffic",
    "PREDICTION_LOG_COLUMNS": "_log_query:COLUMNS",
    "log_config": "_logging",
    "prediction_log_dir": "_log_query:log_dir",
    "prediction_log_sql": "_log_query:log_relation_sql",
    "KeyStore": "_auth",
    "error_log_dir": "_errorlog",
    "error_log_sql": "_errorlog",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "PREDICTION_LOG_COLUMNS",
    "PUBLIC",
    "ApiKey",
    "AuditLog",
    "AuthError",
    "EdgeLimits",
    "EdgeProtocol",
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
    "app_from_env",
    "create_app",
    "create_key",
    "delete_traffic",
    "error_log_dir",
    "error_log_sql",
    "from_lightgbm",
    "from_loaded",
    "get_traffic",
    "list_keys",
    "list_traffic",
    "log_config",
    "openapi_document",
    "prediction_log_dir",
    "prediction_log_sql",
    "prediction_stats",
    "query_predictions",
    "revoke_key",
    "score",
    "set_traffic",
    "traffic_check",
    "write_traffic",
]
