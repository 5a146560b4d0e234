"""The spine: settings, workspace, catalog, artifact store, event log.

Every layer builds on these; they import nothing from the layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine._lazy import LazyModule, lazy_exports

if TYPE_CHECKING:
    from strataml.spine._artifacts import ArtifactStore, open_artifact_store, owner_tag, sha256_file
    from strataml.spine._atomic_parquet import AtomicParquet, write_parquet
    from strataml.spine._backends import Backend, BackendKind, scheme_of
    from strataml.spine._catalog import Catalog, open_catalog, utcnow
    from strataml.spine._clients import redis_client
    from strataml.spine._data_version import DataVersion
    from strataml.spine._durations import parse_duration
    from strataml.spine._engine import duck, one, quote_ident, quote_literal
    from strataml.spine._events import Event, append_event, current_actor, list_events
    from strataml.spine._faults import failpoint, pausepoint
    from strataml.spine._gc import collect as collect_garbage
    from strataml.spine._hashing import definition_hash
    from strataml.spine._paths import check_name, confine, confine_key
    from strataml.spine._processes import process_alive, process_start_time
    from strataml.spine._schema import UtcDateTime, metadata
    from strataml.spine._settings import Settings, load_settings
    from strataml.spine._sqlite_wal import use_wal
    from strataml.spine._workspace import (
        DEFINITIONS_FILE,
        Definitions,
        Workspace,
        find_workspace,
        load_definitions,
        user_code,
    )
    from strataml.spine.queue import (
        DeadLetter,
        Delivery,
        Outgoing,
        Queue,
        QueueError,
        check_queue_name,
        open_queue,
    )

_EXPORTS = {
    "collect_garbage": "_gc:collect",
    "ArtifactStore": "_artifacts",
    "open_artifact_store": "_artifacts",
    "owner_tag": "_artifacts",
    "sha256_file": "_artifacts",
    "AtomicParquet": "_atomic_parquet",
    "write_parquet": "_atomic_parquet",
    "Backend": "_backends",
    "BackendKind": "_backends",
    "scheme_of": "_backends",
    "Catalog": "_catalog",
    "open_catalog": "_catalog",
    "utcnow": "_catalog",
    "redis_client": "_clients",
    "DataVersion": "_data_version",
    "parse_duration": "_durations",
    "duck": "_engine",
    "one": "_engine",
    "quote_ident": "_engine",
    "quote_literal": "_engine",
    "Event": "_events",
    "append_event": "_events",
    "current_actor": "_events",
    "list_events": "_events",
    "failpoint": "_faults",
    "pausepoint": "_faults",
    "definition_hash": "_hashing",
    "check_name": "_paths",
    "confine": "_paths",
    "confine_key": "_paths",
    "process_alive": "_processes",
    "process_start_time": "_processes",
    "metadata": "_schema",
    "UtcDateTime": "_schema",
    "DeadLetter": "queue",
    "Delivery": "queue",
    "Outgoing": "queue",
    "Queue": "queue",
    "QueueError": "queue",
    "open_queue": "queue",
    "check_queue_name": "queue",
    "Settings": "_settings",
    "load_settings": "_settings",
    "use_wal": "_sqlite_wal",
    "DEFINITIONS_FILE": "_workspace",
    "Definitions": "_workspace",
    "Workspace": "_workspace",
    "find_workspace": "_workspace",
    "load_definitions": "_workspace",
    "user_code": "_workspace",
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
    "UtcDateTime",
    "Workspace",
    "append_event",
    "check_name",
    "check_queue_name",
    "collect_garbage",
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
    "metadata",
    "one",
    "open_artifact_store",
    "open_catalog",
    "open_queue",
    "owner_tag",
    "parse_duration",
    "pausepoint",
    "process_alive",
    "process_start_time",
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
