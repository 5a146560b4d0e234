"""Every online store backend (SQLite always, Redis when it answers) passes strataml.testing.check_online_store;
then what the kit cannot see from one store: second clients, other processes, other writers."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strataml.errors import ConfigError, MissingExtra
from strataml.features import OnlineStore, open_online_store
from strataml.features.online import LAYOUT, encode_value
from strataml.testing import check_online_store


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], OnlineStore]]:
    """A factory of fresh, empty stores of one backend (their Redis keys are deleted afterwards)."""
    prefixes: list[str] = []
    base = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    def new() -> OnlineStore:
        if request.param == "sqlite":
            return open_online_store(f"sqlite:///{tmp_path / uuid.uuid4().hex}.db")
        prefixes.append(f"test-{uuid.uuid4().hex}:")
        return open_online_store(f"{base}{'&' if '?' in base else '?'}prefix={prefixes[-1]}")

    yield new
    if prefixes:
        client = need_redis_client(base)
        for prefix in prefixes:
            for key in client.scan_iter(match=prefix + "*"):
                client.delete(key)
        client.close()


@pytest.fixture
def store(new_store: Callable[[], OnlineStore]) -> Iterator[OnlineStore]:
    s = new_store()
    yield s
    s.close()


def need_redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def test_every_backend_conforms(new_store: Callable[[], OnlineStore]) -> None:
    check_online_store(new_store)


META = {"version": "v1", "keys": ["user_id"], "features": ["a", "b"], "layout": LAYOUT, "as_of": "2026-01-02T00:00:00+00:00"}


def value(**features: object) -> str:
    return encode_value(["a", "b"], features | {"_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"})


def write(store: OnlineStore, rows: dict[str, str], *, full: bool = True, meta: dict[str, object] = META, view: str = "v") -> None:
    token = store.begin(view, full=full)
    store.write_batch(view, token, list(rows.items()))
    store.commit(view, token, dict(meta))


def test_a_second_client_sees_commits(store: OnlineStore) -> None:
    other = open_online_store(store.url)
    try:
        assert other.get("v", [{"user_id": "u1"}]) == [None]
        write(store, {"u1": value(a=1, b="x")})
        assert other.get("v", [{"user_id": "u1"}]) == [{"a": 1, "b": "x"}]
        write(store, {"u1": value(a=2, b="x")})
        assert other.get("v", [{"user_id": "u1"}]) == [{"a": 2, "b": "x"}]
    finally:
        other.close()


def test_a_client_decodes_a_rewritten_view_with_its_new_features(store: OnlineStore) -> None:
    other = open_online_store(store.url)
    try:
        write(store, {"u1": value(a=1, b="x")})
        assert other.get("v", [{"user_id": "u1"}]) == [{"a": 1, "b": "x"}]
        c_only = META | {"version": "v2", "features": ["c"]}
        write(store, {"u1": encode_value(["c"], {"c": 3.5})}, meta=c_only)
        assert other.get("v", [{"user_id": "u1"}, {"user_id": "u1"}]) == [{"c": 3.5}, {"c": 3.5}]
        assert other.get("v", [{"user_id": "u1"}]) == [{"c": 3.5}]
    finally:
        other.close()


def test_unknown_scheme_and_missing_client_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown scheme 'memcached'"):
        open_online_store("memcached://127.0.0.1:11211")
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingExtra, match="redis") as info:
        open_online_store("redis://127.0.0.1:6379/0")
    assert "strataml[redis]" in (info.value.hint or "")


def test_a_commit_by_another_process_is_seen_within_the_recheck_interval(tmp_path: Path) -> None:
    import subprocess
    import time

    from strataml.spine._data_version import RECHECK_NS

    url = f"sqlite:///{tmp_path / 'online.db'}"
    store = open_online_store(url)
    write(store, {"u1": value(a=1, b="x")})
    assert store.get("v", [{"user_id": "u1"}]) == [{"a": 1, "b": "x"}]
    code = (
        "import sys; from strataml.features import open_online_store; from strataml.features.online import encode_value; "
        "s = open_online_store(sys.argv[1]); t = s.begin('v', full=True); "
        "s.write_batch('v', t, [('u1', encode_value(['a', 'b'], {'a': 2, 'b': 'y'}))]); "
        "s.commit('v', t, {'version': 'v1', 'keys': ['user_id'], 'features': ['a', 'b'], 'layout': 'array'})"
    )
    import os

    import strataml

    src = str(Path(strataml.__file__).parents[1])
    subprocess.run([sys.executable, "-c", code, url], check=True, env=os.environ | {"PYTHONPATH": src})
    time.sleep(2 * RECHECK_NS / 1e9)
    assert store.get("v", [{"user_id": "u1"}]) == [{"a": 2, "b": "y"}]
    store.close()


def test_other_writers_of_the_same_sqlite_file_do_not_disturb_lookups(tmp_path: Path) -> None:
    """The gateway keeps its rate-limit buckets in the online store's file: their commits
    must not make lookups lose a view."""
    import sqlite3

    store = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")
    write(store, {"u1": value(a=1, b=2)})
    other = sqlite3.connect(tmp_path / "online.db", isolation_level=None)
    other.execute("CREATE TABLE IF NOT EXISTS buckets (k TEXT PRIMARY KEY, n REAL)")
    for i in range(3):
        other.execute("INSERT OR REPLACE INTO buckets VALUES ('k', ?)", (i,))  # another writer commits
        assert store.get("v", [{"user_id": "u1"}], features=["a", "b"]) == [{"a": 1, "b": 2}]
        assert store.get("v", [{"user_id": "u1"}, {"user_id": "u9"}]) == [{"a": 1, "b": 2}, None]
    write(store, {"u1": value(a=5, b=6)})  # a real switch is still seen by an open reader
    assert store.get("v", [{"user_id": "u1"}]) == [{"a": 5, "b": 6}]
    other.close()
    store.close()
