"""The web dashboard: datasets, models, deployments, drift, quality, events and the
lineage of a prediction, as pages and charts at ``/ui`` (``strata serve`` mounts it;
``strata ui`` serves it alone), behind the gateway's API keys (``read`` scope)."""

from strataml.dashboard._app import create_dashboard, dashboard_mounts, standalone_app

__all__ = ["create_dashboard", "dashboard_mounts", "standalone_app"]
