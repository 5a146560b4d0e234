"""Serving-time features: online lookups and request-time features.

:func:`get_online_features` reads materialised values for many entities at once
(missing entities come back as nulls, never errors); :func:`compute_request_features`
runs a view's request-feature expressions over request payloads with exactly the SQL
used when building training sets.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from strataml.features._definitions import FeatureView, RequestFeature
from strataml.features._registry import (
    FeatureError,
    FeatureInputError,
    engine,
    resolve_source,
    resolve_view,
)
from strataml.features._sql import request_select
from strataml.features.online import OnlineStore, open_online_store
from strataml.spine import Workspace


@dataclass
class _ViewInfo:
    view: FeatureView
    key_types: dict[str, type]
    features: list[str]


class _Cache:
    def __init__(self) -> None:
        self.store: OnlineStore | None = None
        self.views: dict[str, _ViewInfo] = {}
        self.lock = threading.Lock()


_CACHES: weakref.WeakKeyDictionary[Workspace, _Cache] = weakref.WeakKeyDictionary()
_LOCAL = threading.local()


def _cache(ws: Workspace) -> _Cache:
    c = _CACHES.get(ws)
    if c is None:
        c = _CACHES.setdefault(ws, _Cache())
    return c


def online_store(ws: Workspace) -> OnlineStore:
    """The workspace's online store (setting ``online`` / ``STRATA_ONLINE``), opened once."""
    c = _cache(ws)
    with c.lock:
        if c.store is None:
            c.store = open_online_store(ws.resolve_url(ws.settings.online))
        return c.store


def entity_key_types(ws: Workspace, view: str) -> dict[str, type]:
    """The Python type of each entity key column of ``view`` (``int`` or ``str``), as stored."""
    return dict(_info(ws, view).key_types)


def _info(ws: Workspace, ref: str, c: _Cache | None = None) -> _ViewInfo:
    c = c or _cache(ws)
    info = c.views.get(ref)
    if info is None:
        view = resolve_view(ws, ref)
        types: dict[str, type] = {}
        if view.stored_features:
            src = resolve_source(ws, view)  # checks the view against the source's schema (reads no data)
            types = {k: str if src.types[k] == "VARCHAR" else int for k in view.keys}
        info = c.views[ref] = _ViewInfo(view, types, [f.name for f in view.stored_features])
    return info


def _check_keys(info: _ViewInfo, keys: Sequence[Mapping[str, Any]]) -> None:
    if len(info.key_types) == 1:  # the common case, checked in one pass
        ((col, typ),) = info.key_types.items()
        try:
            if all(type(key[col]) is typ for key in keys):
                return
        except KeyError:
            pass  # reported below
    for i, key in enumerate(keys):
        for col, typ in info.key_types.items():
            value = key.get(col)
            if type(value) is typ:  # the common case, checked fast
                continue
            if col not in key:
                raise FeatureInputError(
                    f"key #{i} {repr(dict(key))[:200]} lacks {col!r}, a key column of feature view {info.view.name!r}",
                    hint=f"give every key as {{{', '.join(repr(k) + ': …' for k in info.key_types)}}}",
                )
            if not isinstance(value, typ) or isinstance(value, bool):
                raise FeatureInputError(
                    f"key #{i}: {col}={value!r} is of type {type(value).__name__}, but feature view {info.view.name!r} "
                    f"keys {col!r} as {'a string' if typ is str else 'an integer'}",
                    hint="pass the key with the source column's type",
                )


