"""Conformance checks for artifact stores and catalogs (re-exported by :mod:`strataml.testing`).

Each check takes a fresh, empty instance from the factory and asserts one property every
backend keeps, whatever the scheme: content addressing, hashes verified on read, atomic
writes and confined keys for artifact stores; versioned migrations, atomic transactions,
safe concurrent writers and ordered events for catalogs.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from strataml.errors import IntegrityError, NotFound, UnsafePath
from strataml.spine._events import append_event, list_events
from strataml.spine._schema import migrations_table
from strataml.spine.migrations import migration_ids

if TYPE_CHECKING:
    from strataml.spine._artifacts import ArtifactStore
    from strataml.spine._catalog import Catalog


def run_checks(name: str, factory: Callable[[], Any], checks: list[Callable[[Any], None]]) -> None:
    """Run each check on a fresh instance, closing it after; a failure names the check."""
    for check in checks:
        backend = factory()
        try:
            check(backend)
        except AssertionError as exc:
            raise AssertionError(f"{name} {type(backend).__name__}: {check.__name__}: {exc}") from exc
        finally:
            close = getattr(backend, "close", None)
            if close is not None:
                close()


def _unique(size: int = 64) -> bytes:
    """Bytes no other check (or earlier run) stored, so caches never answer for them."""
    seed = uuid.uuid4().bytes
    return (seed * (size // len(seed) + 1))[:size]


def _raises(exc: type[Exception], call: Callable[[], object], what: str) -> None:
    try:
        call()
    except exc:
        return
    except Exception as other:
        raise AssertionError(f"{what} raised {type(other).__name__} instead of {exc.__name__}: {other}") from other
    raise AssertionError(f"{what} did not raise {exc.__name__}")


# --- artifact stores -------------------------------------------------------------------------


def artifacts_are_addressed_by_their_sha256(store: ArtifactStore) -> None:
    data = _unique(1000)
    sha = store.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest(), "the key is not the sha256 of the content"
    assert store.exists(sha), "a stored object is not found"
    assert store.read_bytes(sha) == data, "the bytes read differ from those written"
    assert store.local_path(sha).read_bytes() == data, "the local copy differs from the bytes written"
    absent = hashlib.sha256(_unique()).hexdigest()
    assert not store.exists(absent), "an object never written exists"
    _raises(NotFound, lambda: store.read_bytes(absent), "reading a missing object")


def artifacts_are_written_once(store: ArtifactStore) -> None:
    data = _unique(4096)
    first = store.put_bytes(data)
    stage = store.staging_dir()
    path = stage / "again"
    path.write_bytes(data)
    assert store.put_file(path, move=True) == first, "the same content got another key"
    assert not path.exists(), "a moved file was left behind when its content was already stored"
    assert store.read_bytes(first) == data
    objects = [p for p in store.fs.find(f"{store.root}/objects") if p.rsplit("/", 1)[-1] == first]
    assert len(objects) == 1, f"the content is stored {len(objects)} times"


def artifacts_refuse_tampered_bytes(store: ArtifactStore) -> None:
    data = _unique(2048)
    sha = store.put_bytes(data)
    key = f"{store.root}/objects/{sha[:2]}/{sha}"
    store.fs.rm(key)  # local objects are read-only: replace rather than overwrite
    store.fs.pipe_file(key, b"tampered" + data[8:])
    _raises(IntegrityError, lambda: store.read_bytes(sha), "reading tampered bytes")
    _raises(IntegrityError, lambda: store.verify(sha), "verifying tampered bytes")
    _raises(IntegrityError, lambda: store.local_path(sha), "a local path to tampered bytes")


def artifacts_writes_are_atomic(store: ArtifactStore) -> None:
    data = _unique(1 << 20)
    sha = hashlib.sha256(data).hexdigest()
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            if store.exists(sha):
                try:
                    if store.read_bytes(sha) != data:
                        errors.append("a reader saw other bytes")
                except IntegrityError:
                    errors.append("a reader saw a partial object")
                return

    def writer() -> None:
        if store.put_bytes(data) != sha:
            errors.append("a writer got another key")

    threads = [threading.Thread(target=reader)] + [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    done.set()
    threads[0].join()
    assert not errors, "; ".join(errors)
    names = [p.rsplit("/", 1)[-1] for p in store.fs.find(f"{store.root}/objects")]
    partial = [n for n in names if len(n) != 64]
    assert not partial, f"temporary files are visible among the objects: {partial}"
    assert store.read_bytes(sha) == data


def artifacts_keys_are_confined(store: ArtifactStore) -> None:
    for bad in ("../../etc/passwd", "A" * 64, "0" * 63, "/" + "0" * 63, "0" * 62 + "/.."):
        _raises(UnsafePath, partial(store.read_bytes, bad), f"reading key {bad!r}")
        _raises(UnsafePath, partial(store.exists, bad), f"looking up key {bad!r}")
        _raises(UnsafePath, partial(store.local_path, bad), f"a local path for key {bad!r}")


def check_artifact_store(new_store: Callable[[], ArtifactStore]) -> None:
    """Assert the artifact-store properties on fresh stores from ``new_store``."""
    run_checks("artifact store", new_store, [
        artifacts_are_addressed_by_their_sha256,
        artifacts_are_written_once,
        artifacts_refuse_tampered_bytes,
        artifacts_writes_are_atomic,
        artifacts_keys_are_confined,
    ])


# --- catalogs --------------------------------------------------------------------------------


def catalog_migrations_are_applied_and_versioned(catalog: Catalog) -> None:
    assert catalog.applied_migrations() == set(migration_ids()), "not every migration is recorded"
    assert catalog.migrate() == [], "migrating a migrated catalog did something"
    with catalog.read() as conn:
        rows = conn.execute(sa.select(migrations_table.c.id, migrations_table.c.applied_at)).all()
    assert sorted(r[0] for r in rows) == sorted(migration_ids()), "a migration is recorded twice or not at all"
    assert all(r[1] is not None for r in rows), "a migration has no time of application"


def catalog_transactions_are_atomic(catalog: Catalog) -> None:
    subject = uuid.uuid4().hex

    class Abort(Exception):
        pass

    try:
        with catalog.write() as conn:
            append_event(conn, "conformance.first", subject)
            append_event(conn, "conformance.second", subject)
            raise Abort
    except Abort:
        pass
    assert list_events(catalog, subject=subject) == [], "a rolled-back transaction left events"
    with catalog.write() as conn:
        append_event(conn, "conformance.first", subject)
        append_event(conn, "conformance.second", subject)
    other = type(catalog)(catalog.url, migrate=False)
    try:
        seen = [e.kind for e in list_events(other, subject=subject)]
    finally:
        other.close()
    assert seen == ["conformance.first", "conformance.second"], f"another connection sees {seen}"


def catalog_concurrent_writers_do_not_corrupt(catalog: Catalog) -> None:
    subject = uuid.uuid4().hex
    writers, each = 4, 10
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(each):
                with catalog.write() as conn:
                    append_event(conn, "conformance.concurrent", subject, {"writer": n, "i": i})
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"a writer failed: {errors[0]!r}"
    events = list_events(catalog, subject=subject, limit=None)
    assert len(events) == writers * each, f"{len(events)} events of {writers * each} were kept"
    assert len({e.id for e in events}) == len(events), "two events share an id"
    for n in range(writers):
        mine = [e.payload["i"] for e in events if e.payload["writer"] == n]
        assert mine == list(range(each)), f"writer {n}'s events are out of order: {mine}"
    assert catalog.integrity_check() == [], "the database is damaged"


def catalog_events_are_appended_in_order(catalog: Catalog) -> None:
    subject = uuid.uuid4().hex
    kinds = [f"conformance.step{i}" for i in range(5)]
    for kind in kinds:
        with catalog.write() as conn:
            append_event(conn, kind, subject, {"kind": kind})
    events = list_events(catalog, subject=subject)
    assert [e.kind for e in events] == kinds, "events are not listed in the order they were appended"
    assert [e.id for e in events] == sorted(e.id for e in events), "event ids do not grow"
    assert [e.payload for e in events] == [{"kind": k} for k in kinds], "payloads did not round-trip"
    later = list_events(catalog, subject=subject, after_id=events[1].id)
    assert [e.kind for e in later] == kinds[2:], "reading after an id does not resume there"


def check_catalog(new_catalog: Callable[[], Catalog]) -> None:
    """Assert the catalog properties on fresh, migrated catalogs from ``new_catalog``."""
    run_checks("catalog", new_catalog, [
        catalog_migrations_are_applied_and_versioned,
        catalog_transactions_are_atomic,
        catalog_concurrent_writers_do_not_corrupt,
        catalog_events_are_appended_in_order,
    ])
