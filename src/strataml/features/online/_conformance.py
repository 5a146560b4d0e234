"""The properties every online store keeps (run by :func:`strataml.testing.check_online_store`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from strataml.features import OnlineStore

_ONLINE_META = {"version": "v1", "keys": ["user_id"], "features": ["a", "b"], "layout": "array",
                "as_of": "2026-01-02T00:00:00+00:00"}


def _value(**features: object) -> str:
    from strataml.features.online import encode_value

    return encode_value(["a", "b"], features | {"_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"})


def _write(store: OnlineStore, rows: dict[str, str], *, full: bool = True, meta: dict[str, Any] = _ONLINE_META,
           view: str = "v") -> None:
    token = store.begin(view, full=full)
    store.write_batch(view, token, list(rows.items()))
    store.commit(view, token, dict(meta))


def _keys(*ids: str) -> list[dict[str, Any]]:
    return [{"user_id": i} for i in ids]


def online_implements_the_protocol(store: OnlineStore) -> None:
    from strataml.features import OnlineStore

    assert isinstance(store, OnlineStore), "does not implement strataml.features.OnlineStore"


def online_unknown_views_and_keys_read_as_none(store: OnlineStore) -> None:
    assert store.get("never", _keys("u1")) == [None] and store.meta("never") is None
    _write(store, {"u1": _value(a=1, b="x")})
    assert store.get("v", _keys("nope", "u1")) == [None, {"a": 1, "b": "x"}]
    assert store.get("v", []) == []


def online_values_and_metadata_round_trip(store: OnlineStore) -> None:
    _write(store, {"u1": _value(a=1.5, b=None), "u2": _value(a=-3, b="é")})
    assert store.get("v", _keys("u2", "u1", "u2")) == [{"a": -3, "b": "é"}, {"a": 1.5, "b": None}, {"a": -3, "b": "é"}]
    full = store.get("v", _keys("u1"), with_meta=True)[0]
    assert full is not None and full["_as_of"] == "2026-01-02 00:00:00"
    assert store.meta("v") == _ONLINE_META
    assert store.views() == ["v"] and store.count("v") == 2


def online_staged_values_are_invisible_until_commit(store: OnlineStore) -> None:
    _write(store, {"u1": _value(a=1, b="old")})
    token = store.begin("v", full=True)
    store.write_batch("v", token, [("u1", _value(a=2, b="new")), ("u9", _value(a=9, b="new"))])
    assert store.get("v", _keys("u1", "u9")) == [{"a": 1, "b": "old"}, None]
    store.abort("v", token)
    assert store.get("v", _keys("u1")) == [{"a": 1, "b": "old"}] and store.count("v") == 1


def online_full_writes_replace_and_incremental_ones_merge(store: OnlineStore) -> None:
    _write(store, {"u1": _value(a=1, b="x"), "u2": _value(a=2, b="x")})
    _write(store, {"u2": _value(a=20, b="y"), "u3": _value(a=30, b="y")}, full=False, meta=_ONLINE_META | {"mode": "incremental"})
    assert store.get("v", _keys("u1", "u2", "u3")) == [{"a": 1, "b": "x"}, {"a": 20, "b": "y"}, {"a": 30, "b": "y"}]
    assert (store.meta("v") or {}).get("mode") == "incremental"
    _write(store, {"u3": _value(a=300, b="z")})
    assert store.get("v", _keys("u1", "u2", "u3")) == [None, None, {"a": 300, "b": "z"}] and store.count("v") == 1
    _write(store, {})
    assert store.get("v", _keys("u3")) == [None] and store.count("v") == 0


def online_many_keys_keep_their_order(store: OnlineStore) -> None:
    token = store.begin("v", full=True)
    items = [(f"u{i}", _value(a=i, b=str(i))) for i in range(2500)]
    for i in range(0, len(items), 700):
        store.write_batch("v", token, items[i : i + 700])
    store.commit("v", token, _ONLINE_META)
    got = store.get("v", _keys(*(f"u{i}" for i in range(2599, -1, -1))))
    assert got[:100] == [None] * 100
    assert [g["a"] if g else None for g in got[100:]] == list(range(2499, -1, -1))


def online_multi_column_keys_and_views_are_separate(store: OnlineStore) -> None:
    from strataml.features.online import encode_key

    meta = _ONLINE_META | {"keys": ["user_id", "merchant"]}
    _write(store, {encode_key(["user_id", "merchant"], {"user_id": "u1", "merchant": "m1"}): _value(a=1, b="x")}, meta=meta, view="um")
    _write(store, {"u1": _value(a=5, b="other")})
    both = [{"user_id": "u1", "merchant": "m1"}, {"user_id": "u1", "merchant": "m2"}]
    assert store.get("um", both) == [{"a": 1, "b": "x"}, None]
    assert store.get("v", _keys("u1")) == [{"a": 5, "b": "other"}]
    assert sorted(store.views()) == ["um", "v"]


def online_projection_order_unknown_features_and_meta(store: OnlineStore) -> None:
    _write(store, {"u1": _value(a=1, b="x")})
    assert store.get("v", _keys("u1", "u2"), features=["b", "zz", "a"]) == [{"b": "x", "zz": None, "a": 1}, None]
    got = store.get("v", _keys("u1"), features=["a"], with_meta=True)[0]
    assert got == {"a": 1, "_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"}


def online_an_incremental_write_with_other_features_is_refused(store: OnlineStore) -> None:
    from strataml.features.online import OnlineStoreError, encode_value

    _write(store, {"u1": _value(a=1, b="x")})
    try:
        _write(store, {"u1": encode_value(["c"], {"c": 1})}, full=False, meta=_ONLINE_META | {"features": ["c"]})
    except OnlineStoreError as exc:
        assert "different value layout" in exc.message
    else:
        raise AssertionError("an incremental write with other features was accepted")
    assert store.get("v", _keys("u1")) == [{"a": 1, "b": "x"}]


def online_values_written_as_json_objects_are_read(store: OnlineStore) -> None:
    old_meta = {k: v for k, v in _ONLINE_META.items() if k != "layout"}
    old = orjson.dumps({"a": 1, "b": "x", "_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"}).decode()
    _write(store, {"u1": old}, meta=old_meta)
    assert store.get("v", _keys("u1", "u2")) == [{"a": 1, "b": "x"}, None]
    assert store.get("v", _keys("u1"), features=["b"], with_meta=True) == [
        {"b": "x", "_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"}]


ONLINE_STORE_CHECKS: list[Callable[[Any], None]] = [
    online_implements_the_protocol,
    online_unknown_views_and_keys_read_as_none,
    online_values_and_metadata_round_trip,
    online_staged_values_are_invisible_until_commit,
    online_full_writes_replace_and_incremental_ones_merge,
    online_many_keys_keep_their_order,
    online_multi_column_keys_and_views_are_separate,
    online_projection_order_unknown_features_and_meta,
    online_an_incremental_write_with_other_features_is_refused,
    online_values_written_as_json_objects_are_read,
]


