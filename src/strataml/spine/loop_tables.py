"""The closed loop's state table (created by migration ``m0520_loop``).

``loop_runs`` holds one row per canary analysis: the deployment, the champion and
canary versions, the rules (as data), the state of the analysis and every round of
checks it made. The row is the whole state of the loop, so a process killed during a
canary resumes the watch from it; every change to it is written in the transaction
that changes the traffic or the aliases, with its event.

``active`` holds the deployment's name while the analysis is live and NULL once it has
ended: its unique index keeps one live analysis per deployment.
"""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine.schema import metadata

loop_runs = sa.Table(
    "loop_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(256), nullable=False, index=True),
    sa.Column("deployment", sa.String(256), nullable=False, index=True),
    sa.Column("active", sa.String(256), nullable=True, unique=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("champion_version", sa.Integer, nullable=True),
    sa.Column("canary_version", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("rounds", sa.JSON, nullable=False),
    sa.Column("decision", sa.JSON, nullable=True),
    sa.Column("pipeline_run", sa.String(64), nullable=True),
    sa.Column("trigger", sa.JSON, nullable=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("watch_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("watch_limit", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("approval_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("approved_by", sa.String(256), nullable=True),
    sa.Column("bake_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
)
