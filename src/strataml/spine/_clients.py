"""Clients for optional servers, imported lazily with an install hint when missing."""

from __future__ import annotations

from typing import Any

from strataml.errors import MissingExtra


def redis_client(url: str, purpose: str, *, timeout: float | None = None) -> Any:
    """A ``redis.Redis`` for ``url``; ``purpose`` names the feature in the install hint."""
    try:
        import redis
    except ImportError as exc:
        raise MissingExtra("redis", "redis", purpose) from exc
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
