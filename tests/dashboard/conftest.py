"""Fixtures for the dashboard: one populated workspace for the session, and a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import strataml as st
from strataml.dashboard import standalone_app

from .setup_ws import populate


@pytest.fixture(scope="session")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[st.Workspace, dict[str, Any]]]:
    ws = st.Workspace.init(Path(tmp_path_factory.mktemp("dash")) / "ws", example=False)
    facts = populate(ws)
    yield ws, facts
    ws.close()


@pytest.fixture
def client(dash: tuple[st.Workspace, dict[str, Any]]) -> Iterator[TestClient]:
    with TestClient(standalone_app(dash[0]), follow_redirects=False) as c:
        yield c
