"""The monitoring layer's catalog tables (created by migration ``m0400_monitoring``).

``monitor_profiles`` links a dataset or model version to its stored profile artifact;
``monitor_windows`` holds one mergeable profile of live predictions per minute,
deployment, model and version; ``monitor_log_offsets`` records how far each prediction
log file has been folded into those windows.
"""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine.schema import metadata

monitor_profiles = sa.Table(
    "monitor_profiles",
    metadata,
    sa.Column("ref", sa.String(512), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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
