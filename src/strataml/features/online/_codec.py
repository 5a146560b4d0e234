"""How online values and keys are written and read: one JSON array per entity and view.

A value holds the features in the order the view's metadata lists them
(``meta["features"]``, with ``meta["layout"] == "array"``), then ``_event_ts`` and
``_as_of``; stores written before that layout hold one JSON object per entity and are
still read. Every backend encodes and decodes through these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from strataml.errors import StrataError
from strataml.features.online._protocol import OnlineStoreError

KEY_SEP = "\x1f"
META = ("_event_ts", "_as_of")
LAYOUT = "array"  # meta["layout"] of values written as encode_value() arrays


def encode_key(key_columns: Sequence[str], key: dict[str, Any]) -> str:
    """The text form of one entity key (the same as the SQL used when materialising)."""
    if len(key_columns) == 1:
        return str(key[key_columns[0]])
    return KEY_SEP.join(str(key[k]) for k in key_columns)


def key_sql(key_columns: Sequence[str], alias: str = "") -> str:
    """DuckDB SQL giving :func:`encode_key` of a row's key columns."""
    pre = f"{alias}." if alias else ""
    parts = [f"CAST({pre}\"{k}\" AS VARCHAR)" for k in key_columns]
    return parts[0] if len(parts) == 1 else f"concat_ws(chr(31), {', '.join(parts)})"


def encode_value(features: Sequence[str], values: Mapping[str, Any]) -> str:
    """The stored form of one entity's values: a JSON array of ``features`` then the two meta fields.

    ``values`` maps feature names (and ``_event_ts`` / ``_as_of``) to values; absent
    ones are stored as nulls. The commit's metadata must list the same ``features``
    and set ``"layout": LAYOUT``.
    """
    return orjson.dumps([values.get(f) for f in (*features, *META)]).decode()


_Rows = Callable[[list[Any]], list[dict[str, Any] | None]]


class Layout:
    """How the values of one committed generation decode into dictionaries.

    Array values are turned into dictionaries by a function generated once per
    (features asked, with meta) and built from a dict display, which is several times
    faster than ``dict(zip(names, row))`` for each entity of a batch.
    """

    def __init__(self, meta: dict[str, Any]) -> None:
        self.keys: list[str] = list(meta.get("keys") or [])
        self.features: list[str] = list(meta.get("features") or [])
        self.array = meta.get("layout") == LAYOUT
        self._decoders: dict[tuple[tuple[str, ...] | None, bool], _Rows] = {}

    def rows(self, values: list[Any], features: Sequence[str] | None, with_meta: bool) -> list[dict[str, Any] | None]:
        """Each decoded value as a dictionary of ``features`` (default: all stored), ``None`` kept."""
        wanted = None if features is None or features == self.features else tuple(features)
        decode = self._decoders.get((wanted, with_meta))
        if decode is None:
            decode = self._decoders[(wanted, with_meta)] = self._decoder(wanted, with_meta)
        return decode(values)

    def _decoder(self, wanted: tuple[str, ...] | None, with_meta: bool) -> _Rows:
        names = list(self.features if wanted is None else wanted) + (list(META) if with_meta else [])
        if not self.array:
            return lambda values: [None if d is None else {n: d.get(n) for n in names} for d in values]
        where = {f: i for i, f in enumerate([*self.features, *META])}
        # names are embedded as repr() literals and positions as integers: no other text enters the code
        items = ", ".join(f"{n!r}: {f'v[{where[n]}]' if n in where else 'None'}" for n in names)
        code = f"lambda values: [None if v is None else {{{items}}} for v in values]"
        decode: _Rows = eval(code, {"__builtins__": {}})
        return decode


def check_merge(view: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Refuse an incremental write whose values are laid out unlike the ones it merges into."""
    if old is None:
        return
    if (old.get("layout"), old.get("features"), old.get("keys")) != (new.get("layout"), new.get("features"), new.get("keys")):
        raise OnlineStoreError(
            f"an incremental write of {view!r} has a different value layout (features, keys) than the stored values",
            hint="write all values again with a full write",
        )


def encode_keys(view: str, cols: list[str], keys: Sequence[dict[str, Any]]) -> list[str]:
    try:
        if len(cols) == 1:
            col = cols[0]
            return [str(k[col]) for k in keys]
        return [KEY_SEP.join([str(k[c]) for c in cols]) for k in keys]
    except KeyError:
        for k in keys:
            missing = [c for c in cols if c not in k]
            if missing:
                raise StrataError(f"key {k!r} for view {view!r} lacks column(s) {missing}", hint=f"give {cols}") from None
        raise
