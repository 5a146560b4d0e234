"""Versioned catalog migrations.

Each module ``m<NNNN>_<name>.py`` in this package defines ``upgrade(conn)``; modules
run once each, in the order of their number, inside a write transaction that also
records them in ``strata_migrations``. Number ranges per layer keep layers apart:
0000-0099 spine and data, 0100 features, 0200 models, 0300 serving, 0400 monitoring,
0500 pipelines. A shipped migration is never edited; a change is a new module.
Additive migrations must be idempotent (check before adding) because the first
migration creates tables from their current definitions.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class Migration:
    """One schema step."""

    id: str
    upgrade: Callable[[sa.Connection], None]


def all_migrations() -> list[Migration]:
    """Every migration shipped with the package, in order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("m") and info.name[1:5].isdigit():
            found.append(info.name)
    out = []
    for name in sorted(found):
        module = importlib.import_module(f"{__name__}.{name}")
        out.append(Migration(id=name, upgrade=module.upgrade))
    return out


def migration_ids() -> list[str]:
    """The ids of every shipped migration without importing them."""
    return sorted(
        info.name for info in pkgutil.iter_modules(__path__) if info.name.startswith("m") and info.name[1:5].isdigit()
    )
