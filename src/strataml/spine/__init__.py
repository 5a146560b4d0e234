"""The spine: settings, workspace, catalog, artifact store, event log.

Every layer builds on these; they import nothing from the layers.
"""

from strataml.spine.alert_tables import monitor_alerts
from strataml.spine.artifacts import ArtifactStore, sha256_file
from strataml.spine.catalog import Catalog, utcnow
from strataml.spine.engine import duck, quote_ident, quote_literal
from strataml.spine.events import Event, append_event, current_actor, list_events
from strataml.spine.monitor_tables import monitor_log_offsets, monitor_profiles, monitor_windows
from strataml.spine.paths import check_name, confine, confine_key
from strataml.spine.settings import Settings, load_settings
from strataml.spine.workspace import Definitions, Workspace, find_workspace, load_definitions

__all__ = [
    "ArtifactStore",
    "Catalog",
    "Definitions",
    "Event",
    "Settings",
    "Workspace",
    "append_event",
    "check_name",
    "confine",
    "confine_key",
    "current_actor",
    "duck",
    "find_workspace",
    "list_events",
    "load_definitions",
    "load_settings",
    "monitor_alerts",
    "monitor_log_offsets",
    "monitor_profiles",
    "monitor_windows",
    "quote_ident",
    "quote_literal",
    "sha256_file",
    "utcnow",
]
