"""The artifact store and the catalog pass the public conformance kit on every backend:
local folder and S3 (a local S3 server) for artifacts, SQLite and PostgreSQL for the catalog."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from strataml.errors import ConfigError, MissingExtra
from strataml.spine import ArtifactStore, Catalog, open_artifact_store, open_catalog
from strataml.testing import check_artifact_store, check_catalog


def test_local_artifact_store_conforms(tmp_path: Path) -> None:
    check_artifact_store(lambda: open_artifact_store(str(tmp_path / uuid.uuid4().hex), cache_dir=tmp_path / "cache"))


@pytest.mark.s3
def test_s3_artifact_store_conforms(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    bucket = f"conformance-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    monkeypatch.setenv("STRATA_S3_ENDPOINT", s3_endpoint)
    check_artifact_store(lambda: open_artifact_store(f"s3://{bucket}/{uuid.uuid4().hex}", cache_dir=tmp_path / "cache"))


def test_sqlite_catalog_conforms(tmp_path: Path) -> None:
    check_catalog(lambda: open_catalog(f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.db"))


@pytest.fixture
def pg_schemas(postgres_url: str) -> Iterator[list[str]]:
    """Schemas made for fresh PostgreSQL catalogs, dropped afterwards."""
    made: list[str] = []
    yield made
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for name in made:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
    engine.dispose()


@pytest.mark.postgres
def test_postgres_catalog_conforms(postgres_url: str, pg_schemas: list[str]) -> None:
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))

    def fresh() -> Catalog:
        name = f"conformance_{uuid.uuid4().hex[:12]}"
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {name}"))
        pg_schemas.append(name)
        return open_catalog(postgres_url + f"?options=-csearch_path%3D{name}")

    try:
        check_catalog(fresh)
    finally:
        engine.dispose()


def test_the_registry_chooses_by_scheme(tmp_path: Path) -> None:
    assert isinstance(open_artifact_store(str(tmp_path / "a")), ArtifactStore)
    assert isinstance(open_artifact_store(f"file://{tmp_path}/b"), ArtifactStore)
    with pytest.raises(ConfigError, match="unknown scheme 'ftp'") as info:
        open_artifact_store("ftp://host/x")
    assert "STRATA_ARTIFACTS" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="unknown scheme 'mysql'") as info:
        open_catalog("mysql://host/db")
    assert "STRATA_CATALOG" in (info.value.hint or "")


def test_a_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the package were not installed
    with pytest.raises(MissingExtra) as info:
        open_catalog("postgresql://postgres@127.0.0.1/none")
    assert "pip install 'strataml[postgres]'" in str(info.value)
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    with pytest.raises(MissingExtra) as info:
        open_artifact_store("gs://bucket/prefix")
    assert "pip install 'strataml[gcs]'" in str(info.value)
