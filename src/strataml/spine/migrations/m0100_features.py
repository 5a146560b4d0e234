"""Feature store: feature views, their versions, and materialisation runs."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import schema


def upgrade(conn: sa.Connection) -> None:
    schema.metadata.create_all(
        conn,
        tables=[schema.feature_views, schema.feature_view_versions, schema.materializations],
    )
