"""Spine and data layer: events, contracts, datasets, dataset versions, ingests."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.data._tables import contracts, dataset_versions, datasets, ingests
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    # the first migration of all: it creates the spine's event log too
    metadata.create_all(
        conn, tables=[metadata.tables["events"], contracts, datasets, dataset_versions, ingests]
    )
