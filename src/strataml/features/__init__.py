"""The feature store: declarative features, point-in-time training sets, an online store.

One definition serves training (:func:`build_training_set`) and serving
(:func:`get_online_features`, :func:`compute_request_features`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.features.definitions import (
        AGGREGATIONS,
        Entity,
        Feature,
        FeatureDefinitionError,
        FeatureView,
        RequestFeature,
        parse_duration,
    )
    from strataml.features.lookup import (
        ViewReader,
        compute_request_features,
        get_online_features,
        online_store,
    )
    from strataml.features.materialize import materialize
    from strataml.features.offline import TrainingSet, build_training_set
    from strataml.features.online import (
        OnlineStore,
        OnlineStoreError,
        RedisOnlineStore,
        SQLiteOnlineStore,
        open_online_store,
    )
    from strataml.features.registry import (
        FeatureError,
        FeatureInputError,
        apply,
        list_views,
        register,
        resolve_view,
        show_view,
    )
    from strataml.features.skew import check_skew

_EXPORTS = {
    "AGGREGATIONS": "definitions",
    "Entity": "definitions",
    "Feature": "definitions",
    "FeatureDefinitionError": "definitions",
    "FeatureView": "definitions",
    "RequestFeature": "definitions",
    "parse_duration": "definitions",
    "ViewReader": "lookup",
    "compute_request_features": "lookup",
    "get_online_features": "lookup",
    "online_store": "lookup",
    "materialize": "materialize",
    "TrainingSet": "offline",
    "build_training_set": "offline",
    "OnlineStore": "online",
    "OnlineStoreError": "online",
    "SQLiteOnlineStore": "online",
    "open_online_store": "online",
    "RedisOnlineStore": "online",
    "FeatureError": "registry",
    "FeatureInputError": "registry",
    "apply": "registry",
    "list_views": "registry",
    "register": "registry",
    "resolve_view": "registry",
    "show_view": "registry",
    "check_skew": "skew",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "AGGREGATIONS",
    "Entity",
    "Feature",
    "FeatureDefinitionError",
    "FeatureError",
    "FeatureInputError",
    "FeatureView",
    "OnlineStore",
    "OnlineStoreError",
    "RedisOnlineStore",
    "RequestFeature",
    "SQLiteOnlineStore",
    "TrainingSet",
    "ViewReader",
    "apply",
    "build_training_set",
    "check_skew",
    "compute_request_features",
    "get_online_features",
    "list_views",
    "materialize",
    "online_store",
    "open_online_store",
    "parse_duration",
    "register",
    "resolve_view",
    "show_view",
]
