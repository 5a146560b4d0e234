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
    "check_alerts", "drift", "quality", "slo", "Worker", "WorkerConfig", "Outgoing", "open_queue", "prediction_lineage", "get_traffic", "list_alerts", "list_datasets",
    "Pipeline", "run_pipeline", "step",
    "Schedule", "Trigger", "on_alert", "on_dataset", "on_files", "on_pipeline", "on_queue", "Retrain", "Canary", "Check", "Scheduler", "dashboard_mounts",
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
        "QueueError", "Settings", "UtcDateTime", "Workspace", "append_event", "check_name", "check_queue_name",
        "collect_garbage", "confine", "confine_key", "current_actor", "definition_hash", "duck", "failpoint",
        "find_workspace", "lazy_exports", "list_events", "load_definitions", "load_settings", "metadata", "one",
        "open_artifact_store", "open_catalog", "open_queue", "owner_tag", "parse_duration", "pausepoint", "process_alive", "process_start_time",
        "quote_ident", "quote_literal", "redis_client", "scheme_of", "sha256_file", "use_wal", "user_code",
        "utcnow", "write_parquet"
    },
    "strataml.data": {
        "LATEST", "TYPES", "Column", "Contract", "DatasetVersion", "IngestReport", "SourceSpec",
        "breaking_changes", "commit_version", "diff", "get_version", "infer_contract", "ingest",
        "latest_version", "list_datasets", "list_versions", "parse_ref", "quarantine_rows", "resolve_contract"
    },
    "strataml.features": {
        "AGGREGATIONS", "Entity", "Feature", "FeatureDefinitionError", "FeatureError", "FeatureInputError",
        "FeatureView", "OnlineStore", "OnlineStoreError", "RedisOnlineStore", "RequestFeature",
        "SQLiteOnlineStore", "TrainingSet", "ViewReader", "apply", "build_training_set", "check_skew",
        "compute_request_features", "entity_key_types", "get_online_features", "list_views", "materialize",
        "online_store", "open_online_store", "parse_duration", "register", "resolve_view", "show_view"
    },
    "strataml.models": {
        "CHAMPION", "FORMATS", "METRICS", "ExportRefused", "Gate", "LightGBMRows", "LoadedModel", "Model",
        "ModelFormat", "Predictor", "Run", "SignatureError", "Split", "TorchEstimator", "TrainResult", "Tune",
        "UnsafeModel", "code_version", "compare_runs", "export_model", "get_model", "get_run",
        "higher_is_better", "list_exports", "list_models", "list_runs", "load_model", "load_training_data",
        "metric_history", "model_exists", "model_lineage", "move_alias", "package_versions", "prepare",
        "resolve_model", "resolve_run_id", "resolve_version", "rollback", "row_predictor", "set_alias",
        "split_indices", "start_run", "train"
    },
    "strataml.serving": {
        "PREDICTION_LOG_COLUMNS", "PUBLIC", "ApiKey", "AuditLog", "AuthError", "EdgeLimits", "EdgeProtocol", "FeatureSpec", "Gateway",
        "GatewayConfig", "InMemoryModels", "InputError", "KeyStore", "ModelProvider", "RegistryModels",
        "Servable", "Traffic", "Variant", "app_from_env", "create_app", "create_key", "delete_traffic",
        "error_log_dir", "error_log_sql", "from_lightgbm", "from_loaded", "get_traffic", "list_keys", "log_config",
        "list_traffic", "openapi_document", "prediction_log_dir", "prediction_log_sql", "prediction_stats",
        "query_predictions", "revoke_key", "score", "set_traffic", "traffic_check", "write_traffic"
    },
    "strataml.monitoring": {
        "KLL_K", "MAX_CATEGORIES", "Alert", "AlertEvent", "AlertRule", "CategoricalSummary", "DriftReport",
        "FoldResult", "NumericSummary", "Profile", "QualityReport", "SloReport", "Thresholds", "check_alerts",
        "dataset_drift", "drift", "fold", "list_alerts", "prediction_lineage", "profile", "quality",
        "run_monitor", "set_alert", "slo", "failures_sql", "live_requests_sql", "version_drift", "window_profile"
    },
    "strataml.pipelines": {
        "Canary", "Check", "CheckResult", "DriftDetected", "Input", "Ledger", "LoopRun", "Pipeline",
        "PipelineError", "PipelineRun", "Retrain", "Schedule", "Scheduler", "Step", "StepContext",
        "StepOutputError", "StepRun", "Trigger", "Worker", "WorkerConfig", "abort", "advance", "advance_loops",
        "approve", "cancel_run", "create_run", "drift_step", "execute_run", "export_step", "get_loop",
        "get_run", "ingest_step", "list_loops", "list_runs", "materialize_step", "on_alert", "on_dataset",
        "on_files", "on_pipeline", "on_queue", "recover_runs", "resolve_pipeline", "resume_run", "run_attempts",
        "run_logs", "run_pipeline", "run_scheduler", "run_worker", "scheduler_status", "score_step",
        "start_canary", "step", "train_step"
    },
    "strataml.features.online": {
        "BACKENDS", "KEY_SEP", "LAYOUT", "META", "OnlineStore", "OnlineStoreError", "RedisOnlineStore",
        "SQLiteOnlineStore", "encode_key", "encode_value", "key_sql", "open_online_store"
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
    importlib.import_module("strataml.data._ingest")
    importlib.import_module("strataml.features._materialize")
    importlib.import_module("strataml.models._train")
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


def _imports_with_names(tree: ast.AST) -> list[str]:
    """Every module an import statement names, with ``from x import y`` also as ``x.y``."""
    out = _imported_modules(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out += [f"{node.module}.{alias.name}" for alias in node.names]
    return out


def test_nothing_reaches_into_another_layers_private_modules() -> None:
    # a layer's `_name` modules are its own: everything else goes through its door
    root = Path(strataml.__file__).parent
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    reaching = []
    for path in root.rglob("*.py"):
        if path.name == "testing.py":
            continue  # the conformance kit exercises the implementations behind the doors, by design
        here = path.relative_to(root).parts[0]
        for module in _imports_with_names(ast.parse(path.read_text())):
            parts = module.split(".")
            if parts[0] != "strataml" or len(parts) < 3 or parts[1] not in packages or parts[1] == here:
                continue
            if any(p.startswith("_") for p in parts[2:]):
                reaching.append(f"{path.relative_to(root)} imports {module}")
    assert not reaching, reaching


def test_the_demo_speaks_only_st() -> None:
    # the showcase uses the one user surface, `import strataml as st`, and its own chapters
    for path in (Path(strataml.__file__).parent / "demo").glob("*.py"):
        for module in _imported_modules(ast.parse(path.read_text())):
            if module.startswith("strataml"):
                assert module == "strataml" or module.startswith("strataml.demo"), f"demo/{path.name} imports {module}"


def test_every_implementation_module_is_private() -> None:
    # a layer's modules are reached through its door: a new public module would be a second door
    root = Path(strataml.__file__).parent
    public = [
        str(path.relative_to(root))
        for package in root.iterdir()
        if (package / "__init__.py").exists()
        for path in package.rglob("*.py")
        if not path.name.startswith("_")
        and "_migrations" not in path.parts
        and path.relative_to(root).as_posix() != "cli/main.py"  # the `strata` entry point
    ]
    assert not public, f"name implementation modules _name.py (the door re-exports their public names): {public}"
