"""The catalog's tables, one section per layer.

Tables are SQLAlchemy Core objects shared by every module that reads or writes the
catalog; the migrations in :mod:`strataml.spine.migrations` create and evolve them.
JSON columns hold small documents (schemas, statistics, lineage), never row data.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# --- spine -------------------------------------------------------------------------

migrations_table = sa.Table(
    "strata_migrations",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("kind", sa.String(128), nullable=False, index=True),
    sa.Column("subject", sa.String(512), nullable=False, index=True),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
)

# --- data --------------------------------------------------------------------------

contracts = sa.Table(
    "contracts",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# --- features ----------------------------------------------------------------------

feature_views = sa.Table(
    "feature_views",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

feature_view_versions = sa.Table(
    "feature_view_versions",
    metadata,
    sa.Column("view", sa.String(256), sa.ForeignKey("feature_views.name"), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(256), nullable=True),
    sa.Column("source", sa.String(256), nullable=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

materializations = sa.Table(
    "materializations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("view", sa.String(256), nullable=False, index=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("store", sa.String(1024), nullable=False),
    sa.Column("source_version", sa.String(300), nullable=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
    sa.Column("entities", sa.BigInteger, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
