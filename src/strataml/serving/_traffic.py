"""Deployments: which model versions answer a model's requests, in what proportion.

A deployment serves its ``champion`` alias and optionally

- a **canary**: a share of traffic (``weight`` 0 to 1) sent to another version, sticky
  per entity: the same entity key always lands on the same side;
- an **A/B split**: named variants with weights, also sticky per entity key;
- a **shadow**: a version that receives a mirror of live traffic; its answers are
  logged and discarded;
- a **runtime**: ``native`` (the registered artifact, the default), ``onnx`` or
  ``onnx-int8`` (each version's latest ONNX export of that kind, made with
  ``strata models export``).

Traffic lives in the catalog (``deployments``), every change is an event, and
gateways pick changes up on their next request without a restart.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from strataml.errors import ConfigError, IntegrityError, NotFound
from strataml.serving import _tables as tables
from strataml.spine import Catalog, append_event, check_name, utcnow


class Variant(BaseModel):
    """A model version reference (``champion``, ``challenger``, ``v3``) with a traffic weight."""

    model_config = ConfigDict(extra="forbid")
    ref: str = Field(min_length=1, max_length=128)
    weight: float = Field(ge=0.0, le=1.0)


class Traffic(BaseModel):
    """A deployment's traffic and gateway settings."""

    model_config = ConfigDict(extra="forbid")
    model: str
    champion: str = "champion"
    canary: Variant | None = None
    ab: list[Variant] = Field(default_factory=list, max_length=16)
    shadow: str | None = None
    sticky_key: list[str] = Field(default_factory=list, max_length=16, description="instance fields hashed for stickiness (default: the model's entity keys, else the whole instance)")
    rate: float | None = Field(None, gt=0, description="tokens per second per API key")
    burst: float | None = Field(None, ge=1, description="bucket size per API key")
    cache_ttl: float = Field(0.0, ge=0, description="seconds a response stays cached (0: off)")
    default: Any = Field(None, description="declared default prediction, last step of the fallback chain")
    timeout_ms: float | None = Field(None, gt=0, le=600_000)
    runtime: Literal["native", "onnx", "onnx-int8"] = Field("native", description="run each version's native artifact or its ONNX export")
    unknown_entity: Literal["answer", "degrade", "refuse"] = Field(
        "degrade", description="an entity the online store does not know: answer from null features, answer marked degraded, or refuse (422); the answer names the missing features")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="a binary classifier's decision threshold, used by monitoring's quality figures")

    @field_validator("model")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "model name")

    @field_validator("ab")
    @classmethod
    def _ab(cls, v: list[Variant]) -> list[Variant]:
        if sum(x.weight for x in v) > 1.0 + 1e-9:
            raise ValueError("A/B weights add up to more than 1")
        return v


def entity_bucket(instance: dict[str, Any], fields: list[str] | tuple[str, ...], salt: str) -> float:
    """A stable number in [0, 1) for an instance's entity key (same key → same number)."""
    if fields:
        key = orjson.dumps([instance.get(f) for f in fields])
    else:
        key = orjson.dumps(instance, option=orjson.OPT_SORT_KEYS)
    h = hashlib.blake2b(key, digest_size=8, person=salt.encode()[:16].ljust(16, b"\0")).digest()
    return int.from_bytes(h, "big") / 2**64


def route(traffic: Traffic, instance: dict[str, Any], entity_keys: tuple[str, ...] = ()) -> tuple[str, str]:
    """Which reference answers this instance: ``(ref, arm)`` with arm champion/canary/ab:REF."""
    if traffic.canary is None and not traffic.ab:
        return traffic.champion, "champion"
    fields = traffic.sticky_key or list(entity_keys)
    if traffic.canary is not None and traffic.canary.weight > 0 and entity_bucket(instance, fields, "canary") < traffic.canary.weight:
        return traffic.canary.ref, "canary"
    if traffic.ab:
        x = entity_bucket(instance, fields, "ab")
        acc = 0.0
        for v in traffic.ab:
            acc += v.weight
            if x < acc:
                return v.ref, f"ab:{v.ref}"
    return traffic.champion, "champion"


