"""What every online-store backend implements (:class:`OnlineStore`) and the error it raises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from strataml.errors import StrataError


class OnlineStoreError(StrataError):
    """The online store cannot be reached or written."""



@runtime_checkable
class OnlineStore(Protocol):
    """What every online store backend provides."""

    url: str

    def open(self) -> None:
        """Connect (idempotent)."""

    def close(self) -> None:
        """Release connections."""

    def begin(self, view: str, *, full: bool) -> str:
        """Start a staged write for ``view``; returns its token."""

    def write_batch(self, view: str, token: str, rows: Sequence[tuple[str, str]]) -> None:
        """Stage ``(encoded key, JSON value)`` pairs (invisible until :meth:`commit`)."""

    def commit(self, view: str, token: str, meta: dict[str, Any]) -> None:
        """Make the staged values visible atomically and record ``meta`` (watermark etc.)."""

    def abort(self, view: str, token: str) -> None:
        """Discard a staged write."""

    def get(
        self, view: str, keys: Sequence[dict[str, Any]], *, with_meta: bool = False, features: Sequence[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """Each key's values (``None`` where the store has none), in the order asked.

        ``features`` selects (and orders) the features returned, nulls for any not stored.
        """

    def meta(self, view: str) -> dict[str, Any] | None:
        """What the last commit recorded for ``view`` (version, watermark, as_of, keys…)."""

    def views(self) -> list[str]:
        """Views that have committed values."""

    def count(self, view: str) -> int:
        """How many entities ``view`` holds."""
