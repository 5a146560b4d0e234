"""Fixtures for the gateway: a real LightGBM model trained here, a workspace, keys, a client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from starlette.testclient import TestClient

import strataml as st
from strataml.serving import (
    GatewayConfig,
    InMemoryModels,
    Servable,
    create_app,
    create_key,
    from_lightgbm,
)

FEATURES = [f"f{i}" for i in range(10)]


def train_booster(seed: int = 0, trees: int = 20) -> lgb.Booster:
    """A real binary LightGBM model over f0..f9."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, len(FEATURES)))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=400) > 0).astype(int)
    return lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": seed, "deterministic": True}, lgb.Dataset(x, y, feature_name=FEATURES), trees)


def instance(seed: int = 0) -> dict[str, Any]:
    """One valid instance."""
    rng = np.random.default_rng(seed)
    return dict(zip(FEATURES, rng.normal(size=len(FEATURES)).round(4).tolist(), strict=True))


@pytest.fixture(scope="session")
def boosters() -> tuple[lgb.Booster, lgb.Booster]:
    """Two different real models (versions 1 and 2)."""
    return train_booster(0), train_booster(1, trees=30)


@pytest.fixture
def models(boosters: tuple[lgb.Booster, lgb.Booster]) -> InMemoryModels:
    """fraud v1 (champion) and v2 (challenger)."""
    m = InMemoryModels()
    m.add(from_lightgbm("fraud", 1, boosters[0]), ["champion"])
    m.add(from_lightgbm("fraud", 2, boosters[1]), ["challenger"])
    return m


@pytest.fixture
def keys(workspace: st.Workspace) -> dict[str, str]:
    """An admin key, a key for fraud and a key for another model."""
    return {
        "admin": create_key(workspace.catalog, ["admin"])[1],
        "fraud": create_key(workspace.catalog, ["predict:fraud"])[1],
        "other": create_key(workspace.catalog, ["predict:other"])[1],
    }


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def make_client(ws: st.Workspace, models: Any, **config: Any) -> TestClient:
    """A test client over a gateway (use as a context manager to run startup/shutdown)."""
    config.setdefault("ratelimit_url", "memory://")
    return TestClient(create_app(ws, models, GatewayConfig(**config)), raise_server_exceptions=False)


@pytest.fixture
def client(workspace: st.Workspace, models: InMemoryModels) -> Iterator[TestClient]:
    with make_client(workspace, models) as c:
        yield c


def failing(name: str, version: int, booster: lgb.Booster) -> Servable:
    """A version whose predictions raise (a broken model), built on a real model's signature."""
    s = from_lightgbm(name, version, booster)

    def broken(rows: list[dict[str, Any]]) -> Any:
        raise RuntimeError("model file corrupted in memory")

    s.predict_rows = broken
    return s
