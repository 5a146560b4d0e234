import multiprocessing as mp
from pathlib import Path

import pytest
import sqlalchemy as sa

from strataml.errors import CatalogError
from strataml.spine import Catalog, append_event, list_events, open_catalog
from strataml.spine.migrations import migration_ids


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    cat = Catalog(url)
    assert cat.applied_migrations() == set(migration_ids())
    assert Catalog(url).migrate() == []  # nothing left to do


#: migrations shipped before each layer held its own: their ids are recorded in existing
#: catalogs and must keep their names wherever the modules live
SHIPPED = ["m0001_spine_data", "m0100_features", "m0200_models", "m0201_model_exports", "m0300_serving",
           "m0400_monitoring", "m0401_alerts"]


def test_each_layer_owns_its_migrations_under_stable_ids() -> None:
    from strataml.spine import migrations

    ids = migration_ids()
    assert ids == sorted(ids) and set(SHIPPED) <= set(ids)
    found = {m.id: m.upgrade.__module__ for m in migrations.all_migrations()}
    assert [m for m in found if m in SHIPPED] == SHIPPED  # in number order across the layers
    assert found["m0200_models"] == "strataml.models._migrations.m0200_models"
    assert found["m0401_alerts"] == "strataml.monitoring._migrations.m0401_alerts"
    # a package listed for a layer that has no migrations (yet) is simply empty
    assert "strataml.pipelines._migrations" in migrations.PACKAGES


def test_a_migration_id_in_two_packages_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from strataml.errors import StrataError
    from strataml.spine import migrations

    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
        (tmp_path / name / "m0900_same.py").write_text("def upgrade(conn):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(migrations, "PACKAGES", ("one", "two"))
    with pytest.raises(StrataError, match="m0900_same is in both one and two"):
        migration_ids()


def test_sqlite_is_wal_with_full_sync(tmp_path: Path) -> None:
    cat = Catalog(f"sqlite:///{tmp_path}/c.db")
    with cat.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    assert cat.integrity_check() == []


def _open(url: str) -> int:
    Catalog(url)
    return 0


def test_concurrent_first_open_migrates_safely(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    with mp.get_context("spawn").Pool(4) as pool:
        assert pool.map(_open, [url] * 8) == [0] * 8
    assert Catalog(url).applied_migrations() == set(migration_ids())


def test_write_is_atomic(tmp_path: Path) -> None:
    cat = Catalog(f"sqlite:///{tmp_path}/c.db")
    with pytest.raises(RuntimeError), cat.write() as conn:
        append_event(conn, "test.one", "x")
        raise RuntimeError("boom")
    assert list_events(cat, kind="test.") == []
    with cat.write() as conn:
        append_event(conn, "test.one", "x", {"n": 1})
    [e] = list_events(cat, kind="test.")
    assert e.kind == "test.one" and e.payload == {"n": 1} and e.actor


def test_unreachable_catalog_is_a_clear_error() -> None:
    with pytest.raises(CatalogError, match="cannot open catalog") as err:
        Catalog("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(err.value)


def test_events_filter_and_limit(tmp_path: Path) -> None:
    cat = Catalog(f"sqlite:///{tmp_path}/c.db")
    with cat.write() as conn:
        for i in range(5):
            append_event(conn, "dataset.version_created", f"d{i % 2}", {"i": i})
        append_event(conn, "contract.registered", "c")
    assert [e.payload["i"] for e in list_events(cat, kind="dataset.", limit=2)] == [3, 4]
    assert len(list_events(cat, subject="d0")) == 3
    assert [e.kind for e in list_events(cat, kind="contract")] == ["contract.registered"]


@pytest.mark.postgres
def test_postgres_catalog(postgres_url: str) -> None:
    schema_name = "strata_test_catalog"
    admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema_name}"))
    url = postgres_url + f"?options=-csearch_path%3D{schema_name}"
    try:
        cat = Catalog(url)
        assert cat.applied_migrations() == set(migration_ids())
        assert Catalog(url).migrate() == []
        with cat.write() as conn:
            append_event(conn, "test.pg", "x", {"ok": True})
        assert list_events(cat, kind="test.pg")[0].payload == {"ok": True}
        cat.close()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE"))
        admin.dispose()


def test_postgres_without_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from strataml.errors import MissingExtra

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtra, match=r"pip install 'strataml\[postgres\]'"):
        open_catalog("postgresql://127.0.0.1/test", migrate=False)
