"""Declarative features: entities, feature views and the features they hold.

A :class:`FeatureView` reads one dataset (its *source*), groups rows by an
:class:`Entity`'s key and defines features of three kinds:

* row expressions (``Feature("log_amount", expr="ln(1 + amount)")``): DuckDB SQL over
  one source row, taken from the latest row strictly before the time asked about and
  within the view's ``ttl``;
* windowed aggregations (``Feature("spend_24h", agg="sum", column="amount",
  window="24h")``) over the entity's rows in ``[t - window, t)``;
* request-time features (:class:`RequestFeature`), SQL over fields of the request
  payload, computed the same way at training time (from the label row) and at
  serving time (from the request).

A view's version is the hash of its canonical definition, so changing a definition
makes a new version while training sets built from the old one stay reproducible.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strataml.data import TYPES
from strataml.errors import ConfigError
from strataml.spine import check_name, definition_hash
from strataml.spine import parse_duration as spine_duration

#: aggregation name → DuckDB aggregate (``{c}`` is the column, ``{o}`` the event order)
AGGREGATIONS: dict[str, str] = {
    "count": "count({c})",
    "sum": "sum({c})",
    "mean": "avg({c})",
    "min": "min({c})",
    "max": "max({c})",
    "stddev": "stddev_samp({c})",
    "last": "arg_max({c}, {o})",
    "count_distinct": "count(DISTINCT {c})",
}

#: request field types → DuckDB types: the same names as contract column types
FIELD_TYPES: dict[str, str] = TYPES

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FeatureDefinitionError(ConfigError):
    """A feature, view or entity definition is invalid."""


def parse_duration(value: str | int | dt.timedelta, what: str = "duration") -> int:
    """Whole seconds in a duration such as ``90s``, ``15m``, ``24h``, ``7d`` or ``2w``."""
    try:
        seconds = spine_duration(value, what)
    except ConfigError as exc:
        raise FeatureDefinitionError(exc.message, hint=exc.hint) from None
    if seconds != int(seconds):
        raise FeatureDefinitionError(f"{what} {value!r} is not a whole number of seconds", hint="feature windows and TTLs count whole seconds")
    return int(seconds)


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of a duration in seconds (``86400`` → ``1d``)."""
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _check_sql(expr: str, where: str) -> str:
    if not isinstance(expr, str) or not expr.strip():
        raise FeatureDefinitionError(f"{where}: expr must be a non-empty SQL expression")
    if ";" in expr:
        raise FeatureDefinitionError(f"{where}: expr must be one SQL expression (no ';')")
    return expr.strip()


@dataclass(frozen=True)
class Entity:
    """What features describe (a user, a card, a merchant…), identified by key column(s)."""

    __strata_kind__ = "entity"

    name: str
    keys: tuple[str, ...]
    description: str = ""

    def __init__(self, name: str, key: str | Sequence[str], *, description: str = "") -> None:
        object.__setattr__(self, "name", check_name(name, "entity name"))
        keys = (key,) if isinstance(key, str) else tuple(key)
        if not keys or not all(isinstance(k, str) and _IDENT.fullmatch(k) for k in keys):
            raise FeatureDefinitionError(f"entity {name!r}: key must be one column name or a list of column names")
        if len(set(keys)) != len(keys):
            raise FeatureDefinitionError(f"entity {name!r}: key columns {list(keys)} repeat a column")
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "description", description)

    def to_dict(self) -> dict[str, Any]:
        """The canonical definition."""
        return {"name": self.name, "keys": list(self.keys)}


