"""The scheduler's catalog tables (created by migration ``m0510_scheduler``).

``scheduler_ticks`` holds one row per (schedule or trigger, tick time or event): the
deterministic run key of the run it starts (unique), the run's id once created, and how
far the tick got (``claimed`` → ``created`` → ``started`` → the run's final state).
``scheduler_cursors`` records, per schedule or trigger, how far its ticks or events are
handled. ``scheduler_leases`` are heartbeated rows: which scheduler process is in charge
of which schedule or trigger (PostgreSQL), or of the whole catalog (SQLite), and which
scheduler processes are alive.
"""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine.schema import metadata

scheduler_ticks = sa.Table(
    "scheduler_ticks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(400), nullable=False),
    sa.Column("tick_key", sa.String(400), nullable=False),
    sa.Column("pipeline", sa.String(256), nullable=False, index=True),
    sa.Column("run_key", sa.String(128), nullable=False, unique=True),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("claimed_by", sa.String(128), nullable=False),
    sa.Column("trigger", sa.JSON, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("source", "tick_key", name="uq_scheduler_ticks_source_tick"),
)

scheduler_cursors = sa.Table(
    "scheduler_cursors",
    metadata,
    sa.Column("source", sa.String(400), primary_key=True),
    sa.Column("position", sa.String(400), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

scheduler_leases = sa.Table(
    "scheduler_leases",
    metadata,
    sa.Column("name", sa.String(400), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=True),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("info", sa.JSON, nullable=False),
)
