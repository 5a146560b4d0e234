"""The monitoring layer's public door: pinned so that a change to it is deliberate."""

import strataml.monitoring


def test_monitoring_exports() -> None:
    assert set(strataml.monitoring.__all__) == {
        "KLL_K", "MAX_CATEGORIES", "CategoricalSummary", "DriftReport", "FoldResult", "NumericSummary", "Profile", "Thresholds",
        "dataset_drift", "drift", "fold", "profile", "version_drift", "window_profile",
        # quality, SLOs and alerts
        "Alert", "AlertEvent", "AlertRule", "QualityReport", "SloReport", "check_alerts", "list_alerts", "quality", "run_monitor", "slo",
    }
    for name in strataml.monitoring.__all__:
        assert getattr(strataml.monitoring, name) is not None
