"""Models layer: runs (params, metric history, latest metrics, artifacts), models,
model versions, aliases and the alias history."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.models import _tables as t
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(
        conn,
        tables=[
            t.runs,
            t.run_params,
            t.run_metrics,
            t.run_latest_metrics,
            t.run_artifacts,
            t.models,
            t.model_versions,
            t.model_aliases,
            t.model_alias_history,
        ],
    )
