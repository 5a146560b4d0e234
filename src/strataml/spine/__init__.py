"""The spine: settings, workspace, catalog, artifact store, event log.

Every layer builds on these; they import nothing from the layers.
"""

from strataml.spine.artifacts import ArtifactStore, sha256_file
from strataml.spine.catalog import Catalog, utcnow
from strataml.spine.events import Event, append_event, current_actor, list_events
from strataml.spine.faults import failpoint
from strataml.spine.paths import check_name, confine, confine_key
from strataml.spine.queue import DeadLetter, Delivery, Outgoing, Queue, QueueError, open_queue
from strataml.spine.settings import Settings, load_settings
from strataml.spine.sqlite_wal import use_wal
from strataml.spine.workspace import Definitions, Workspace, find_workspace, load_definitions

__all__ = [
    "ArtifactStore",
    "Catalog",
    "DeadLetter",
    "Definitions",
    "Delivery",
    "Event",
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
    "failpoint",
    "find_workspace",
    "list_events",
    "load_definitions",
    "load_settings",
    "open_queue",
    "sha256_file",
    "use_wal",
    "utcnow",
]
