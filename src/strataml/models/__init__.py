"""The models layer: tracked training runs, tuning, evaluation gates, a registry with
versions and aliases, lineage, safe (pickle-free) serialisation, and a PyTorch adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.models._definitions import Gate, Model, Split, Tune
    from strataml.models._lineage import code_version, model_lineage, package_versions
    from strataml.models._metrics import METRICS, higher_is_better
    from strataml.models._onnx_export import ExportRefused, export_model, list_exports
    from strataml.models._predictor import Predictor, SignatureError, prepare
    from strataml.models._registry import (
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
    from strataml.models._serialization import UnsafeModel
    from strataml.models._tables import model_exists
    from strataml.models._torch_adapter import TorchEstimator
    from strataml.models._tracking import (
        Run,
        compare_runs,
        get_run,
        list_runs,
        metric_history,
        resolve_run_id,
        start_run,
    )
    from strataml.models._train import (
        TrainResult,
        load_training_data,
        resolve_model,
        split_indices,
        train,
    )
    from strataml.models.formats import FORMATS, ModelFormat, row_predictor
    from strataml.models.formats._lightgbm import LightGBMRows

_EXPORTS = {
    "model_exists": "_tables",
    "Gate": "_definitions",
    "Model": "_definitions",
    "Split": "_definitions",
    "Tune": "_definitions",
    "FORMATS": "formats",
    "ModelFormat": "formats",
    "row_predictor": "formats",
    "LightGBMRows": "formats._lightgbm",
    "code_version": "_lineage",
    "model_lineage": "_lineage",
    "package_versions": "_lineage",
    "METRICS": "_metrics",
    "higher_is_better": "_metrics",
    "ExportRefused": "_onnx_export",
    "export_model": "_onnx_export",
    "list_exports": "_onnx_export",
    "Predictor": "_predictor",
    "SignatureError": "_predictor",
    "prepare": "_predictor",
    "CHAMPION": "_registry",
    "LoadedModel": "_registry",
    "get_model": "_registry",
    "list_models": "_registry",
    "load_model": "_registry",
    "move_alias": "_registry",
    "resolve_version": "_registry",
    "rollback": "_registry",
    "set_alias": "_registry",
    "UnsafeModel": "_serialization",
    "TorchEstimator": "_torch_adapter",
    "Run": "_tracking",
    "compare_runs": "_tracking",
    "get_run": "_tracking",
    "list_runs": "_tracking",
    "metric_history": "_tracking",
    "resolve_run_id": "_tracking",
    "start_run": "_tracking",
    "TrainResult": "_train",
    "train": "_train",
    "load_training_data": "_train",
    "resolve_model": "_train",
    "split_indices": "_train",
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
    "model_exists",
    "model_lineage",
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
