"""The monitoring layer's catalog tables.

``monitor_profiles`` links a dataset or model version to its stored profile artifact;
``monitor_windows`` holds one mergeable profile of live predictions per minute,
deployment, model and version; ``monitor_log_offsets`` records how far each prediction
log file has been folded into those windows (migration ``m0400_monitoring``).
``monitor_alerts`` holds one row per declared alert rule, its state (``ok`` or
``firing``) and when it last changed (migration ``m0401_alerts``); firings and
resolutions themselves are events in the event log.
"""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import UtcDateTime, metadata

monitor_profiles = sa.Table(
    "monitor_profiles",
    metadata,
    sa.Column("ref", sa.String(512), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

monitor_windows = sa.Table(
    "monitor_windows",
    metadata,
    sa.Column("deployment", sa.String(256), primary_key=True),
    sa.Column("model", sa.String(256), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),  # minutes since the Unix epoch (UTC)
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("profile", sa.LargeBinary, nullable=False),  # JSON: column name -> summary state
)

monitor_log_offsets = sa.Table(
    "monitor_log_offsets",
    metadata,
    sa.Column("file", sa.String(512), primary_key=True),
    sa.Column("offset", sa.BigInteger, nullable=False),
)

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
    sa.Column("fired_at", UtcDateTime(), nullable=True),
    sa.Column("resolved_at", UtcDateTime(), nullable=True),
    sa.Column("checked_at", UtcDateTime(), nullable=False),
)