def get_traffic(catalog: Catalog, name: str) -> Traffic | None:
    """The stored traffic of deployment ``name`` (None when it was never configured)."""
    t = tables.deployments
    with catalog.read() as conn:
        row = conn.execute(sa.select(t.c.config).where(t.c.name == name)).first()
    return Traffic.model_validate(row[0]) if row is not None else None


def list_traffic(catalog: Catalog) -> dict[str, Traffic]:
    """Every configured deployment."""
    t = tables.deployments
    with catalog.read() as conn:
        return {r[0]: Traffic.model_validate(r[1]) for r in conn.execute(sa.select(t.c.name, t.c.config))}


def refs(traffic: Traffic) -> list[tuple[str, str]]:
    """Every ``(role, ref)`` a deployment serves: champion, canary, A/B variants, shadow."""
    out = [("champion", traffic.champion)]
    if traffic.canary is not None:
        out.append(("canary", traffic.canary.ref))
    out += [(f"A/B variant {v.ref}", v.ref) for v in traffic.ab]
    if traffic.shadow:
        out.append(("shadow", traffic.shadow))
    return out


def check_traffic(new: Traffic, resolve: Callable[[str, str], int], exported: Callable[[str, int, str], bool] | None = None) -> None:
    """Refuse traffic that cannot be served, with a ConfigError (HTTP 422) naming the problem:
    an unknown model, a version or alias that does not resolve (``resolve(model, ref)`` →
    version number, NotFound otherwise), weights adding up to more than 1, or a runtime
    for which a version has no export (``exported(model, version, runtime)``)."""
    hint = f"'strata models show {new.model}' lists its versions and aliases"
    share = (new.canary.weight if new.canary is not None else 0.0) + sum(v.weight for v in new.ab)
    if share > 1.0 + 1e-9:
        raise ConfigError(f"deployment {new.model!r}: canary and A/B weights add up to {share:g}, more than 1", hint="lower the weights")
    for role, ref in refs(new):
        try:
            version = resolve(new.model, ref)
        except IntegrityError:
            raise ConfigError(f"deployment {new.model!r}: the {role} {ref!r} fails its integrity check", hint="restore the artifact or point the traffic elsewhere") from None
        except NotFound as exc:
            raise ConfigError(f"deployment {new.model!r}: the {role} {ref!r} does not resolve: {exc.message}", hint=hint) from None
        if new.runtime != "native" and exported is not None and not exported(new.model, version, new.runtime):
            raise ConfigError(
                f"deployment {new.model!r}: runtime {new.runtime!r}, but the {role} (v{version}) has no {new.runtime} export",
                hint=f"export it first: 'strata models export {new.model}@v{version}'",
            )


def traffic_check(ws: Any, models: Any) -> Callable[[Traffic], None]:
    """:func:`check_traffic` against a model provider (each ref is loaded, so its
    artifact's hash is verified too) and the registry's ONNX exports."""

    def exported(name: str, version: int, runtime: str) -> bool:
        try:
            from strataml.models import list_exports
        except ImportError:
            return False
        want = "int8" if runtime == "onnx-int8" else None
        return any(e.get("format") == "onnx" and e.get("quantization") == want for e in list_exports(ws, name, version))

    def resolve(name: str, ref: str) -> int:
        return int(models.get(name, ref).version)

    return functools.partial(check_traffic, resolve=resolve, exported=exported)


def set_traffic(
    catalog: Catalog, name: str, changes: dict[str, Any], *, replace: bool = False, reason: str | None = None,
    check: Callable[[Traffic], None] | None = None, actor: str | None = None,
) -> Traffic:
    """Change a deployment's traffic (creating it on first use) and record the event (by
    ``actor``, default this process's user); ``check`` (see :func:`check_traffic`) refuses
    it before anything is recorded."""
    with catalog.write() as conn:
        return write_traffic(conn, name, changes, replace=replace, reason=reason, check=check, actor=actor)


