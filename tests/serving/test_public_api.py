"""The serving layer's public door."""

import strataml.serving


def test_serving_exports() -> None:
    assert set(strataml.serving.__all__) == {
        "PUBLIC", "ApiKey", "AuditLog", "AuthError", "FeatureSpec", "Gateway", "GatewayConfig", "InMemoryModels", "InputError",
        "KeyStore", "ModelProvider", "RegistryModels", "Servable", "Traffic", "Variant", "create_app", "create_key", "error_log_dir", "error_log_sql",
        "from_lightgbm", "from_loaded", "get_traffic", "list_keys", "list_traffic", "openapi_document", "prediction_log_dir", "prediction_log_sql",
        "prediction_stats", "query_predictions",
        "revoke_key", "score", "set_traffic",
    }
    for name in strataml.serving.__all__:
        assert getattr(strataml.serving, name) is not None
