"""Pipelines: queue workers, schedules and triggers over the other layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.pipelines._schedule import Schedule
    from strataml.pipelines.ledger import Ledger
    from strataml.pipelines.worker import Worker, WorkerConfig, run_worker

_EXPORTS = {
    "Schedule": "_schedule",
    "Ledger": "ledger",
    "Worker": "worker",
    "WorkerConfig": "worker",
    "run_worker": "worker",
}
lazy_exports(__name__, _EXPORTS)

__all__ = ["Ledger", "Schedule", "Worker", "WorkerConfig", "run_worker"]
