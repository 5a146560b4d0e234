"""The data layer: contracts, ingestion with quarantine, versioned datasets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.data.contract import TYPES, Column, Contract, breaking_changes
    from strataml.data.datasets import (
        LATEST,
        DatasetVersion,
        commit_version,
        diff,
        get_version,
        latest_version,
        list_datasets,
        list_versions,
        parse_ref,
    )
    from strataml.data.infer import infer_contract
    from strataml.data.ingest import IngestReport, ingest, quarantine_rows, resolve_contract
    from strataml.data.sources import SourceSpec

_EXPORTS = {
    "TYPES": "contract",
    "Column": "contract",
    "Contract": "contract",
    "breaking_changes": "contract",
    "DatasetVersion": "datasets",
    "LATEST": "datasets",
    "commit_version": "datasets",
    "latest_version": "datasets",
    "diff": "datasets",
    "get_version": "datasets",
    "list_datasets": "datasets",
    "list_versions": "datasets",
    "parse_ref": "datasets",
    "infer_contract": "infer",
    "IngestReport": "ingest",
    "ingest": "ingest",
    "quarantine_rows": "ingest",
    "resolve_contract": "ingest",
    "SourceSpec": "sources",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "LATEST",
    "TYPES",
    "Column",
    "Contract",
    "DatasetVersion",
    "IngestReport",
    "SourceSpec",
    "breaking_changes",
    "commit_version",
    "diff",
    "get_version",
    "infer_contract",
    "ingest",
    "latest_version",
    "list_datasets",
    "list_versions",
    "parse_ref",
    "quarantine_rows",
    "resolve_contract",
]
