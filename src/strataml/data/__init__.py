"""The data layer: contracts, ingestion with quarantine, versioned datasets."""

from strataml.data.contract import TYPES, Column, Contract, breaking_changes
from strataml.data.datasets import (
    DatasetVersion,
    diff,
    get_version,
    list_datasets,
    list_versions,
    parse_ref,
)
from strataml.data.infer import infer_contract
from strataml.data.ingest import IngestReport, ingest, quarantine_rows, resolve_contract
from strataml.data.sources import SourceSpec

__all__ = [
    "TYPES",
    "Column",
    "Contract",
    "DatasetVersion",
    "IngestReport",
    "SourceSpec",
    "breaking_changes",
    "diff",
    "get_version",
    "infer_contract",
    "ingest",
    "list_datasets",
    "list_versions",
    "parse_ref",
    "quarantine_rows",
    "resolve_contract",
]
