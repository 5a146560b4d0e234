"""The catalog: one SQLAlchemy engine over SQLite (default) or PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed transaction
survives a crash, and write transactions start with ``BEGIN IMMEDIATE`` so that two
writers never interleave. Migrations are applied on open, under a lock, once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from strataml.errors import CatalogError
from strataml.spine import _schema as schema
from strataml.spine._backends import Backend, BackendKind
from strataml.spine._sqlite_wal import use_wal
from strataml.spine.migrations import all_migrations, migration_ids


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (the catalog's only clock)."""
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _begin)
    cur = dbapi_conn.cursor()
    use_wal(cur, 60)
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("strata_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


_CATALOG = "strataml.spine._catalog:Catalog"
#: the catalog backends, by URL scheme
BACKENDS = BackendKind(
    "catalog",
    "setting 'catalog' / STRATA_CATALOG",
    {
        "sqlite": Backend(_CATALOG),
        "postgresql": Backend(_CATALOG, ("psycopg", "postgres")),
        "postgresql+psycopg": Backend(_CATALOG, ("psycopg", "postgres")),
    },
)


def open_catalog(url: str, *, migrate: bool = True) -> Catalog:
    """The catalog a URL names (``sqlite:///…`` or ``postgresql://…``), migrated unless told not to."""
    catalog: Catalog = BACKENDS.resolve(url)(url, migrate=migrate)
    return catalog


class Catalog:
    """Transactions over the catalog database (open one with :func:`open_catalog`).

    ``write()`` opens a serialised write transaction; ``read()`` a consistent read.
    Everything written inside one ``write()`` block commits together or not at all.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
        elif self.dialect == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            kwargs["pool_pre_ping"] = True
        try:
            self.engine = sa.create_engine(parsed, **kwargs)
        except Exception as exc:  # bad URL, unknown driver
            raise CatalogError(f"cannot open catalog {self.safe_url}: {exc}") from exc
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        self._lock = threading.Lock()
        self.commits = 0
        """Write transactions this object committed (lets watchers see this process's changes at once)."""
        if migrate:
            self.migrate()

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction: serialised with other writers, atomic."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(strata_write=True)
                with conn.begin():
                    yield conn
            self.commits += 1
        except sa.exc.OperationalError as exc:
            raise CatalogError(
                f"catalog {self.safe_url} could not be written: {exc.orig}",
                hint="check that the database is reachable and not locked by a stuck process",
            ) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only transaction with a consistent snapshot."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except sa.exc.OperationalError as exc:
            raise CatalogError(f"catalog {self.safe_url} could not be read: {exc.orig}") from exc

    # --- migrations ----------------------------------------------------------------

    def applied_migrations(self) -> set[str]:
        """Ids of migrations already recorded in this catalog."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(schema.migrations_table.name):
                return set()
            return {r[0] for r in conn.execute(sa.select(schema.migrations_table.c.id))}

    def migrate(self) -> list[str]:
        """Apply every pending migration; safe to call from many processes at once."""
        try:
            if set(migration_ids()) <= self.applied_migrations():
                return []
            done: list[str] = []
            with self.write() as conn:
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7301)"))
                schema.metadata.create_all(conn, tables=[schema.migrations_table])
                applied = {r[0] for r in conn.execute(sa.select(schema.migrations_table.c.id))}
                for m in all_migrations():
                    if m.id in applied:
                        continue
                    m.upgrade(conn)
                    conn.execute(schema.migrations_table.insert().values(id=m.id, applied_at=utcnow()))
                    done.append(m.id)
            return done
        except sa.exc.OperationalError as exc:
            raise CatalogError(
                f"cannot open catalog {self.safe_url}: {exc.orig}",
                hint="check the 'catalog' setting (STRATA_CATALOG) and that the database server is running",
            ) from exc

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold a named lock across processes (and hosts, on PostgreSQL) for a long write.

        SQLite catalogs use an advisory file lock next to the database; PostgreSQL uses a
        session advisory lock, so writers on different machines serialise too.
        """
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": name})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": name})
                    conn.commit()
            return
        import fcntl
        import hashlib

        database = make_url(self.url).database
        if not database or database == ":memory:":
            with self._lock:
                yield
            return
        folder = Path(database).parent / "locks"
        folder.mkdir(exist_ok=True)
        path = folder / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
        with open(path, "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def integrity_check(self) -> list[str]:
        """Problems found in the database file (empty when healthy)."""
        if self.dialect != "sqlite":
            return []
        with self.engine.connect() as conn:
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
            rows += [str(r) for r in conn.exec_driver_sql("PRAGMA foreign_key_check")]
        return [] if rows == ["ok"] else rows

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()
