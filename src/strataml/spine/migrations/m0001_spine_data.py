"""Spine and data layer: events, contracts, datasets, dataset versions, ingests."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import schema


def upgrade(conn: sa.Connection) -> None:
    schema.metadata.create_all(
        conn,
        tables=[schema.events, schema.contracts, schema.datasets, schema.dataset_versions, schema.ingests],
    )
