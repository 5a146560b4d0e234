"""The ASGI factory ``strata serve`` hands to uvicorn (reads its spec from the environment)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from strataml.serving._app import create_app
from strataml.serving._gateway import GatewayConfig
from strataml.spine import Workspace


def app_from_env(mounts: Callable[[Workspace], Sequence[BaseRoute]] | None = None) -> Starlette:
    """Build the gateway from ``STRATA_SERVE_SPEC`` (set by ``strata serve`` for each worker).

    ``mounts`` builds further routes for the workspace (see :func:`create_app`)."""
    spec = json.loads(os.environ["STRATA_SERVE_SPEC"])
    ws = Workspace.open(spec.pop("workspace"))
    fields = set(GatewayConfig.__dataclass_fields__)
    kwargs: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k in fields}
    kwargs.setdefault("freeze_gc", True)
    return create_app(ws, None, GatewayConfig(**kwargs), mounts=mounts(ws) if mounts is not None else ())
