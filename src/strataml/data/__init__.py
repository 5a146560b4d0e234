"""The data layer: contracts, ingestion with quarantine, versioned datasets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.data._contract import TYPES, Column, Contract, breaking_changes
    from strataml.data._datasets import (
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
    from strataml.data._infer import infer_contract
    from strataml.data._ingest import IngestReport, ingest, quarantine_rows, resolve_contract
    from strataml.data._sources import SourceSpec

_EXPORTS = {
    "TYPES": "_contract",
    "Column": "_contract",
    "Contract": "_contract",
    "breaking_changes": "_contract",
    "DatasetVersion": "_datasets",
    "LATEST": "_datasets",
    "commit_version": "_datasets",
    "latest_version": "_datasets",
    "diff": "_datasets",
    "get_version": "_datasets",
    "list_datasets": "_datasets",
    "list_versions": "_datasets",
    "parse_ref": "_datasets",
    "infer_contract": "_infer",
    "IngestReport": "_ingest",
    "ingest": "_ingest",
    "quarantine_rows": "_ingest",
    "resolve_contract": "_ingest",
    "SourceSpec": "_sources",
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
