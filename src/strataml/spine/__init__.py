"""The spine: settings, workspace, catalog, artifact store, event log.

Every layer builds on these; they import nothing from the layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine.lazy import LazyModule, lazy_exports

if TYPE_CHECKING:
    from strataml.spine.alert_tables import monitor_alerts
    from strataml.spine.artifacts import ArtifactStore, open_artifact_store, owner_tag, sha256_file
    from strataml.spine.atomic_parquet import AtomicParquet, write_parquet
    from strataml.spine.backends import Backend, BackendKind, scheme_of
    from strataml.spine.catalog import Catalog, open_catalog, utcnow
    from strataml.spine.clients import redis_client
    from strataml.spine.data_version import DataVersion
    from strataml.spine.engine import duck, one, quote_ident, quote_literal
    from strataml.spine.events import Event, append_event, current_actor, list_events
    from strataml.spine.faults import failpoint, pausepoint
    from strataml.spine.hashing import definition_hash
    from strataml.spine.monitor_tables import monitor_log_offsets, monitor_profiles, monitor_windows
    from strataml.spine.paths import check_name, confine, confine_key
    from strataml.spine.queue import DeadLetter, Delivery, Outgoing, Queue, QueueError, open_queue
    from strataml.spine.schema import models as model_names
    from strataml.spine.settings import Settings, load_settings
    from strataml.spine.sqlite_wal import use_wal
    from strataml.spine.workspace import (
        DEFINITIONS_FILE,
        Definitions,
        Workspace,
        find_workspace,
        load_definitions,
        user_code,
    )

_EXPORTS = {
    "monitor_alerts": "alert_tables",
    "ArtifactStore": "artifacts",
    "open_artifact_store": "artifacts",
    "owner_tag": "artifacts",
    "sha256_file": "artifacts",
    "AtomicParquet": "atomic_parquet",
    "write_parquet": "atomic_parquet",
    "Backend": "backends",
    "BackendKind": "backends",
    "scheme_of": "backends",
    "Catalog": "catalog",
    "open_catalog": "catalog",
    "utcnow": "catalog",
    "redis_client": "clients",
    "DataVersion": "data_version",
    "duck": "engine",
    "one": "engine",
    "quote_ident": "engine",
    "quote_literal": "engine",
    "Event": "events",
    "append_event": "events",
    "current_actor": "events",
    "list_events": "events",
    "failpoint": "faults",
    "pausepoint": "faults",
    "definition_hash": "hashing",
    "monitor_log_offsets": "monitor_tables",
    "monitor_profiles": "monitor_tables",
    "monitor_windows": "monitor_tables",
    "check_name": "paths",
    "confine": "paths",
    "confine_key": "paths",
    "model_names": "schema:models",
    "DeadLetter": "queue",
    "Delivery": "queue",
    "Outgoing": "queue",
    "Queue": "queue",
    "QueueError": "queue",
    "open_queue": "queue",
    "Settings": "settings",
    "load_settings": "settings",
    "use_wal": "sqlite_wal",
    "DEFINITIONS_FILE": "workspace",
    "Definitions": "workspace",
    "Workspace": "workspace",
    "find_workspace": "workspace",
    "load_definitions": "workspace",
    "user_code": "workspace",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DEFINITIONS_FILE",
    "ArtifactStore",
    "AtomicParquet",
    "Backend",
    "BackendKind",
    "Catalog",
    "DataVersion",
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
    "definition_hash",
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
    "one",
    "open_artifact_store",
    "open_catalog",
    "open_queue",
    "owner_tag",
    "pausepoint",
    "quote_ident",
    "quote_literal",
    "redis_client",
    "scheme_of",
    "sha256_file",
    "use_wal",
    "user_code",
    "utcnow",
    "write_parquet",
]
