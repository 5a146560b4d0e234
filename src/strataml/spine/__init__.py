"""The spine: settings, workspace, catalog, artifact store, event log.

Every layer builds on these; they import nothing from the layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine.lazy import LazyModule, lazy_exports

if TYPE_CHECKING:
    from strataml.spine.alert_tables import monitor_alerts
    from strataml.spine.artifacts import ArtifactStore, owner_tag, sha256_file
    from strataml.spine.backends import Backend, BackendKind, scheme_of
    from strataml.spine.catalog import Catalog, utcnow
    from strataml.spine.engine import duck, quote_ident, quote_literal
    from strataml.spine.events import Event, append_event, current_actor, list_events
    from strataml.spine.faults import failpoint
    from strataml.spine.monitor_tables import monitor_log_offsets, monitor_profiles, monitor_windows
    from strataml.spine.paths import check_name, confine, confine_key
    from strataml.spine.queue import DeadLetter, Delivery, Outgoing, Queue, QueueError, open_queue
    from strataml.spine.schema import models as model_names
    from strataml.spine.settings import Settings, load_settings
    from strataml.spine.sqlite_wal import use_wal
    from strataml.spine.workspace import (
        Definitions,
        Workspace,
        find_workspace,
        load_definitions,
        user_code,
    )

_EXPORTS = {
    "ArtifactStore": "artifacts",
    "owner_tag": "artifacts",
    "sha256_file": "artifacts",
    "Backend": "backends",
    "BackendKind": "backends",
    "scheme_of": "backends",
    "Catalog": "catalog",
    "utcnow": "catalog",
    "quote_ident": "engine",
    "Event": "events",
    "append_event": "events",
    "current_actor": "events",
    "list_events": "events",
    "check_name": "paths",
    "confine": "paths",
    "confine_key": "paths",
    "Settings": "settings",
    "load_settings": "settings",
    "Definitions": "workspace",
    "Workspace": "workspace",
    "find_workspace": "workspace",
    "load_definitions": "workspace",
    "user_code": "workspace",
    "monitor_alerts": "alert_tables",
    "duck": "engine",
    "quote_literal": "engine",
    "monitor_log_offsets": "monitor_tables",
    "monitor_profiles": "monitor_tables",
    "monitor_windows": "monitor_tables",
    "model_names": "schema:models",
    "failpoint": "faults",
    "DeadLetter": "queue",
    "Delivery": "queue",
    "Outgoing": "queue",
    "Queue": "queue",
    "QueueError": "queue",
    "open_queue": "queue",
    "use_wal": "sqlite_wal",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ArtifactStore",
    "Backend",
    "BackendKind",
    "Catalog",
    "DeadLetter",
    "Definitions",
    "Delivery",
    "Event",
    "LazyModule",
    "Outgoing",
    "Queue",
    "QueueError",
    "Settings",
    "Workspace",
    "append_event",
    "check_name",
    "confine",
    "confine_key",
    "current_actor",
    "duck",
    "failpoint",
    "find_workspace",
    "lazy_exports",
    "list_events",
    "load_definitions",
    "load_settings",
    "model_names",
    "monitor_alerts",
    "monitor_log_offsets",
    "monitor_profiles",
    "monitor_windows",
    "open_queue",
    "owner_tag",
    "quote_ident",
    "quote_literal",
    "scheme_of",
    "sha256_file",
    "use_wal",
    "user_code",
    "utcnow",
]
