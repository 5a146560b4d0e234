"""The serving layer's catalog tables (created by migration ``m0300_serving``): API keys
(their hashes only) and deployments with their traffic configuration."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import UtcDateTime, metadata

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(256), nullable=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
