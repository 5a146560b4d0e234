"""The catalog's shared :data:`metadata` and the spine's own tables.

Every catalog table is a SQLAlchemy Core table on :data:`metadata`, defined by the layer
that owns it (``strataml.<layer>._tables``) and created by that layer's migrations (see
:mod:`strataml.spine.migrations`). The spine owns the record of applied migrations and
the event log. JSON columns hold small documents (schemas, statistics, lineage), never
row data.

For code written when every table lived here, ``schema.<table>`` still resolves a
layer's table by name (:data:`MOVED`); new code imports tables from their layer.
"""

from __future__ import annotations

import importlib
from typing import Any

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


#: tables that moved to their layer: name here → the module that defines them now
MOVED: dict[str, str] = {
    **dict.fromkeys(
        ("contracts", "datasets", "dataset_versions", "ingests"), "strataml.data._tables"
    ),
    **dict.fromkeys(
        ("feature_views", "feature_view_versions", "materializations"), "strataml.features._tables"
    ),
    **dict.fromkeys(
        (
            "runs",
            "run_params",
            "run_metrics",
            "run_latest_metrics",
            "run_artifacts",
            "models",
            "model_versions",
            "model_aliases",
            "model_alias_history",
            "model_exports",
        ),
        "strataml.models._tables",
    ),
    **dict.fromkeys(("api_keys", "deployments"), "strataml.serving._tables"),
    **dict.fromkeys(
        ("monitor_profiles", "monitor_windows", "monitor_log_offsets", "monitor_alerts"),
        "strataml.monitoring._tables",
    ),
}


def __getattr__(name: str) -> Any:
    module = MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