def write_traffic(
    conn: sa.Connection, name: str, changes: dict[str, Any], *, replace: bool = False, reason: str | None = None,
    check: Callable[[Traffic], None] | None = None, actor: str | None = None,
) -> Traffic:
    """:func:`set_traffic` inside the caller's write transaction, so that a traffic change
    commits together with the other changes it belongs to (an alias move, a state change)."""
    check_name(name, "deployment name")
    t = tables.deployments
    row = conn.execute(sa.select(t.c.config, t.c.generation).where(t.c.name == name).with_for_update()).first()
    base: dict[str, Any] = {"model": name} if (row is None or replace) else dict(row[0])
    merged = {**base, **changes}
    try:
        new = Traffic.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid traffic for deployment {name!r}: {problems}", hint="see 'strata deploy traffic --help'") from None
    if check is not None:
        check(new)
    doc = new.model_dump(mode="json")
    if row is None:
        conn.execute(t.insert().values(name=name, model=new.model, config=doc, generation=1, updated_at=utcnow()))
    else:
        conn.execute(t.update().where(t.c.name == name).values(model=new.model, config=doc, generation=int(row[1]) + 1, updated_at=utcnow()))
    append_event(conn, "deployment.traffic_changed", f"deployment:{name}", {"before": None if row is None else row[0], "after": doc, "reason": reason}, actor=actor)
    return new


def delete_traffic(catalog: Catalog, name: str, *, reason: str | None = None) -> Traffic:
    """Remove a deployment (its model then serves its champion alone) and record the event."""
    t = tables.deployments
    with catalog.write() as conn:
        row = conn.execute(sa.select(t.c.config).where(t.c.name == name)).first()
        if row is None:
            raise NotFound(f"no deployment named {name[:130]!r}", hint="'strata deploy list' (GET /v1/deployments) lists them")
        conn.execute(t.delete().where(t.c.name == name))
        append_event(conn, "deployment.deleted", f"deployment:{name}", {"before": row[0], "reason": reason})
    return Traffic.model_validate(row[0])


class TrafficTable:
    """The gateway's view of every deployment, refreshed when the catalog changes."""

    def __init__(self, catalog: Catalog) -> None:
        from strataml.serving._auth import CatalogWatcher

        self.catalog = catalog
        self.watcher = CatalogWatcher(catalog)
        self._all: dict[str, Traffic] = {}
        self._defaults: dict[str, Traffic] = {}
        self._seen: int | None = None
        self._lock = threading.Lock()
        self._history: dict[str, list[Traffic]] = {}  # per deployment, the traffic it had before, oldest first
        self.generation = 0

    def refresh_if_changed(self, version: int | None = None) -> bool:
        """Reload when someone committed to the catalog; True if it reloaded.

        ``version`` is the catalog's change number when the caller already read it."""
        if version is not None and version >= 0:
            if version == self._seen:
                return False
            self._seen = version
        elif not self.watcher.changed():
            return False
        fresh = list_traffic(self.catalog)
        with self._lock:
            for name, old in self._all.items():
                if fresh.get(name) != old:
                    self._history[name] = [*self._history.get(name, [])[-7:], old]
            self._all = fresh
            self.generation += 1
        return True

    def install(self, traffic: dict[str, Traffic], version: int) -> None:
        """Take ``traffic`` (read by a poller of the catalog) as that of catalog ``version``."""
        with self._lock:
            self._all = traffic
            self._seen = version
            self.generation += 1

    def get(self, name: str) -> Traffic:
        """The traffic of ``name`` (an implicit champion-only deployment when unconfigured)."""
        t = self._all.get(name)
        if t is None:
            t = self._defaults.get(name)
            if t is None:
                t = Traffic.model_validate({"model": name})
                if len(self._defaults) < 10_000:
                    self._defaults[name] = t
        return t

    def earlier(self, name: str) -> list[Traffic]:
        """The traffic ``name`` had before, newest first, then its implicit champion-only traffic."""
        return [*reversed(self._history.get(name, [])), Traffic.model_validate({"model": name})]

    def is_configured(self, name: str) -> bool:
        """Whether ``name`` has a deployment in the catalog."""
        return name in self._all

    def configured(self) -> dict[str, Traffic]:
        """Every configured deployment."""
        return dict(self._all)

    def close(self) -> None:
        """Release the watcher."""
        self.watcher.close()
