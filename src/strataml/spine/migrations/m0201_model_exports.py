"""Models layer: exports of model versions to other formats (ONNX, optionally int8)."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import schema


def upgrade(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.model_exports], checkfirst=True)
