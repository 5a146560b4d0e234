"""The feature store: declarative features, point-in-time training sets, an online store.

One definition serves training (:func:`build_training_set`) and serving
(:func:`get_online_features`, :func:`compute_request_features`).
"""

from strataml.features.definitions import (
    AGGREGATIONS,
    Entity,
    Feature,
    FeatureDefinitionError,
    FeatureView,
    RequestFeature,
    parse_duration,
)
from strataml.features.offline import TrainingSet, build_training_set
from strataml.features.registry import FeatureError, apply, list_views, register, resolve_view, show_view

__all__ = [
    "AGGREGATIONS",
    "Entity",
    "Feature",
    "FeatureDefinitionError",
    "FeatureError",
    "FeatureView",
    "RequestFeature",
    "TrainingSet",
    "apply",
    "build_training_set",
    "list_views",
    "parse_duration",
    "register",
    "resolve_view",
    "show_view",
]
