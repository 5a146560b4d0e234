"""What the gateway answers for one request, whichever model or fallback made it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Prediction:
    """What the pipeline answers for one request."""

    model: str
    version: int
    predictions: list[Any]
    degraded: bool
    arm: str
    fallback: str | None = None
    cached: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: instance position -> features the online store had no values for (its entity is unknown)
    missing: dict[int, list[str]] | None = None
    #: the instances as completed for the model that answered, when a fallback model did (logged)
    rows: list[dict[str, Any]] | None = None
