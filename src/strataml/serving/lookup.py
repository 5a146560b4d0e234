"""A request's features: its instances completed with stored features from the online
store and request-time features, by the feature layer with the training definitions.

An entity the store does not know gets nulls and is reported (the gateway applies the
deployment's ``unknown_entity`` setting); an instance that sets a stored feature is
refused, as the store is the only source of stored features.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from strataml.errors import StrataError
from strataml.serving.servable import InputError, Servable
from strataml.spine import Workspace

#: instances completed with their features, and the features the store lacked by instance (None: none)
Features = tuple[list[dict[str, Any]], dict[int, list[str]] | None]


@functools.cache
def _feature_api() -> tuple[type[StrataError], Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """The feature layer's lookups, imported on first use (serving loads that layer lazily),
    then taken from here: an import statement run per request costs a few microseconds."""
    from strataml.features import (
        FeatureError,
        ViewReader,
        compute_request_features,
        get_online_features,
    )

    return FeatureError, compute_request_features, get_online_features, ViewReader


def lookup_features(ws: Workspace, s: Servable, instances: list[dict[str, Any]], missing: dict[int, list[str]] | None = None) -> list[dict[str, Any]]:
    """Instances completed with stored features (online store) and request-time features,
    computed by the feature layer with the same definitions as training.

    A stored feature's value comes from the store only: an instance that sets one is
    refused (InputError). An entity the store does not know gets nulls, and ``missing``
    (when given) receives its position and the features it lacks."""
    feature_error, compute_request_features, get_online_features, view_reader = _feature_api()
    try:
        if not s.entity_keys:
            rows = [dict(inst) for inst in instances]
        else:  # the instances serve as the keys: the lookup reads only their key columns
            if len(s.views) == 1:  # the usual model: its view's reader is resolved once per servable and workspace
                held = s.view_reader
                if held is None or held[0] is not ws:
                    held = s.view_reader = (ws, view_reader(ws, s.views[0]))
                stored = held[1].read(instances)
                if len(stored) == 1 and (got := stored[0]) is not None:  # the usual request: one known entity
                    inst = instances[0]
                    row = {**inst, **got}
                    if len(row) < len(inst) + len(got):  # a key in both: the request set a stored feature
                        _refuse_stored(s, instances, got)
                    rows = [row]
                else:
                    rows = _merge(s, instances, stored, held[1].features, missing)
            else:
                stored = get_online_features(ws, s.views, instances, missing={} if missing is None else missing)
                rows = _merge(s, instances, stored, [], None)
        for view in s.request_views:
            for row, feats in zip(rows, compute_request_features(view, instances), strict=True):
                row.update(feats)
    except feature_error as exc:
        if "key" in exc.message or "request field" in exc.message or "payload" in exc.message:
            raise InputError(exc.message, hint=exc.hint) from None
        raise
    return rows


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
            _refuse_stored(s, [inst], got, i)
        rows.append(row)
    return rows


def _refuse_stored(s: Servable, instances: list[dict[str, Any]], stored: dict[str, Any], first: int = 0) -> None:
    both = sorted(set(instances[0]) & set(stored))
    raise InputError(
        f"instance {first} of the request for {s.ref} sets {', '.join(repr(f) for f in both)}, which the online store provides",
        hint=f"send only the entity key(s) {list(s.entity_keys)} and request fields; stored features come from the "
             "online store (materialise the view to change them)",
        errors=[{"instance": first, "field": f, "problem": "stored feature set by the request"} for f in both],
    )
