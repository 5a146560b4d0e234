"""The public surface is a contract with users: changing it must be deliberate."""

import ast
import importlib
import types
from pathlib import Path

import pytest

import strataml
import strataml.data
import strataml.spine


def test_top_level_names() -> None:
    assert {"Column", "Contract", "DatasetVersion", "IngestReport", "Settings", "SourceSpec", "StrataError",
            "Workspace", "dataset", "ingest"} <= set(strataml.__all__)
    for name in strataml.__all__:
        assert getattr(strataml, name) is not None


TOP_LEVEL = {
    "Alert", "Column", "Contract", "DatasetVersion", "Entity", "Feature", "FeatureView", "Gate", "IngestReport",
    "LoadedModel", "Model", "RequestFeature", "Settings", "SourceSpec", "Split", "StrataError", "TorchEstimator", "Tune",
    "Workspace", "__version__", "apply", "check_skew", "create_app", "create_key", "dataset", "get_model",
    "get_online_features", "ingest", "list_events", "load_model", "materialize", "model_lineage", "quarantine_rows",
    "score", "set_alias", "set_traffic", "start_run", "train", "training_set",
}


def test_one_user_surface() -> None:
    # everything the README and `strata demo` show is reachable as st.NAME
    import strataml.features
    import strataml.models
    import strataml.monitoring
    import strataml.serving

    assert set(strataml.__all__) == TOP_LEVEL
    assert strataml.training_set is strataml.features.build_training_set
    assert strataml.materialize is strataml.features.materialize
    assert strataml.set_alias is strataml.models.set_alias
    assert strataml.score is strataml.serving.score
    assert strataml.create_app is strataml.serving.create_app
    assert strataml.Alert is strataml.monitoring.AlertRule
    assert set(dir(strataml)) >= TOP_LEVEL - {"__version__"}


def test_layer_doors_export_what_they_list() -> None:
    for module in (strataml.spine, strataml.data):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    assert set(strataml.data.__all__) == {
        "TYPES", "Column", "Contract", "DatasetVersion", "IngestReport", "SourceSpec", "breaking_changes", "diff",
        "get_version", "infer_contract", "ingest", "list_datasets", "list_versions", "parse_ref", "quarantine_rows",
        "resolve_contract", "LATEST", "commit_version", "latest_version",
    }


LAYER_NAMES = {
    "strataml.spine": {
        "DEFINITIONS_FILE", "ArtifactStore", "AtomicParquet", "Backend", "BackendKind", "Catalog",
        "DataVersion", "DeadLetter", "Definitions", "Delivery", "Event", "LazyModule", "Outgoing", "Queue",
        "QueueError", "Settings", "Workspace", "append_event", "check_name", "confine", "confine_key",
        "current_actor", "definition_hash", "duck", "failpoint", "find_workspace", "lazy_exports",
        "list_events", "load_definitions", "load_settings", "model_names", "monitor_alerts",
        "monitor_log_offsets", "monitor_profiles", "monitor_windows", "one", "open_artifact_store",
        "open_catalog", "open_queue", "owner_tag", "pausepoint", "quote_ident", "quote_literal", "redis_client", "scheme_of",
        "sha256_file", "use_wal", "user_code", "utcnow", "write_parquet",
    },
    "strataml.features": {
        "AGGREGATIONS", "Entity", "Feature", "FeatureDefinitionError", "FeatureError", "FeatureInputError",
        "FeatureView", "OnlineStore", "OnlineStoreError", "RedisOnlineStore", "RequestFeature",
        "SQLiteOnlineStore", "TrainingSet", "ViewReader", "apply", "build_training_set", "check_skew",
        "compute_request_features", "get_online_features", "list_views", "materialize", "online_store",
        "open_online_store", "parse_duration", "register", "resolve_view", "show_view",
    },
    "strataml.models": {
        "CHAMPION", "FORMATS", "METRICS", "ExportRefused", "Gate", "LightGBMRows", "LoadedModel", "Model",
        "ModelFormat", "Predictor", "Run", "SignatureError", "Split", "TorchEstimator", "TrainResult", "Tune",
        "UnsafeModel", "code_version", "compare_runs", "export_model", "get_model", "get_run",
        "higher_is_better", "list_exports", "list_models", "list_runs", "load_model", "load_training_data",
        "metric_history", "model_lineage", "package_versions", "prepare", "resolve_model", "resolve_run_id",
        "resolve_version", "rollback", "row_predictor", "set_alias", "split_indices", "start_run", "train",
    },
    "strataml.serving": {
        "PUBLIC", "ApiKey", "AuditLog", "AuthError", "FeatureSpec", "Gateway", "GatewayConfig",
        "InMemoryModels", "InputError", "KeyStore", "ModelProvider", "RegistryModels", "Servable", "Traffic",
        "Variant", "create_app", "create_key", "error_log_dir", "error_log_sql", "from_lightgbm", "from_loaded",
        "get_traffic", "list_keys", "list_traffic", "openapi_document", "prediction_log_dir",
        "prediction_log_sql", "prediction_stats", "query_predictions", "revoke_key", "score", "set_traffic",
    },
    "strataml.features.online": {
        "BACKENDS", "KEY_SEP", "LAYOUT", "META", "OnlineStore", "OnlineStoreError", "RedisOnlineStore",
        "SQLiteOnlineStore", "encode_key", "encode_value", "key_sql", "open_online_store",
    },
}


@pytest.mark.parametrize("door", sorted(LAYER_NAMES))
def test_every_door_lists_exactly_its_public_names(door: str) -> None:
    module = importlib.import_module(door)
    assert set(module.__all__) == LAYER_NAMES[door]
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{door}.{name}"


def test_a_lazy_export_is_not_shadowed_by_its_module() -> None:
    # importing strataml.data.ingest (the module) must leave strataml.data.ingest the function
    importlib.import_module("strataml.data.ingest")
    importlib.import_module("strataml.features.materialize")
    importlib.import_module("strataml.models.train")
    assert callable(strataml.data.ingest) and not isinstance(strataml.data.ingest, types.ModuleType)
    features, models = importlib.import_module("strataml.features"), importlib.import_module("strataml.models")
    assert not isinstance(features.materialize, types.ModuleType)
    assert not isinstance(models.train, types.ModuleType)


def _imported_modules(tree: ast.AST) -> list[str]:
    """Every module an ``import x.y`` or ``from x.y import …`` statement names."""
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append(node.module)
    return out


def test_layers_import_only_to_their_left() -> None:
    order = ["spine", "data", "features", "models", "serving", "monitoring", "pipelines"]
    root = Path(strataml.__file__).parent
    for i, layer in enumerate(order):
        for path in (root / layer).rglob("*.py") if (root / layer).exists() else []:
            for module in _imported_modules(ast.parse(path.read_text())):
                parts = module.split(".")
                assert parts != ["strataml"], f"{path.name} ({layer}) imports the top-level package"
                if parts[0] == "strataml" and len(parts) > 1 and parts[1] in order:
                    assert order.index(parts[1]) <= i, f"{path.name} ({layer}) imports {module}"
