"""The models layer: tracked training runs, tuning, evaluation gates, a registry with
versions and aliases, lineage, safe (pickle-free) serialisation, and a PyTorch adapter."""

from strataml.models.definitions import Gate, Model, Split, Tune
from strataml.models.lineage import code_version, model_lineage, package_versions
from strataml.models.metrics import METRICS, higher_is_better
from strataml.models.onnx_export import ExportRefused, export_model, list_exports
from strataml.models.predictor import Predictor, SignatureError, prepare
from strataml.models.registry import (
    CHAMPION,
    LoadedModel,
    get_model,
    list_models,
    load_model,
    resolve_version,
    rollback,
    set_alias,
)
from strataml.models.serialization import UnsafeModel
from strataml.models.torch_adapter import TorchEstimator
from strataml.models.tracking import (
    Run,
    compare_runs,
    get_run,
    list_runs,
    metric_history,
    resolve_run_id,
    start_run,
)
from strataml.models.train import (
    TrainResult,
    load_training_data,
    resolve_model,
    split_indices,
    train,
)

__all__ = [
    "CHAMPION",
    "METRICS",
    "ExportRefused",
    "Gate",
    "LoadedModel",
    "Model",
    "Predictor",
    "Run",
    "SignatureError",
    "Split",
    "TorchEstimator",
    "TrainResult",
    "Tune",
    "UnsafeModel",
    "code_version",
    "compare_runs",
    "export_model",
    "get_model",
    "get_run",
    "higher_is_better",
    "list_exports",
    "list_models",
    "list_runs",
    "load_model",
    "load_training_data",
    "metric_history",
    "model_lineage",
    "package_versions",
    "prepare",
    "resolve_model",
    "resolve_run_id",
    "resolve_version",
    "rollback",
    "set_alias",
    "split_indices",
    "start_run",
    "train",
]
