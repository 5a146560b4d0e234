"""Versioned catalog migrations, each owned by the layer whose tables it creates.

A migration is a module ``m<NNNN>_<name>.py`` defining ``upgrade(conn)``, in one of the
packages of :data:`PACKAGES`: the spine's own (this package) and one ``_migrations``
package per layer, next to the layer's ``_tables`` module. The spine names those
packages as strings and finds their modules on disk, so it imports no layer; a layer
without migrations simply has no such package. Migrations run once each, in the order
of their number across all packages, inside a write transaction that also records them
in ``strata_migrations`` under their module name (the id, which never changes when a
module moves between packages). Number ranges keep layers apart: 0000-0099 data,
0100 features, 0200 models, 0300 serving, 0400 monitoring, 0500 pipelines. A shipped
migration is never edited; a change is a new module. Additive migrations must be
idempotent (check before adding) because the first migration of a layer creates its
tables from their current definitions.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from strataml.errors import StrataError

#: the packages migrations are found in, as import names (never imported to list them)
PACKAGES: tuple[str, ...] = (
    __name__,
    "strataml.data._migrations",
    "strataml.features._migrations",
    "strataml.models._migrations",
    "strataml.serving._migrations",
    "strataml.monitoring._migrations",
    "strataml.pipelines._migrations",
)


@dataclass(frozen=True)
class Migration:
    """One schema step."""

    id: str
    upgrade: Callable[[sa.Connection], None]


def _package_dirs(package: str) -> list[str]:
    """The folders of ``package`` found below its top-level package, without importing it."""
    top, _, rest = package.partition(".")
    spec = importlib.util.find_spec(top)
    bases = list(spec.submodule_search_locations or []) if spec is not None else []
    return [
        str(d) for d in (Path(b, *rest.split(".")) for b in bases) if (d / "__init__.py").is_file()
    ]


def _found() -> dict[str, str]:
    """Every migration id → the package holding it."""
    out: dict[str, str] = {}
    for package in PACKAGES:
        for info in pkgutil.iter_modules(_package_dirs(package)):
            if not (info.name.startswith("m") and info.name[1:5].isdigit()):
                continue
            if info.name in out and out[info.name] != package:
                raise StrataError(
                    f"migration {info.name} is in both {out[info.name]} and {package}",
                    hint="a migration id is its module name and must be unique across the layers",
                )
            out[info.name] = package
    return out


def all_migrations() -> list[Migration]:
    """Every migration shipped with the package, in order."""
    found = _found()
    return [
        Migration(id=name, upgrade=importlib.import_module(f"{found[name]}.{name}").upgrade)
        for name in sorted(found)
    ]


def migration_ids() -> list[str]:
    """The ids of every shipped migration without importing them."""
    return sorted(_found())
