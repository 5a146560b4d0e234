"""The data layer's catalog tables (created by migration ``m0001_spine_data``): contracts,
datasets, their immutable versions and the record of every ingest."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import UtcDateTime, metadata

contracts = sa.Table(
    "contracts",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("dataset", sa.String(256), sa.ForeignKey("datasets.name"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.JSON, nullable=False),
    sa.Column("files", sa.JSON, nullable=False),
    sa.Column("contract_name", sa.String(256), nullable=True),
    sa.Column("contract_version", sa.String(64), nullable=True),
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("parent", sa.Integer, nullable=True),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

ingests = sa.Table(
    "ingests",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("dataset", sa.String(256), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("contract_name", sa.String(256), nullable=False),
    sa.Column("contract_version", sa.String(64), nullable=False),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Column("quarantine", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
