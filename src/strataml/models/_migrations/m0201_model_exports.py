"""Models layer: exports of model versions to other formats (ONNX, optionally int8)."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.models._tables import model_exports
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[model_exports], checkfirst=True)