class ViewReader:
    """One feature view's stored features, resolved once (the view, its key types and the
    store): a call checks the keys and makes one store read. :func:`get_online_features`
    makes one per call; a serving path keeps one and skips resolving them per request."""

    __slots__ = ("_col", "_info", "_name", "_store", "_type", "features")

    def __init__(self, ws: Workspace, view: str, store: OnlineStore | None = None) -> None:
        cache = _cache(ws)
        self._info = _info(ws, view, cache)
        self._store = store or cache.store or online_store(ws)
        self._name = self._info.view.name
        self.features = self._info.features
        keyed = list(self._info.key_types.items())
        self._col: str | None = keyed[0][0] if len(keyed) == 1 else None
        self._type: type | None = keyed[0][1] if len(keyed) == 1 else None

    def read(self, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
        """Each key's features, in order; None for an entity the store does not know."""
        feats = self.features
        if not feats:
            return [{} for _ in keys]
        if not (len(keys) == 1 and self._col is not None and type(keys[0].get(self._col)) is self._type):
            _check_keys(self._info, keys)  # anything but one well-typed key: the full check, with its errors
        return self._store.get(self._name, keys, features=feats)  # type: ignore[arg-type]

    def __call__(self, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Each key's features, in order; nulls where nothing is stored."""
        found = self.read(keys)
        feats = self.features
        if len(found) == 1:  # one key (a serving request), without a comprehension
            return [found[0] if found[0] is not None else dict.fromkeys(feats)]
        return [g if g is not None else dict.fromkeys(feats) for g in found]


def get_online_features(
    ws: Workspace,
    views: Sequence[str],
    keys: Sequence[Mapping[str, Any]],
    *,
    full_names: bool = False,
    store: OnlineStore | None = None,
    missing: dict[int, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Each key's materialised features of ``views``, in order; nulls where nothing is stored.

    Keys are dictionaries of entity key columns (``{"user_id": "u1"}``); a key of the
    wrong type or missing a column is an error. Request features are not stored; see
    :func:`compute_request_features`. ``missing``, when given, receives for each key
    (by position) whose entity a view does not know the names of the features it lacks.
    """
    if len(views) == 1 and not full_names and missing is None:  # no merging needed
        return ViewReader(ws, views[0], store)(keys)
    cache = _cache(ws)
    st = store or cache.store or online_store(ws)
    out: list[dict[str, Any]] = [{} for _ in keys]
    seen: dict[str, str] = {}
    for ref in views:
        info = _info(ws, ref, cache)
        view = info.view
        feats = info.features
        if not feats:
            continue
        _check_keys(info, keys)
        cols = [f"{view.name}__{f}" if full_names else f for f in feats]
        for c in cols:
            if c in seen:
                raise FeatureError(f"feature {c!r} is in both {seen[c]!r} and {view.name!r}", hint="use full_names=True")
            seen[c] = view.name
        values = st.get(view.name, keys, features=feats)  # type: ignore[arg-type]
        for i, (row, got) in enumerate(zip(out, values, strict=True)):
            if got is None:
                row.update(dict.fromkeys(cols))
                if missing is not None:
                    missing.setdefault(i, []).extend(cols)
            else:
                row.update(zip(cols, got.values(), strict=True))
    return out


def _con() -> duckdb.DuckDBPyConnection:
    con: duckdb.DuckDBPyConnection | None = getattr(_LOCAL, "con", None)
    if con is None:
        con = _LOCAL.con = engine()
    return con


def compute_request_features(
    view_or_features: FeatureView | RequestFeature | Sequence[RequestFeature],
    payload_rows: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Request-time feature values for each payload row (the training-time SQL, in DuckDB).

    Each row must hold the fields the features declare (missing fields are null).
    """
    if isinstance(view_or_features, FeatureView):
        feats = view_or_features.request_features
    elif isinstance(view_or_features, RequestFeature):
        feats = [view_or_features]
    else:
        feats = list(view_or_features)
    if not feats or not payload_rows:
        return [{} for _ in payload_rows]
    fields = sorted({f for rf in feats for f in rf.fields})
    columns = {}
    for name in fields:
        values = [row.get(name) for row in payload_rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise FeatureInputError(f"request field {name!r} holds values of mixed types: {exc}") from exc
    payload = pa.table(columns)
    con = _con()
    try:
        con.register("_payload", payload)
        table = con.sql(request_select(feats, "_payload")).to_arrow_table()
    except duckdb.Error as exc:
        raise FeatureInputError(
            f"request features {[f.name for f in feats]} failed on the payload: {str(exc).splitlines()[0]}",
            hint=f"send fields {', '.join(f'{n}: {t}' for rf in feats for n, t in rf.fields.items())}",
        ) from exc
    finally:
        con.unregister("_payload")
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows
