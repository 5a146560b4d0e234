"""strataml: a production machine-learning system in one package.

The public surface is re-exported here: ``import strataml as st``.
"""

from strataml.data import Column, Contract, DatasetVersion, IngestReport, SourceSpec, ingest
from strataml.errors import StrataError
from strataml.features import Entity, Feature, FeatureView, RequestFeature
from strataml.models import (
    Gate,
    LoadedModel,
    Model,
    Split,
    TorchEstimator,
    Tune,
    load_model,
    start_run,
    train,
)
from strataml.monitoring import AlertRule as Alert
from strataml.spine import Settings, Workspace

__version__ = "0.1.0"


def dataset(ref: str, workspace: Workspace | str | None = None) -> DatasetVersion:
    """Open a dataset version (``NAME``, ``NAME@latest`` or ``NAME@v3``) for reading."""
    from strataml.data import get_version

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    return get_version(ws, ref)


__all__ = [
    "Alert",
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
    "RequestFeature",
    "Settings",
    "SourceSpec",
    "Split",
    "StrataError",
    "TorchEstimator",
    "Tune",
    "Workspace",
    "__version__",
    "dataset",
    "ingest",
    "load_model",
    "start_run",
    "train",
]
