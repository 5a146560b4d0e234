"""A request's features: its instances completed with stored features from the online
store and request-time features, by the feature layer with the training definitions.

An entity the store does not know gets nulls and is reported (the gateway applies the
deployment's ``unknown_entity`` setting); an instance that sets a stored feature is
refused, as the store is the only source of stored features.
"""

from __future__ import annotations

from typing import Any

from strataml.serving._servable import InputError, Servable
from strataml.spine import Workspace

#: instances completed with their features, and the features the store lacked by instance (None: none)
Features = tuple[list[dict[str, Any]], dict[int, list[str]] | None]


class FeatureLookup:
    """The feature lookups of one workspace's servables.

    Owns the feature layer's view readers: a model version with one view of stored
    features (beside any request-time views) gets that view's reader on its first
    lookup and keeps it (resolving a view costs more than reading it) until
    :meth:`clear`. The feature layer is imported here, on creation, as
    serving loads that layer lazily."""

    def __init__(self, ws: Workspace) -> None:
        from strataml.features import (
            FeatureInputError,
            ViewReader,
            compute_request_features,
            get_online_features,
        )

        self.ws = ws
        self._input_error = FeatureInputError
        self._reader_of = ViewReader
        self._request_features = compute_request_features
        self._online_features = get_online_features
        #: per model version, the reader of its one view of stored features (None: it has several)
        self._readers: dict[tuple[str, int, str | None], Any] = {}

    def clear(self) -> None:
        """Forget the view readers (the catalog changed: views may have new versions)."""
        self._readers.clear()

    def _reader(self, s: Servable) -> Any | None:
        key = (s.name, s.version, s.sha256)
        if key not in self._readers:
            stored = [r for r in (self._reader_of(self.ws, v) for v in s.views) if r.features]
            self._readers[key] = stored[0] if len(stored) == 1 else None
        return self._readers[key]

    def __call__(self, s: Servable, instances: list[dict[str, Any]], missing: dict[int, list[str]] | None = None) -> list[dict[str, Any]]:
        """Instances completed with stored features (online store) and request-time
        features, computed by the feature layer with the same definitions as training.

        A stored feature's value comes from the store only: an instance that sets one is
        refused (InputError), as are keys or request fields the feature layer cannot use.
        An entity the store does not know gets nulls, and ``missing`` (when given)
        receives its position and the features it lacks."""
        try:
            if not s.entity_keys:
                rows = [dict(inst) for inst in instances]
            elif (reader := self._reader(s)) is not None:  # one view of stored features: one read
                stored = reader.read(instances)
                if len(stored) == 1 and (got := stored[0]) is not None:  # one known entity
                    row = {**instances[0], **got}
                    if len(row) < len(instances[0]) + len(got):  # a key in both: the request set a stored feature
                        _refuse_stored(s, instances[0], got, 0)
                    rows = [row]
                else:
                    rows = _merge(s, instances, stored, reader.features, missing)
            else:  # the instances serve as the keys: the lookup reads only their key columns
                stored = self._online_features(self.ws, s.views, instances, missing={} if missing is None else missing)
                rows = _merge(s, instances, stored, [], None)
            for view in s.request_views:
                for row, feats in zip(rows, self._request_features(view, instances), strict=True):
                    row.update(feats)
        except self._input_error as exc:
            raise InputError(exc.message, hint=exc.hint) from None
        return rows


def lookup_features(ws: Workspace, s: Servable, instances: list[dict[str, Any]], missing: dict[int, list[str]] | None = None) -> list[dict[str, Any]]:
    """One lookup (see :class:`FeatureLookup`) without keeping its readers: for batch scoring."""
    return FeatureLookup(ws)(s, instances, missing)


def _merge(s: Servable, instances: list[dict[str, Any]], stored: list[Any], features: list[str], missing: dict[int, list[str]] | None) -> list[dict[str, Any]]:
    """Each instance with its stored features (nulls, noted in ``missing``, for an unknown entity)."""
    rows = []
    for i, (inst, got) in enumerate(zip(instances, stored, strict=True)):
        if got is None:
            got = dict.fromkeys(features)
            if missing is not None:
                missing[i] = list(features)
        row = {**inst, **got}
        if len(row) < len(inst) + len(got):
            _refuse_stored(s, inst, got, i)
        rows.append(row)
    return rows


def _refuse_stored(s: Servable, inst: dict[str, Any], stored: dict[str, Any], i: int) -> None:
    both = sorted(set(inst) & set(stored))
    raise InputError(
        f"instance {i} of the request for {s.ref} sets {', '.join(repr(f) for f in both)}, which the online store provides",
        hint=f"send only the entity key(s) {list(s.entity_keys)} and request fields; stored features come from the "
             "online store (materialise the view to change them)",
        errors=[{"instance": i, "field": f, "problem": "stored feature set by the request"} for f in both],
    )
