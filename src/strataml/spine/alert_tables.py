"""The alert state table (created by migration ``m0401_alerts``): one row per declared
alert rule, its state (``ok`` or ``firing``) and when it last changed. Firings and
resolutions themselves are events in the event log."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine.schema import metadata

monitor_alerts = sa.Table(
    "monitor_alerts",
    metadata,
    sa.Column("rule", sa.String(256), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
)
