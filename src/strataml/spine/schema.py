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

# --- models ------------------------------------------------------------------------

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("parent_id", sa.String(32), nullable=True, index=True),
    sa.Column("name", sa.String(256), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),  # latest value per key (denormalised)
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("timings", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
)

run_params = sa.Table(
    "run_params",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(256), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_run_params_key_value", "key", "value"),
)

run_metrics = sa.Table(
    "run_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.String(256), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),  # unix seconds, cheap to write in bulk
    sa.Index("ix_run_metrics_run_key_step", "run_id", "key", "step"),
)

run_latest_metrics = sa.Table(
    "run_latest_metrics",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(256), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Index("ix_run_latest_metrics_key_value", "key", "value"),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("model", sa.String(256), sa.ForeignKey("models.name"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("signature", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("feature_views", sa.JSON, nullable=False),
    sa.Column("trusted_types", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model", sa.String(256), sa.ForeignKey("models.name"), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

model_alias_history = sa.Table(
    "model_alias_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("alias", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("previous", sa.Integer, nullable=True),
    sa.Column("action", sa.String(16), nullable=False),  # set | rollback
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_model_alias_history_model_alias", "model", "alias", "id"),
)

model_exports = sa.Table(
    "model_exports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("quantization", sa.String(16), nullable=True),  # None | int8
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("report", sa.JSON, nullable=False),  # max_abs_diff, tolerance, sample, sizes, converter
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_model_exports_model_version", "model", "version", "id"),
)

# --- serving -----------------------------------------------------------------------

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(256), nullable=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
