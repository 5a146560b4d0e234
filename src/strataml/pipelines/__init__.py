"""Pipelines: queue workers (scoring requests, event ingestion) over the other layers, and
the closed loop: retrain, gate, canary, promote or roll back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.pipelines._canary import Canary, Check, CheckResult
    from strataml.pipelines._loop import abort, advance, advance_loops, approve, start_canary
    from strataml.pipelines._loop_store import LoopRun, get_loop, list_loops
    from strataml.pipelines.ledger import Ledger
    from strataml.pipelines.worker import Worker, WorkerConfig, run_worker

_EXPORTS = {
    "Canary": "_canary",
    "Check": "_canary",
    "CheckResult": "_canary",
    "abort": "_loop",
    "advance": "_loop",
    "advance_loops": "_loop",
    "approve": "_loop",
    "start_canary": "_loop",
    "LoopRun": "_loop_store",
    "get_loop": "_loop_store",
    "list_loops": "_loop_store",
    "Ledger": "ledger",
    "Worker": "worker",
    "WorkerConfig": "worker",
    "run_worker": "worker",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Canary",
    "Check",
    "CheckResult",
    "Ledger",
    "LoopRun",
    "Worker",
    "WorkerConfig",
    "abort",
    "advance",
    "advance_loops",
    "approve",
    "get_loop",
    "list_loops",
    "run_worker",
    "start_canary",
]
