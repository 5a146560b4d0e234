"""One registry of backends: a URL's scheme names the implementation of a kind of store.

Each kind (``online_store``, ``rate_limit``, ``response_cache``…) is a short table of
scheme → import path (``"package.module:Class"``), declared by the layer that owns the
kind. Third-party backends add schemes through the ``strataml.backends`` entry-point
group, named ``KIND:SCHEME`` (``online_store:memcached = mypkg.store:MemcachedStore``).
The URL's scheme is parsed here, once, and an implementation whose optional
dependency is missing raises :class:`~strataml.errors.MissingExtra` here, once (before its
module is imported: one class may serve several schemes with different extras, as the
artifact store does for ``s3://`` and ``gs://``).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from strataml.errors import ConfigError, MissingExtra

ENTRY_POINT_GROUP = "strataml.backends"


@dataclass(frozen=True)
class Backend:
    """An implementation of a kind of store: where it lives and the extra it needs."""

    path: str
    #: (package, extra) installed by ``pip install 'strataml[extra]'``, when it needs one
    extra: tuple[str, str] | None = None


@dataclass
class BackendKind:
    """The backends of one kind of store, chosen by a URL's scheme."""

    kind: str
    #: what the URL configures, for error messages (``setting 'online' / STRATA_ONLINE``)
    setting: str
    schemes: dict[str, Backend] = field(default_factory=dict)

    def all_schemes(self) -> dict[str, Backend]:
        """The built-in schemes plus those that installed packages register."""
        found = dict(self.schemes)
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            kind, _, scheme = ep.name.partition(":")
            if kind == self.kind and scheme and scheme not in found:
                found[scheme] = Backend(ep.value)
        return found

    def resolve(self, url: str) -> Any:
        """The implementation (usually a class) that ``url``'s scheme names."""
        scheme = scheme_of(url)
        backends = self.schemes if scheme in self.schemes else self.all_schemes()
        backend = backends.get(scheme)
        if backend is None:
            raise ConfigError(
                f"{self.kind.replace('_', ' ')} URL {safe_url(url)!r} has an unknown scheme {scheme!r}",
                hint=f"use one of {', '.join(s + '://' for s in backends)} ({self.setting})",
            )
        if backend.extra is not None and not _installed(backend.extra[0]):
            raise MissingExtra(backend.extra[0], backend.extra[1], f"the {scheme}:// {self.kind.replace('_', ' ')}")
        module, _, attr = backend.path.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            if backend.extra is None or exc.name is None or exc.name.split(".")[0] != backend.extra[0]:
                raise
            raise MissingExtra(backend.extra[0], backend.extra[1], f"the {scheme}:// {self.kind.replace('_', ' ')}") from exc


def _installed(package: str) -> bool:
    """Whether ``package`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def scheme_of(url: str) -> str:
    """The scheme of ``url`` (``""`` when it has none)."""
    return url.split("://", 1)[0].lower() if "://" in url else ""


def safe_url(url: str) -> str:
    """``url`` without its credentials, for messages."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + rest.split("@")[-1] if sep else url
