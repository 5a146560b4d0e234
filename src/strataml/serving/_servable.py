"""What the gateway serves: a model version with a typed input signature.

A :class:`Servable` wraps one loaded model version: its input features (names and
types), its output kind (binary, regression, multiclass), the feature views whose
stored features it needs, and a batch ``predict``. :class:`ModelProvider` is the small
interface the gateway uses to find servables by name and alias; the registry-backed
provider reads the model registry, the in-memory one serves models built in Python.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from strataml.errors import NotFound, StrataError
from strataml.models import LightGBMRows, row_predictor

OutputKind = Literal["binary", "regression", "multiclass"]
FEATURE_TYPES = ("float", "int", "string", "bool", "timestamp")


class InputError(StrataError):
    """A request's instances do not match the model's signature (HTTP 422)."""

    def __init__(self, message: str, *, hint: str | None = None, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.errors = errors or []


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature of a model: its name and type (float, int, string, bool, timestamp)."""

    name: str
    type: str = "float"


def _type_ok(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind in ("float", "double", "number"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("int", "integer", "int64"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("string", "timestamp", "category"):
        return isinstance(value, str)
    return True


_NONE = type(None)
_EXACT: dict[str, frozenset[type]] = {
    **dict.fromkeys(("float", "double", "number"), frozenset({int, float, _NONE})),
    **dict.fromkeys(("int", "integer", "int64"), frozenset({int, _NONE})),
    "bool": frozenset({bool, _NONE}),
    **dict.fromkeys(("string", "timestamp", "category"), frozenset({str, _NONE})),
}


@dataclass
class Servable:
    """One model version ready to answer predictions.

    ``predict_matrix`` receives the rows in ``features`` order and returns one raw output
    per row (a vector for binary/regression, a matrix for multiclass).
    """

    name: str
    version: int
    features: tuple[FeatureSpec, ...]
    output: OutputKind
    predict_rows: Callable[[list[dict[str, Any]]], Any]
    classes: tuple[Any, ...] = ()
    views: tuple[str, ...] = ()
    entity_keys: tuple[str, ...] = ()
    request_fields: tuple[str, ...] = ()
    sha256: str | None = None
    predict_table: Callable[[Any], Any] | None = None
    #: declared types of the fields a request must carry (a model with feature views)
    field_types: dict[str, str] = field(default_factory=dict)
    #: feature views whose request-time features are computed from each request
    request_views: list[Any] = field(default_factory=list)
    #: how the version runs: ``native``, ``onnx`` or ``onnx-int8`` (registry models)
    runtime: str = "native"
    _checks: tuple[Any, tuple[tuple[str, frozenset[type] | None], ...]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def ref(self) -> str:
        """``NAME@vN``."""
        return f"{self.name}@v{self.version}"

    def feature_names(self) -> list[str]:
        """Input feature names in model order."""
        return [f.name for f in self.features]

    def _exact_types(self) -> tuple[tuple[str, frozenset[type] | None], ...]:
        """Per required field, the exact value types that certainly pass (None: any value)."""
        key = (self.features, self.views, self.entity_keys, self.request_fields)
        cached = self._checks
        if cached is not None and cached[0] == key:
            return cached[1]
        if self.views:
            kinds = [(n, self.field_types.get(n, "any")) for n in (*self.entity_keys, *self.request_fields)]
        else:
            kinds = [(f.name, f.type) for f in self.features]
        plan = tuple((n, _EXACT.get(k)) for n, k in kinds)
        self._checks = (key, plan)
        return plan

    def check_instances(self, instances: Sequence[dict[str, Any]]) -> None:
        """Raise :class:`InputError` naming every missing field or wrong-typed value."""
        if _all_pass(instances, self._exact_types()):
            return  # every value has a type that passes: nothing to report
        if self.views:
            required = list(self.entity_keys) + list(self.request_fields)
            types = {n: self.field_types.get(n, "any") for n in required}
        else:
            required = [f.name for f in self.features]
            types = {f.name: f.type for f in self.features}
        errors: list[dict[str, Any]] = []
        for i, inst in enumerate(instances):
            for name in required:
                if name not in inst:
                    errors.append({"instance": i, "field": name, "problem": "missing"})
                elif not _type_ok(types[name], inst[name]):
                    errors.append({"instance": i, "field": name, "problem": f"expected {types[name]}, got {type(inst[name]).__name__}"})
            if len(errors) > 20:
                break
        if errors:
            first = errors[0]
            raise InputError(
                f"instance {first['instance']} of the request for {self.ref}: field {first['field']!r} is {first['problem']}",
                hint=f"send every instance with: {', '.join(f'{n} ({types[n]})' for n in required)}",
                errors=errors,
            )

    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        """One JSON-ready prediction per row: probability, value, or class → probability."""
        raw = self.predict_rows(rows)
        return normalise(raw, self.output, self.classes, len(rows))


def _all_pass(instances: Sequence[dict[str, Any]], plan: tuple[tuple[str, frozenset[type] | None], ...]) -> bool:
    """Whether every instance has every field of ``plan`` with a type that certainly passes
    (loops, not a generator: this runs on every request)."""
    for inst in instances:
        for name, allowed in plan:
            if name not in inst or (allowed is not None and type(inst[name]) not in allowed):
                return False
    return True


def normalise(raw: Any, output: OutputKind, classes: Sequence[Any], n: int) -> list[Any]:
    """Turn a model's raw batch output into one JSON-ready value per row."""
    if output != "multiclass" and type(raw) is list and len(raw) == n:  # one float per row already (a fast path's answer): no array needed
        if n == 1 and type(raw[0]) is float:  # the usual request
            return [_num(raw[0])]
        if all(type(v) is float for v in raw):
            return [_num(v) for v in raw]
    if output == "multiclass" and isinstance(raw, list) and raw and isinstance(raw[0], dict):
        return [{str(k): _num(float(v)) for k, v in r.items()} for r in raw]
    if hasattr(raw, "to_numpy"):
        raw = raw.to_numpy()
    arr = np.asarray(raw, dtype=np.float64)
    if output == "multiclass":
        arr = arr.reshape(n, -1)
        labels = [str(c) for c in classes] if classes else [str(i) for i in range(arr.shape[1])]
        return [{labels[j]: _num(arr[i, j]) for j in range(arr.shape[1])} for i in range(n)]
    if arr.ndim == 2:
        arr = arr[:, -1] if output == "binary" else arr[:, 0]
    return [_num(v) for v in arr.reshape(n).tolist()]


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None  # JSON has no NaN or infinity


def rows_to_matrix(rows: list[dict[str, Any]], names: Sequence[str]) -> np.ndarray:
    """A float64 matrix of the named fields (``None`` becomes NaN)."""
    out = np.empty((len(rows), len(names)), dtype=np.float64)
    for i, r in enumerate(rows):
        out[i] = [np.nan if (v := r.get(n)) is None else v for n in names]
    return out


def table_to_matrix(table: Any, names: Sequence[str]) -> np.ndarray:
    """A float64 matrix of the named Arrow columns (nulls become NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not names:
        return np.empty((table.num_rows, 0))
    out = np.empty((table.num_rows, len(names)), dtype=np.float64)
    for j, n in enumerate(names):
        out[:, j] = pc.cast(table.column(n), pa.float64()).to_numpy(zero_copy_only=False)
    return out


def from_lightgbm(name: str, version: int, booster: Any, *, output: OutputKind = "binary", classes: Sequence[Any] = (), types: dict[str, str] | None = None) -> Servable:
    """A servable from a trained LightGBM ``Booster`` (or sklearn wrapper) over numeric features."""
    b = getattr(booster, "booster_", booster)
    names = list(b.feature_name())
    feats = tuple(FeatureSpec(n, (types or {}).get(n, "float")) for n in names)

    predict_rows = LightGBMRows(b, names)

    def predict_table(table: Any) -> Any:
        return b.predict(table_to_matrix(table, names))

    return Servable(name, version, feats, output, predict_rows, tuple(classes), predict_table=predict_table)


def from_loaded(loaded: Any) -> Servable:
    """A servable from the model registry's loaded model (``strataml.models.load_model``)."""
    sig = getattr(loaded, "signature", None)
    inputs = _get(sig, "inputs", "features", default=[]) or []
    feats = tuple(FeatureSpec(str(_get(f, "name", default=f)), str(_get(f, "type", "dtype", default="float"))) for f in inputs)
    out_sig = _get(sig, "output", default=None)
    kind = _get(out_sig, "kind", default=None) if out_sig is not None and not isinstance(out_sig, str) else out_sig
    kind = kind or _get(sig, "output_kind", "kind", "task", default="regression")
    classes = tuple(_get(out_sig, "classes", default=()) or _get(sig, "classes", default=()) or ())
    views = tuple(getattr(loaded, "feature_views", ()) or ())
    names = [f.name for f in feats]

    def predict_rows(rows: list[dict[str, Any]]) -> Any:
        return loaded.predict([{n: r.get(n) for n in names} for r in rows])

    fast = row_predictor(loaded, feats, predict_rows)

    def predict_table(table: Any) -> Any:
        if fast is not None:  # verified equal to the generic path; skips the DataFrame
            return loaded.predictor.native.predict(table_to_matrix(table, names))
        return loaded.predict(table.select(names))

    entity_keys = tuple(_get(sig, "entity_keys", default=()) or getattr(loaded, "entity_keys", ()) or ())
    request_fields = tuple(_get(sig, "request_fields", default=()) or getattr(loaded, "request_fields", ()) or ())
    return Servable(
        name=str(loaded.name), version=int(str(loaded.version).lstrip("v")), features=feats,
        output=str(kind) if str(kind) in ("binary", "regression", "multiclass") else "regression",  # type: ignore[arg-type]
        predict_rows=fast or predict_rows, classes=classes, views=views, entity_keys=entity_keys,
        request_fields=request_fields, sha256=getattr(loaded, "sha256", None), predict_table=predict_table,
    )


def attach_views(ws: Any, s: Servable) -> Servable:
    """Record what a model with feature views needs in each instance: entity keys,
    request-feature fields and any raw input the views do not provide."""
    from strataml.features import resolve_view

    keys: list[str] = []
    fields: dict[str, str] = {}
    provided: set[str] = set()
    request_views = []
    for ref in s.views:
        view = resolve_view(ws, ref)
        keys += [k for k in view.keys if k not in keys]
        provided |= {f.name for f in view.stored_features}
        if view.request_features:
            request_views.append(view)
        for rf in view.request_features:
            provided.add(rf.name)
            for n, t in rf.fields.items():
                fields.setdefault(n, str(t).lower())
    for f in s.features:
        if f.name not in provided and f.name not in keys:
            fields.setdefault(f.name, f.type)
    s.entity_keys = tuple(keys)
    s.request_fields = tuple(n for n in fields if n not in keys)
    s.field_types = {n: _plain_type(t) for n, t in fields.items()}
    s.request_views = request_views
    return s


def _plain_type(t: str) -> str:
    t = t.lower()
    if t in ("double", "float", "real", "float64", "decimal"):
        return "float"
    if t in ("int", "integer", "bigint", "int64", "int32"):
        return "int"
    if t in ("varchar", "string", "text"):
        return "string"
    if t in ("bool", "boolean"):
        return "bool"
    return "any"


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if obj is not None and not isinstance(obj, dict | str) and hasattr(obj, n):
            return getattr(obj, n)
    return default


class ModelProvider(Protocol):
    """Where the gateway finds model versions."""

    def get(self, name: str, ref: str) -> Servable:
        """The servable for ``ref`` (an alias such as ``champion``, or ``v3``); NotFound if absent."""
        ...

    def cached(self, name: str, ref: str) -> Servable | None:
        """The servable for ``ref`` if it is already loaded (never does I/O)."""
        ...

    def names(self) -> list[str]:
        """Every servable model name."""
        ...

    def previous(self, name: str, alias: str) -> Servable | None:
        """The version ``alias`` pointed at before its current one (None when unknown)."""
        ...

    def refresh(self) -> None:
        """Re-resolve aliases so that moved aliases are picked up (old entries keep serving meanwhile)."""
        ...


class InMemoryModels:
    """A provider of servables built in Python, with aliases (thread-safe)."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, int], Servable] = {}
        self._aliases: dict[tuple[str, str], int] = {}
        self._history: dict[tuple[str, str], list[int]] = {}
        self._lock = threading.Lock()

    def add(self, servable: Servable, aliases: Sequence[str] = ()) -> Servable:
        """Register a version and point ``aliases`` at it."""
        with self._lock:
            self._versions[(servable.name, servable.version)] = servable
            for a in aliases:
                self._aliases[(servable.name, a)] = servable.version
                self._history.setdefault((servable.name, a), []).append(servable.version)
        return servable

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Move an alias (takes effect for the next request)."""
        with self._lock:
            if (name, version) not in self._versions:
                raise NotFound(f"model {name} has no version {version}")
            self._aliases[(name, alias)] = version
            self._history.setdefault((name, alias), []).append(version)

    def previous(self, name: str, alias: str) -> Servable | None:
        with self._lock:
            hist = self._history.get((name, alias), [])
            current = self._aliases.get((name, alias))
            for v in reversed(hist):
                if v != current:
                    return self._versions.get((name, v))
        return None

    def get(self, name: str, ref: str) -> Servable:
        with self._lock:
            version = _parse_version(ref)
            if version is None:
                if (name, ref) not in self._aliases:
                    raise NotFound(f"model {name!r} has no alias {ref!r}", hint="GET /v1/models lists what is served")
                version = self._aliases[(name, ref)]
            s = self._versions.get((name, version))
        if s is None:
            raise NotFound(f"model {name!r} has no version {version}", hint="GET /v1/models lists what is served")
        return s

    def cached(self, name: str, ref: str) -> Servable | None:
        try:
            return self.get(name, ref)
        except NotFound:
            return None

    def names(self) -> list[str]:
        with self._lock:
            return sorted({n for n, _ in self._versions})

    def refresh(self) -> None:
        return None


def _parse_version(ref: str) -> int | None:
    r = ref[1:] if ref.startswith("v") else ref
    return int(r) if r.isdigit() else None


class RegistryModels:
    """A provider backed by the model registry (``strataml.models.load_model``).

    Loaded versions are kept by ``(name, version, runtime)``, the runtime being the
    deployment's (native artifact or ONNX export); alias resolutions are cached and
    re-resolved on :meth:`refresh`, so that an alias move or a runtime change takes
    effect without a restart.
    """

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._by_version: dict[tuple[str, int, str], Servable] = {}
        self._by_ref: dict[tuple[str, str], Servable] = {}
        self._lock = threading.Lock()

    def _load(self, name: str, ref: str) -> Servable:
        try:
            from strataml.models import load_model
        except ImportError as exc:  # the models layer is absent from this installation
            raise NotFound(f"model {name!r}: no model registry is available", hint="install strataml with its models layer") from exc
        runtime = self.runtime(name)
        loaded = load_model(self.ws, name, ref=ref, runtime=runtime)
        fresh = from_loaded(loaded)
        fresh.runtime = runtime
        if fresh.views:
            attach_views(self.ws, fresh)
        with self._lock:
            return self._by_version.setdefault((fresh.name, fresh.version, runtime), fresh)

    def runtime(self, name: str) -> str:
        """How the deployment ``name`` runs its versions: ``native``, ``onnx`` or ``onnx-int8``."""
        from strataml.serving._traffic import get_traffic

        traffic = get_traffic(self.ws.catalog, name)
        return "native" if traffic is None else traffic.runtime

    def cached(self, name: str, ref: str) -> Servable | None:
        return self._by_ref.get((name, ref))

    def get(self, name: str, ref: str) -> Servable:
        s = self._by_ref.get((name, ref))
        if s is None:
            s = self._load(name, ref)
            self._by_ref[(name, ref)] = s
        return s

    def names(self) -> list[str]:
        try:
            from strataml.models import list_models
        except ImportError:
            return sorted({n for n, _, _ in self._by_version})
        return sorted(str(m["name"] if isinstance(m, dict) else getattr(m, "name", m)) for m in list_models(self.ws))

    def previous(self, name: str, alias: str) -> Servable | None:
        try:
            from strataml.models import get_model
        except ImportError:
            return None
        history = [h for h in get_model(self.ws, name).get("alias_history", []) if h.get("alias") == alias]
        if not history or history[-1].get("from") is None:
            return None
        return self.get(name, f"v{int(history[-1]['from'])}")

    def refresh(self) -> None:
        """Re-resolve every alias (and runtime) in use; each entry is swapped only once its new version loaded."""
        from strataml.models import resolve_version

        runtimes: dict[str, str] = {}
        for (name, ref), current in list(self._by_ref.items()):
            try:
                runtime = runtimes[name] if name in runtimes else runtimes.setdefault(name, self.runtime(name))
                version = _parse_version(ref)
                if version is None:
                    version = resolve_version(self.ws, name, ref)
                if version != current.version or runtime != current.runtime:
                    self._by_ref[(name, ref)] = self._by_version.get((name, version, runtime)) or self._load(name, f"v{version}")
            except Exception:  # the alias vanished or the load failed: keep serving what we have
                continue


class ChainModels:
    """Try several providers in order (e.g. in-memory models first, then the registry)."""

    def __init__(self, *providers: ModelProvider) -> None:
        self.providers = providers

    def get(self, name: str, ref: str) -> Servable:
        last: Exception | None = None
        for p in self.providers:
            try:
                return p.get(name, ref)
            except NotFound as exc:
                last = exc
        raise last or NotFound(f"no model named {name!r}")

    def cached(self, name: str, ref: str) -> Servable | None:
        for p in self.providers:
            hit = p.cached(name, ref)
            if hit is not None:
                return hit
        return None

    def names(self) -> list[str]:
        return sorted({n for p in self.providers for n in p.names()})

    def previous(self, name: str, alias: str) -> Servable | None:
        for p in self.providers:
            try:
                found = p.previous(name, alias)
            except NotFound:
                continue
            if found is not None:
                return found
        return None

    def refresh(self) -> None:
        for p in self.providers:
            p.refresh()
