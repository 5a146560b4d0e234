"""Feature store: feature views, their versions, and materialisation runs."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.features._tables import feature_view_versions, feature_views, materializations
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[feature_views, feature_view_versions, materializations])
