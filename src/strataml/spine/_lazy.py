"""Lazy re-exports for a package's door: a name is imported from its module on first use.

``import strataml`` and ``strata --help`` stay fast because a door names its public
objects without importing the modules (pandas, SQLAlchemy, ONNX, model code) behind them.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
from typing import Any


class LazyModule(types.ModuleType):
    """A package whose public names resolve on first access (see :func:`lazy_exports`)."""

    def __getattr__(self, name: str) -> Any:
        table: dict[str, str] = self.__dict__.get("_lazy_exports", {})
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        module, _, attr = target.partition(":")
        value = getattr(importlib.import_module(f"{self.__name__}.{module}"), attr or name)
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # Importing a submodule sets it as an attribute of its package; where the package
        # exports a function of the same name (``strataml.data.ingest``), the export wins,
        # as it did when the door imported everything eagerly.
        table: dict[str, str] = self.__dict__.get("_lazy_exports", {})
        if (
            isinstance(value, types.ModuleType)
            and name in table
            and value.__name__ == f"{self.__name__}.{name}"
        ):
            return
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(self.__dict__) | set(self.__dict__.get("_lazy_exports", {})))


def lazy_exports(package: str, table: Mapping[str, str]) -> None:
    """Make ``package`` (a door's ``__name__``) import its public names on first use.

    ``table`` maps a public name to ``"module"`` (the attribute of the same name) or
    ``"module:attribute"`` (a re-export under another name), modules relative to
    ``package``. A resolved name is cached in the package, so the lookup happens once.
    """
    module = sys.modules[package]
    module.__dict__["_lazy_exports"] = dict(table)
    module.__class__ = LazyModule