@dataclass(frozen=True)
class Feature:
    """One feature of a view: a row expression (``expr``) or a windowed aggregation (``agg``)."""

    name: str
    expr: str | None = None
    agg: str | None = None
    column: str | None = None
    window: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        where = f"feature {self.name!r}"
        if not isinstance(self.name, str) or not _IDENT.fullmatch(self.name) or self.name.startswith("_"):
            raise FeatureDefinitionError(f"{where}: a feature name must be an identifier not starting with '_'")
        if (self.expr is None) == (self.agg is None):
            raise FeatureDefinitionError(f"{where}: give exactly one of expr= (row expression) or agg= (aggregation)")
        if self.expr is not None:
            object.__setattr__(self, "expr", _check_sql(self.expr, where))
            if self.window is not None or self.column is not None:
                raise FeatureDefinitionError(f"{where}: window= and column= apply to aggregations (agg=) only")
            return
        if self.agg not in AGGREGATIONS:
            raise FeatureDefinitionError(f"{where}: unknown aggregation {self.agg!r}", hint=f"use one of {', '.join(AGGREGATIONS)}")
        if self.window is None:
            raise FeatureDefinitionError(f"{where}: an aggregation needs window= (e.g. '24h', '7d')")
        seconds = parse_duration(self.window, f"{where}: window")
        object.__setattr__(self, "window", format_duration(seconds))
        if self.column is None and self.agg != "count":
            raise FeatureDefinitionError(f"{where}: aggregation {self.agg!r} needs column=")
        if self.column is not None and not _IDENT.fullmatch(self.column):
            raise FeatureDefinitionError(f"{where}: column {self.column!r} is not a column name")

    @property
    def kind(self) -> str:
        """``"expr"`` or ``"agg"``."""
        return "expr" if self.expr is not None else "agg"

    @property
    def window_seconds(self) -> int:
        """The aggregation window in seconds (0 for row expressions)."""
        return parse_duration(self.window) if self.window else 0

    def to_dict(self) -> dict[str, Any]:
        """The canonical definition."""
        if self.expr is not None:
            return {"name": self.name, "kind": "expr", "expr": self.expr}
        return {"name": self.name, "kind": "agg", "agg": self.agg, "column": self.column, "window": self.window}


@dataclass(frozen=True)
class RequestFeature:
    """A feature computed from the request payload: SQL over the declared ``fields``.

    At training time the fields are read from the label row, at serving time from the
    request; both run the same DuckDB expression (see
    :func:`strataml.features.compute_request_features`).
    """

    name: str
    expr: str
    fields: Mapping[str, str]
    description: str = ""

    def __init__(self, name: str, *, expr: str, fields: Mapping[str, str], description: str = "") -> None:
        where = f"request feature {name!r}"
        if not isinstance(name, str) or not _IDENT.fullmatch(name) or name.startswith("_"):
            raise FeatureDefinitionError(f"{where}: a feature name must be an identifier not starting with '_'")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "expr", _check_sql(expr, where))
        if not fields:
            raise FeatureDefinitionError(f"{where}: fields= must declare at least one request field and its type")
        for f, t in fields.items():
            if not _IDENT.fullmatch(f):
                raise FeatureDefinitionError(f"{where}: field {f!r} is not an identifier")
            if t not in FIELD_TYPES:
                raise FeatureDefinitionError(f"{where}: field {f!r} has unknown type {t!r}", hint=f"use one of {', '.join(FIELD_TYPES)}")
        object.__setattr__(self, "fields", dict(sorted(fields.items())))
        object.__setattr__(self, "description", description)

    @property
    def kind(self) -> str:
        """``"request"``."""
        return "request"

    def to_dict(self) -> dict[str, Any]:
        """The canonical definition."""
        return {"name": self.name, "kind": "request", "expr": self.expr, "fields": dict(self.fields)}


AnyFeature = Feature | RequestFeature


def feature_from_dict(d: Mapping[str, Any]) -> AnyFeature:
    """Rebuild a feature from its canonical definition."""
    if d["kind"] == "request":
        return RequestFeature(d["name"], expr=d["expr"], fields=d["fields"])
    if d["kind"] == "expr":
        return Feature(d["name"], expr=d["expr"])
    return Feature(d["name"], agg=d["agg"], column=d.get("column"), window=d["window"])


