"""Models layer: runs (params, metric history, latest metrics, artifacts), models,
model versions, aliases and the alias history."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import schema


def upgrade(conn: sa.Connection) -> None:
    schema.metadata.create_all(
        conn,
        tables=[
            schema.runs,
            schema.run_params,
            schema.run_metrics,
            schema.run_latest_metrics,
            schema.run_artifacts,
            schema.models,
            schema.model_versions,
            schema.model_aliases,
            schema.model_alias_history,
        ],
    )
