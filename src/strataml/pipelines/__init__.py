"""Pipelines: queue workers (scoring requests, event ingestion) over the other layers."""

from strataml.pipelines.ledger import Ledger
from strataml.pipelines.worker import Worker, WorkerConfig, run_worker

__all__ = ["Ledger", "Worker", "WorkerConfig", "run_worker"]