@dataclass(frozen=True)
class FeatureView:
    """A named group of features of one entity, computed from one source dataset.

    ``ttl`` bounds how old a source row may be for row-expression features;
    ``timestamp`` names the source's event-time column (default: the source
    contract's timestamp column). A view made only of request features needs no
    entity and no source.
    """

    __strata_kind__ = "feature_view"

    name: str
    entity: Entity | None
    source: str | None
    ttl: str | None
    features: tuple[AnyFeature, ...]
    timestamp: str | None = None
    description: str = ""

    def __init__(
        self,
        name: str,
        *,
        entity: Entity | None = None,
        source: str | None = None,
        ttl: str | int | dt.timedelta | None = None,
        features: Sequence[AnyFeature],
        timestamp: str | None = None,
        description: str = "",
    ) -> None:
        set_ = object.__setattr__
        set_(self, "name", check_name(name, "feature view name"))
        where = f"feature view {name!r}"
        feats = tuple(features)
        if not feats:
            raise FeatureDefinitionError(f"{where} declares no features")
        for f in feats:
            if not isinstance(f, Feature | RequestFeature):
                raise FeatureDefinitionError(f"{where}: {f!r} is not a st.Feature or st.RequestFeature")
        names = [f.name for f in feats]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise FeatureDefinitionError(f"{where} declares feature(s) {dupes} twice")
        needs_source = any(isinstance(f, Feature) for f in feats)
        if needs_source:
            if not isinstance(entity, Entity):
                raise FeatureDefinitionError(f"{where}: entity= must be a st.Entity")
            if not isinstance(source, str):
                raise FeatureDefinitionError(f"{where}: source= must name a dataset")
            check_name(source, f"{where}: source dataset name")
            if ttl is None and any(f.kind == "expr" for f in feats):
                raise FeatureDefinitionError(f"{where}: ttl= is required for row-expression features (e.g. ttl='30d')")
        set_(self, "entity", entity)
        set_(self, "source", source)
        set_(self, "ttl", format_duration(parse_duration(ttl, f"{where}: ttl")) if ttl is not None else None)
        set_(self, "features", feats)
        if timestamp is not None and not _IDENT.fullmatch(timestamp):
            raise FeatureDefinitionError(f"{where}: timestamp {timestamp!r} is not a column name")
        set_(self, "timestamp", timestamp)
        set_(self, "description", description)
        if entity is not None:
            clash = set(entity.keys) & set(names)
            if clash:
                raise FeatureDefinitionError(f"{where}: feature name(s) {sorted(clash)} clash with the entity key")

    # --- views of the features ---------------------------------------------------------

    @property
    def expr_features(self) -> list[Feature]:
        """Row-expression features."""
        return [f for f in self.features if isinstance(f, Feature) and f.kind == "expr"]

    @property
    def agg_features(self) -> list[Feature]:
        """Windowed aggregations."""
        return [f for f in self.features if isinstance(f, Feature) and f.kind == "agg"]

    @property
    def request_features(self) -> list[RequestFeature]:
        """Request-time features."""
        return [f for f in self.features if isinstance(f, RequestFeature)]

    @property
    def stored_features(self) -> list[Feature]:
        """The features computed from the source (and materialised online), in order."""
        return [f for f in self.features if isinstance(f, Feature)]

    def stored_view(self) -> FeatureView:
        """This view without its request features: what is materialised online."""
        if not self.request_features:
            return self
        return FeatureView(self.name, entity=self.entity, source=self.source, ttl=self.ttl,
                           features=self.stored_features, timestamp=self.timestamp)

    @property
    def ttl_seconds(self) -> int:
        """The ttl in seconds (0 when the view has none)."""
        return parse_duration(self.ttl) if self.ttl else 0

    @property
    def keys(self) -> tuple[str, ...]:
        """The entity key columns (empty for request-only views)."""
        return self.entity.keys if self.entity else ()

    def feature(self, name: str) -> AnyFeature:
        """One feature by name; a clear error lists the view's features otherwise."""
        for f in self.features:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.features)
        raise FeatureDefinitionError(f"feature view {self.name!r} has no feature {name!r} (features: {known})")

    # --- identity ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The canonical definition, from which the version is hashed."""
        return {
            "name": self.name,
            "entity": self.entity.to_dict() if self.entity else None,
            "source": self.source,
            "ttl": self.ttl,
            "timestamp": self.timestamp,
            "features": [f.to_dict() for f in self.features],
        }

    @property
    def version(self) -> str:
        """The hash of the canonical definition (16 hex digits)."""
        return definition_hash(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureView:
        """Rebuild a view from :meth:`to_dict` output (as stored in the catalog)."""
        ent = d.get("entity")
        return cls(
            d["name"],
            entity=Entity(ent["name"], key=ent["keys"]) if ent else None,
            source=d.get("source"),
            ttl=d.get("ttl"),
            features=[feature_from_dict(f) for f in d["features"]],
            timestamp=d.get("timestamp"),
        )
