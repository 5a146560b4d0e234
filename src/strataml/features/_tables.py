"""The features layer's catalog tables (created by migration ``m0100_features``): feature
views, their versions and the record of every materialisation."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import UtcDateTime, metadata

feature_views = sa.Table(
    "feature_views",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

feature_view_versions = sa.Table(
    "feature_view_versions",
    metadata,
    sa.Column("view", sa.String(256), sa.ForeignKey("feature_views.name"), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(256), nullable=True),
    sa.Column("source", sa.String(256), nullable=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

materializations = sa.Table(
    "materializations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("view", sa.String(256), nullable=False, index=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("store", sa.String(1024), nullable=False),
    sa.Column("source_version", sa.String(300), nullable=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("as_of", UtcDateTime(), nullable=False),
    sa.Column("watermark", UtcDateTime(), nullable=True),
    sa.Column("entities", sa.BigInteger, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
