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
    from strataml.monitoring._lineage import prediction_lineage
    from strataml.monitoring.alerts import (
        Alert,
        AlertEvent,
        AlertRule,
        check_alerts,
        list_alerts,
        run_monitor,
    )
    from strataml.monitoring.drift import dataset_drift, drift, version_drift
    from strataml.monitoring.profiles import Profile, profile
    from strataml.monitoring.quality import QualityReport, quality
    from strataml.monitoring.sketches import (
        KLL_K,
        MAX_CATEGORIES,
        CategoricalSummary,
        NumericSummary,
    )
    from strataml.monitoring.slo import SloReport, slo
    from strataml.monitoring.stats import DriftReport, Thresholds
    from strataml.monitoring.windows import FoldResult, fold, window_profile

_EXPORTS = {
    "Alert": "alerts",
    "AlertEvent": "alerts",
    "AlertRule": "alerts",
    "check_alerts": "alerts",
    "list_alerts": "alerts",
    "run_monitor": "alerts",
    "dataset_drift": "drift",
    "drift": "drift",
    "version_drift": "drift",
    "prediction_lineage": "_lineage",
    "Profile": "profiles",
    "profile": "profiles",
    "QualityReport": "quality",
    "quality": "quality",
    "KLL_K": "sketches",
    "MAX_CATEGORIES": "sketches",
    "CategoricalSummary": "sketches",
    "NumericSummary": "sketches",
    "SloReport": "slo",
    "slo": "slo",
    "DriftReport": "stats",
    "Thresholds": "stats",
    "FoldResult": "windows",
    "fold": "windows",
    "window_profile": "windows",
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
    "fold",
    "list_alerts",
    "prediction_lineage",
    "profile",
    "quality",
    "run_monitor",
    "slo",
    "version_drift",
    "window_profile",
]
