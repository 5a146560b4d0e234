"""One conformance suite for every online store backend (SQLite always, Redis when it answers)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from strataml.errors import ConfigError, MissingExtra
from strataml.features import OnlineStore, open_online_store
from strataml.features.online import LAYOUT, OnlineStoreError, encode_key, encode_value


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'online.db'}"
    else:
        base = request.getfixturevalue("redis_url")
        url = f"{base}{'&' if '?' in base else '?'}prefix=test-{uuid.uuid4().hex}:"
    s = open_online_store(url)
    yield s
    if request.param == "redis":
        client = s._c()  # type: ignore[attr-defined]
        for key in client.scan_iter(match=s.prefix + "*"):  # type: ignore[attr-defined]
            client.delete(key)
    s.close()


META = {"version": "v1", "keys": ["user_id"], "features": ["a", "b"], "layout": LAYOUT, "as_of": "2026-01-02T00:00:00+00:00"}


def value(**features: object) -> str:
    return encode_value(["a", "b"], features | {"_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"})


def write(store: OnlineStore, rows: dict[str, str], *, full: bool = True, meta: dict[str, object] = META, view: str = "v") -> None:
    token = store.begin(view, full=full)
    store.write_batch(view, token, list(rows.items()))
    store.commit(view, token, dict(meta))


def test_protocol_is_implemented(store: OnlineStore) -> None:
    assert isinstance(store, OnlineStore)


def test_unknown_view_and_missing_keys_read_as_none(store: OnlineStore) -> None:
    assert store.get("never", [{"user_id": "u1"}]) == [None]
    assert store.meta("never") is None
    write(store, {"u1": value(a=1, b="x")})
    assert store.get("v", [{"user_id": "nope"}, {"user_id": "u1"}]) == [None, {"a": 1, "b": "x"}]
    assert store.get("v", []) == []


def test_values_and_metadata_round_trip(store: OnlineStore) -> None:
    write(store, {"u1": value(a=1.5, b=None), "u2": value(a=-3, b="é")})
    assert store.get("v", [{"user_id": "u2"}, {"user_id": "u1"}, {"user_id": "u2"}]) == [
        {"a": -3, "b": "é"}, {"a": 1.5, "b": None}, {"a": -3, "b": "é"}]
    full = store.get("v", [{"user_id": "u1"}], with_meta=True)[0]
    assert full is not None and full["_as_of"] == "2026-01-02 00:00:00"
    assert store.meta("v") == META
    assert store.views() == ["v"]
    assert store.count("v") == 2


def test_staged_values_are_invisible_until_commit_and_abort_keeps_the_old(store: OnlineStore) -> None:
    write(store, {"u1": value(a=1, b="old")})
    token = store.begin("v", full=True)
    store.write_batch("v", token, [("u1", value(a=2, b="new")), ("u9", value(a=9, b="new"))])
    assert store.get("v", [{"user_id": "u1"}, {"user_id": "u9"}]) == [{"a": 1, "b": "old"}, None]
    store.abort("v", token)
    assert store.get("v", [{"user_id": "u1"}]) == [{"a": 1, "b": "old"}]
    assert store.count("v") == 1


def test_full_write_replaces_and_incremental_merges(store: OnlineStore) -> None:
    write(store, {"u1": value(a=1, b="x"), "u2": value(a=2, b="x")})
    write(store, {"u2": value(a=20, b="y"), "u3": value(a=30, b="y")}, full=False, meta=META | {"mode": "incremental"})
    assert store.get("v", [{"user_id": u} for u in ("u1", "u2", "u3")]) == [
        {"a": 1, "b": "x"}, {"a": 20, "b": "y"}, {"a": 30, "b": "y"}]
    assert store.meta("v")["mode"] == "incremental"  # type: ignore[index]
    write(store, {"u3": value(a=300, b="z")})
    assert store.get("v", [{"user_id": u} for u in ("u1", "u2", "u3")]) == [None, None, {"a": 300, "b": "z"}]
    assert store.count("v") == 1


def test_an_empty_full_write_clears_the_view(store: OnlineStore) -> None:
    write(store, {"u1": value(a=1, b="x")})
    write(store, {})
    assert store.get("v", [{"user_id": "u1"}]) == [None]
    assert store.count("v") == 0


def test_many_keys_in_one_lookup_keep_their_order(store: OnlineStore) -> None:
    rows = {f"u{i}": value(a=i, b=str(i)) for i in range(2500)}
    token = store.begin("v", full=True)
    items = list(rows.items())
    for i in range(0, len(items), 700):
        store.write_batch("v", token, items[i : i + 700])
    store.commit("v", token, META)
    keys = [{"user_id": f"u{i}"} for i in range(2599, -1, -1)]
    got = store.get("v", keys)
    assert got[:100] == [None] * 100
    assert [g["a"] for g in got[100:]] == list(range(2499, -1, -1))  # type: ignore[index]


def test_multi_column_keys_and_views_are_separate(store: OnlineStore) -> None:
    meta = META | {"keys": ["user_id", "merchant"]}
    write(store, {encode_key(["user_id", "merchant"], {"user_id": "u1", "merchant": "m1"}): value(a=1, b="x")}, meta=meta, view="um")
    write(store, {"u1": value(a=5, b="other")})
    assert store.get("um", [{"user_id": "u1", "merchant": "m1"}, {"user_id": "u1", "merchant": "m2"}]) == [{"a": 1, "b": "x"}, None]
    assert store.get("v", [{"user_id": "u1"}]) == [{"a": 5, "b": "other"}]
    assert sorted(store.views()) == ["um", "v"]


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


def test_projection_order_unknown_features_and_meta(store: OnlineStore) -> None:
    write(store, {"u1": value(a=1, b="x")})
    keys = [{"user_id": "u1"}, {"user_id": "u2"}]
    assert store.get("v", keys, features=["b", "zz", "a"]) == [{"b": "x", "zz": None, "a": 1}, None]
    got = store.get("v", keys[:1], features=["a"], with_meta=True)[0]
    assert got == {"a": 1, "_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"}


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


def test_an_incremental_write_with_other_features_is_refused(store: OnlineStore) -> None:
    write(store, {"u1": value(a=1, b="x")})
    with pytest.raises(OnlineStoreError, match="different value layout"):
        write(store, {"u1": encode_value(["c"], {"c": 1})}, full=False, meta=META | {"features": ["c"]})
    assert store.get("v", [{"user_id": "u1"}]) == [{"a": 1, "b": "x"}]


def test_values_written_as_json_objects_before_the_array_layout_are_read(store: OnlineStore) -> None:
    old_meta = {k: v for k, v in META.items() if k != "layout"}
    old = orjson.dumps({"a": 1, "b": "x", "_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"}).decode()
    write(store, {"u1": old}, meta=old_meta)
    assert store.get("v", [{"user_id": "u1"}, {"user_id": "u2"}]) == [{"a": 1, "b": "x"}, None]
    assert store.get("v", [{"user_id": "u1"}], features=["b"], with_meta=True) == [
        {"b": "x", "_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"}]


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

    from strataml.spine.data_version import RECHECK_NS

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
