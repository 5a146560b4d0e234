"""The models layer's catalog tables: runs with their parameters, metrics and artifacts, and
the registry's models, versions, aliases and their history (migration ``m0200_models``),
and exports of versions (migration ``m0201_model_exports``); :func:`model_exists` asks the
registry whether a name is a model without importing what training and loading need."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from strataml.spine import UtcDateTime, metadata

if TYPE_CHECKING:
    from strataml.spine import Workspace

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("parent_id", sa.String(32), nullable=True, index=True),
    sa.Column("name", sa.String(256), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("started_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
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
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
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
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model", sa.String(256), sa.ForeignKey("models.name"), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
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
    sa.Column("ts", UtcDateTime(), nullable=False),
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
    sa.Column(
        "report", sa.JSON, nullable=False
    ),  # max_abs_diff, tolerance, sample, sizes, converter
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index("ix_model_exports_model_version", "model", "version", "id"),
)


def model_exists(ws: Workspace, name: str) -> bool:
    """Whether the registry has a model ``name`` (one catalog read: it imports no model library)."""
    with ws.catalog.read() as conn:
        return conn.execute(sa.select(models.c.name).where(models.c.name == name)).first() is not None
