"""The models layer: tracked training runs, tuning, evaluation gates, a registry with
versions and aliases, lineage, safe (pickle-free) serialisation, and a PyTorch adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.models._tables import models as model_names
    from strataml.models.definitions import Gate, Model, Split, Tune
    from strataml.models.formats import FORMATS, ModelFormat, row_predictor
    from strataml.models.formats.lightgbm import LightGBMRows
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
        move_alias,
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

_EXPORTS = {
    "model_names": "_tables:models",
    "Gate": "definitions",
    "Model": "definitions",
    "Split": "definitions",
    "Tune": "definitions",
    "FORMATS": "formats",
    "ModelFormat": "formats",
    "row_predictor": "formats",
    "LightGBMRows": "formats.lightgbm",
    "code_version": "lineage",
    "model_lineage": "lineage",
    "package_versions": "lineage",
    "METRICS": "metrics",
    "higher_is_better": "metrics",
    "ExportRefused": "onnx_export",
    "export_model": "onnx_export",
    "list_exports": "onnx_export",
    "Predictor": "predictor",
    "SignatureError": "predictor",
    "prepare": "predictor",
    "CHAMPION": "registry",
    "LoadedModel": "registry",
    "get_model": "registry",
    "list_models": "registry",
    "load_model": "registry",
    "move_alias": "registry",
    "resolve_version": "registry",
    "rollback": "registry",
    "set_alias": "registry",
    "UnsafeModel": "serialization",
    "TorchEstimator": "torch_adapter",
    "Run": "tracking",
    "compare_runs": "tracking",
    "get_run": "tracking",
    "list_runs": "tracking",
    "metric_history": "tracking",
    "resolve_run_id": "tracking",
    "start_run": "tracking",
    "TrainResult": "train",
    "train": "train",
    "load_training_data": "train",
    "resolve_model": "train",
    "split_indices": "train",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "CHAMPION",
    "FORMATS",
    "METRICS",
    "ExportRefused",
    "Gate",
    "LightGBMRows",
    "LoadedModel",
    "Model",
    "ModelFormat",
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
    "model_names",
    "move_alias",
    "package_versions",
    "prepare",
    "resolve_model",
    "resolve_run_id",
    "resolve_version",
    "rollback",
    "row_predictor",
    "set_alias",
    "split_indices",
    "start_run",
    "train",
]
