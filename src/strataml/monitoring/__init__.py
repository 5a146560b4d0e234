"""Monitoring: profiles of datasets, model versions and live traffic, and drift between them.

A model version's reference profile is built by monitoring on first use (the models
layer cannot import monitoring; training records what profiling needs) and stored;
live predictions are folded incrementally from the prediction log into per-minute
window profiles. See the README's "Monitoring" section for the tests, the correction
for multiple testing (Benjamini-Hochberg), the defaults and where figures are
approximate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.monitoring._alerts import (
        Alert,
        AlertEvent,
        AlertRule,
        check_alerts,
        list_alerts,
        run_monitor,
        set_alert,
    )
    from strataml.monitoring._drift import dataset_drift, drift, version_drift
    from strataml.monitoring._lineage import prediction_lineage
    from strataml.monitoring._profiles import Profile, profile
    from strataml.monitoring._quality import QualityReport, quality
    from strataml.monitoring._sketches import (
        KLL_K,
        MAX_CATEGORIES,
        CategoricalSummary,
        NumericSummary,
    )
    from strataml.monitoring._slo import SloReport, failures_sql, live_requests_sql, slo
    from strataml.monitoring._stats import DriftReport, Thresholds
    from strataml.monitoring._windows import FoldResult, fold, window_profile

_EXPORTS = {
    "Alert": "_alerts",
    "AlertEvent": "_alerts",
    "AlertRule": "_alerts",
    "check_alerts": "_alerts",
    "list_alerts": "_alerts",
    "run_monitor": "_alerts",
    "set_alert": "_alerts",
    "dataset_drift": "_drift",
    "drift": "_drift",
    "version_drift": "_drift",
    "prediction_lineage": "_lineage",
    "Profile": "_profiles",
    "profile": "_profiles",
    "QualityReport": "_quality",
    "quality": "_quality",
    "KLL_K": "_sketches",
    "MAX_CATEGORIES": "_sketches",
    "CategoricalSummary": "_sketches",
    "NumericSummary": "_sketches",
    "SloReport": "_slo",
    "slo": "_slo",
    "failures_sql": "_slo",
    "live_requests_sql": "_slo",
    "DriftReport": "_stats",
    "Thresholds": "_stats",
    "FoldResult": "_windows",
    "fold": "_windows",
    "window_profile": "_windows",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "KLL_K",
    "MAX_CATEGORIES",
    "Alert",
    "AlertEvent",
    "AlertRule",
    "CategoricalSummary",
    "DriftReport",
    "FoldResult",
    "NumericSummary",
    "Profile",
    "QualityReport",
    "SloReport",
    "Thresholds",
    "check_alerts",
    "dataset_drift",
    "drift",
    "failures_sql",
    "fold",
    "list_alerts",
    "live_requests_sql",
    "prediction_lineage",
    "profile",
    "quality",
    "run_monitor",
    "set_alert",
    "slo",
    "version_drift",
    "window_profile",
]
