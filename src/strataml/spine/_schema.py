"""The catalog's shared :data:`metadata` and the spine's own tables.

Every catalog table is a SQLAlchemy Core table on :data:`metadata`, defined by the layer
that owns it (``strataml.<layer>._tables``) and created by that layer's migrations (see
:mod:`strataml.spine.migrations`). The spine owns the record of applied migrations and
the event log. JSON columns hold small documents (schemas, statistics, lineage), never
row data.
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
