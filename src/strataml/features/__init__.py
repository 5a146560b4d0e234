"""The feature store: declarative features, point-in-time training sets, an online store.

One definition serves training (:func:`build_training_set`) and serving
(:func:`get_online_features`, :func:`compute_request_features`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.features._definitions import (
        AGGREGATIONS,
        Entity,
        Feature,
        FeatureDefinitionError,
        FeatureView,
        RequestFeature,
        parse_duration,
    )
    from strataml.features._lookup import (
        ViewReader,
        compute_request_features,
        entity_key_types,
        get_online_features,
        online_store,
    )
    from strataml.features._materialize import materialize
    from strataml.features._offline import TrainingSet, build_training_set
    from strataml.features._registry import (
        FeatureError,
        FeatureInputError,
        apply,
        list_views,
        register,
        resolve_view,
        show_view,
    )
    from strataml.features._skew import check_skew
    from strataml.features.online import (
        OnlineStore,
        OnlineStoreError,
        RedisOnlineStore,
        SQLiteOnlineStore,
        open_online_store,
    )

_EXPORTS = {
    "entity_key_types": "_lookup",
    "AGGREGATIONS": "_definitions",
    "Entity": "_definitions",
    "Feature": "_definitions",
    "FeatureDefinitionError": "_definitions",
    "FeatureView": "_definitions",
    "RequestFeature": "_definitions",
    "parse_duration": "_definitions",
    "ViewReader": "_lookup",
    "compute_request_features": "_lookup",
    "get_online_features": "_lookup",
    "online_store": "_lookup",
    "materialize": "_materialize",
    "TrainingSet": "_offline",
    "build_training_set": "_offline",
    "OnlineStore": "online",
    "OnlineStoreError": "online",
    "SQLiteOnlineStore": "online",
    "open_online_store": "online",
    "RedisOnlineStore": "online",
    "FeatureError": "_registry",
    "FeatureInputError": "_registry",
    "apply": "_registry",
    "list_views": "_registry",
    "register": "_registry",
    "resolve_view": "_registry",
    "show_view": "_registry",
    "check_skew": "_skew",
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
    "entity_key_types",
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
