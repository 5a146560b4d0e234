"""strataml: a production machine-learning system in one package.

The public surface is re-exported here: ``import strataml as st``. Names are imported
on first use, so ``import strataml`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml._version import __version__
from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.dashboard import dashboard_mounts
    from strataml.data import (
        Column,
        Contract,
        DatasetVersion,
        IngestReport,
        SourceSpec,
        ingest,
        list_datasets,
        quarantine_rows,
    )
    from strataml.errors import StrataError
    from strataml.features import (
        Entity,
        Feature,
        FeatureView,
        RequestFeature,
        apply,
        check_skew,
        get_online_features,
        materialize,
    )
    from strataml.features import build_training_set as training_set
    from strataml.models import (
        Gate,
        LoadedModel,
        Model,
        Split,
        TorchEstimator,
        Tune,
        get_model,
        load_model,
        model_lineage,
        set_alias,
        start_run,
        train,
    )
    from strataml.monitoring import AlertRule as Alert
    from strataml.monitoring import (
        check_alerts,
        drift,
        list_alerts,
        prediction_lineage,
        quality,
        slo,
    )
    from strataml.pipelines import (
        Canary,
        Check,
        Pipeline,
        Retrain,
        Schedule,
        Scheduler,
        Trigger,
        Worker,
        WorkerConfig,
        on_alert,
        on_dataset,
        on_files,
        on_pipeline,
        on_queue,
        run_pipeline,
        step,
    )
    from strataml.serving import create_app, create_key, get_traffic, score, set_traffic
    from strataml.spine import Outgoing, Settings, Workspace, list_events, open_queue

_EXPORTS = {
    "Column": "data",
    "Contract": "data",
    "DatasetVersion": "data",
    "IngestReport": "data",
    "SourceSpec": "data",
    "ingest": "data",
    "list_datasets": "data",
    "quarantine_rows": "data",
    "StrataError": "errors",
    "dashboard_mounts": "dashboard",
    "Entity": "features",
    "Feature": "features",
    "FeatureView": "features",
    "RequestFeature": "features",
    "apply": "features",
    "check_skew": "features",
    "get_online_features": "features",
    "materialize": "features",
    "training_set": "features:build_training_set",
    "Gate": "models",
    "LoadedModel": "models",
    "Model": "models",
    "Split": "models",
    "TorchEstimator": "models",
    "Tune": "models",
    "get_model": "models",
    "load_model": "models",
    "model_lineage": "models",
    "set_alias": "models",
    "start_run": "models",
    "train": "models",
    "Alert": "monitoring:AlertRule",
    "check_alerts": "monitoring",
    "drift": "monitoring",
    "list_alerts": "monitoring",
    "prediction_lineage": "monitoring",
    "quality": "monitoring",
    "slo": "monitoring",
    "Worker": "pipelines",
    "WorkerConfig": "pipelines",
    "Canary": "pipelines",
    "Check": "pipelines",
    "Pipeline": "pipelines",
    "Retrain": "pipelines",
    "run_pipeline": "pipelines",
    "step": "pipelines",
    "Schedule": "pipelines",
    "Scheduler": "pipelines",
    "Trigger": "pipelines",
    "on_alert": "pipelines",
    "on_dataset": "pipelines",
    "on_files": "pipelines",
    "on_pipeline": "pipelines",
    "on_queue": "pipelines",
    "create_app": "serving",
    "create_key": "serving",
    "get_traffic": "serving",
    "score": "serving",
    "set_traffic": "serving",
    "Settings": "spine",
    "Workspace": "spine",
    "list_events": "spine",
    "Outgoing": "spine",
    "open_queue": "spine",
}
lazy_exports(__name__, _EXPORTS)


def dataset(ref: str, workspace: Workspace | str | None = None) -> DatasetVersion:
    """Open a dataset version (``NAME``, ``NAME@latest`` or ``NAME@v3``) for reading."""
    from strataml.data import get_version
    from strataml.spine import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    return get_version(ws, ref)


__all__ = [
    "Alert",
    "Canary",
    "Check",
    "Column",
    "Contract",
    "DatasetVersion",
    "Entity",
    "Feature",
    "FeatureView",
    "Gate",
    "IngestReport",
    "LoadedModel",
    "Model",
    "Outgoing",
    "Pipeline",
    "RequestFeature",
    "Retrain",
    "Schedule",
    "Scheduler",
    "Settings",
    "SourceSpec",
    "Split",
    "StrataError",
    "TorchEstimator",
    "Trigger",
    "Tune",
    "Worker",
    "WorkerConfig",
    "Workspace",
    "__version__",
    "apply",
    "check_alerts",
    "check_skew",
    "create_app",
    "create_key",
    "dashboard_mounts",
    "dataset",
    "drift",
    "get_model",
    "get_online_features",
    "get_traffic",
    "ingest",
    "list_alerts",
    "list_datasets",
    "list_events",
    "load_model",
    "materialize",
    "model_lineage",
    "on_alert",
    "on_dataset",
    "on_files",
    "on_pipeline",
    "on_queue",
    "open_queue",
    "prediction_lineage",
    "quality",
    "quarantine_rows",
    "run_pipeline",
    "score",
    "set_alias",
    "set_traffic",
    "slo",
    "start_run",
    "step",
    "train",
    "training_set",
]
