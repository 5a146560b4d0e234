"""strataml: a production machine-learning system in one package.

The public surface is re-exported here: ``import strataml as st``. Names are imported
on first use, so ``import strataml`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml._version import __version__
from strataml.spine.lazy import lazy_exports

if TYPE_CHECKING:
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

_EXPORTS = {
    "Column": "data",
    "Contract": "data",
    "DatasetVersion": "data",
    "IngestReport": "data",
    "SourceSpec": "data",
    "ingest": "data",
    "StrataError": "errors",
    "Entity": "features",
    "Feature": "features",
    "FeatureView": "features",
    "RequestFeature": "features",
    "Gate": "models",
    "LoadedModel": "models",
    "Model": "models",
    "Split": "models",
    "TorchEstimator": "models",
    "Tune": "models",
    "load_model": "models",
    "start_run": "models",
    "train": "models",
    "Settings": "spine",
    "Workspace": "spine",
    "Alert": "monitoring:AlertRule",
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
