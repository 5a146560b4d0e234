"""The gateway's control plane: deployment traffic changes, rollback, readiness checks and
the model listing (a part of :class:`~strataml.serving._gateway.Gateway`, kept apart from
the request pipeline; the HTTP admin routes call these)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from strataml.errors import IntegrityError, NotFound
from strataml.serving._ratelimit import Limit
from strataml.serving._traffic import (
    Traffic,
    TrafficTable,
    delete_traffic,
    set_traffic,
    traffic_check,
)

if TYPE_CHECKING:
    from strataml.serving._auth import ApiKey
    from strataml.serving._batching import MicroBatcher
    from strataml.serving._gateway import GatewayConfig
    from strataml.serving._ratelimit import RateLimiter
    from strataml.serving._resilience import Admission, CircuitBreaker
    from strataml.serving._servable import ModelProvider
    from strataml.spine import Workspace


class ControlPlane:
    """Changes to what a gateway serves, and what it reports about itself."""

    ws: Workspace
    config: GatewayConfig
    models: ModelProvider
    traffic: TrafficTable
    limiter: RateLimiter
    executor: ThreadPoolExecutor
    admission: Admission
    started: bool
    unservable: dict[str, str]
    _batchers: dict[tuple[str, int, str | None], tuple[MicroBatcher, CircuitBreaker]]

    def set_traffic(
        self, name: str, changes: dict[str, Any], replace: bool, reason: str | None, actor: str
    ) -> Traffic:
        """Change a deployment's traffic, recorded as by ``actor`` (the API key's id); this
        gateway applies it at once, others on their next request."""
        if name not in self.models.names():  # a deployment serves a model of its name
            raise NotFound(
                f"no model named {name!r} to deploy", hint="GET /v1/models lists the models"
            )
        new = set_traffic(
            self.ws.catalog,
            name,
            changes,
            replace=replace,
            reason=reason,
            check=traffic_check(self.ws, self.models),
            actor=f"key:{actor}",
        )
        self.traffic.refresh_if_changed()
        return new

    def delete_traffic(self, name: str, reason: str | None) -> Traffic:
        """Remove a deployment; this gateway applies it at once, others on their next request."""
        old = delete_traffic(self.ws.catalog, name, reason=reason)
        self.traffic.refresh_if_changed()
        return old

    def rollback(self, name: str, reason: str | None) -> dict[str, Any]:
        """Move the champion alias of ``name`` back to its previous version."""
        from strataml.models import rollback

        out: dict[str, Any] = rollback(
            self.ws, name, reason=reason or "rollback through the gateway"
        )
        self.models.refresh()
        return out

    async def ready(self) -> dict[str, Any]:
        """Readiness checks: catalog, rate-limit store and every preloaded or deployed model."""
        checks: dict[str, Any] = {}
        loop = asyncio.get_running_loop()

        async def check(name: str, fn: Callable[[], Any]) -> None:
            try:
                await asyncio.wait_for(loop.run_in_executor(self.executor, fn), 2.0)
                checks[name] = "ok"
            except IntegrityError:
                checks[name] = (
                    "IntegrityError: the artifact failed its integrity check (the gateway's log names it)"
                )
            except Exception as exc:
                checks[name] = f"{type(exc).__name__}: {str(exc)[:200]}"

        def catalog() -> None:
            import sqlalchemy as sa

            with self.ws.catalog.read() as conn:
                conn.execute(sa.text("SELECT 1"))

        await check("catalog", catalog)
        await check(
            "rate_limit_store", lambda: self.limiter.buckets.take("__readyz__", Limit(1e9, 1e9))
        )
        names = set(self.config.preload) | set(self.traffic.configured())
        for n in sorted(names):
            await check(
                f"model:{n}", functools.partial(self.models.get, n, self.traffic.get(n).champion)
            )
        for ref, why in list(self.unservable.items()):
            checks[f"model:{ref}"] = f"unservable: {why}"
        ok = (
            self.started and not self.admission.draining and all(v == "ok" for v in checks.values())
        )
        return {
            "status": "ready" if ok else "not ready",
            "checks": checks,
            "draining": self.admission.draining,
        }

    def list_models(self, key: ApiKey) -> list[dict[str, Any]]:
        """The models this key may call, with their deployment traffic."""
        out = []
        for n in self.models.names():
            if not key.allows(f"predict:{n}"):
                continue
            tr = self.traffic.get(n)
            loaded = sorted({v for (m, v, _) in self._batchers if m == n})
            out.append(
                {"name": n, "traffic": tr.model_dump(mode="json"), "loaded_versions": loaded}
            )
        return out
