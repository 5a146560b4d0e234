"""A conformance kit for backends: the checks the project runs over its own backends,
public so that a third-party backend can run them too (like scikit-learn's ``check_estimator``).

Each ``check_*`` takes a factory that returns a fresh, empty, opened instance; it runs
every property the backend must keep against new instances and closes them. A broken
property raises :class:`AssertionError` naming it::

    from strataml.testing import check_online_store

    def test_my_store_conforms(tmp_path):
        check_online_store(lambda: MyStore(f"my://{tmp_path}/{uuid.uuid4().hex}"))

The kit imports nothing heavy and no test framework. A model format is checked on one
fitted model rather than a factory: :func:`check_model_format`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from strataml.spine.queue._conformance import check_queue

if TYPE_CHECKING:
    from strataml.features import OnlineStore
    from strataml.models import ModelFormat
    from strataml.serving._cache import ResponseCache
    from strataml.serving._ratelimit import Buckets
    from strataml.spine import ArtifactStore, Catalog

__all__ = [
    "check_artifact_store",
    "check_catalog",
    "check_model_format",
    "check_online_store",
    "check_queue",
    "check_rate_limit_buckets",
    "check_response_cache",
]


def check_artifact_store(new_store: Callable[[], ArtifactStore]) -> None:
    """Assert what every artifact store keeps, on fresh empty stores from ``new_store``.

    Objects are keyed by the sha256 of their content and written once; reads verify the
    hash (tampered bytes are refused); concurrent writes never expose a partial object;
    keys that are not a lowercase sha256 are refused before they reach a path.
    """
    from strataml.spine._conformance import check_artifact_store as check

    check(new_store)


def check_catalog(new_catalog: Callable[[], Catalog]) -> None:
    """Assert what every catalog keeps, on fresh migrated catalogs from ``new_catalog``.

    Every migration is applied once and recorded; a write transaction commits whole or
    not at all; concurrent writers lose and damage nothing; events are listed in the
    order they were appended.
    """
    from strataml.spine._conformance import check_catalog as check

    check(new_catalog)


@contextmanager
def _opened(factory: Callable[[], Any]) -> Iterator[Any]:
    backend = factory()
    try:
        yield backend
    finally:
        backend.close()


def _run(name: str, factory: Callable[[], Any], checks: list[Callable[[Any], None]]) -> None:
    for check in checks:
        with _opened(factory) as backend:
            try:
                check(backend)
            except AssertionError as exc:
                raise AssertionError(f"{name} {type(backend).__name__}: {check.__name__}: {exc}") from exc


# --- online stores -------------------------------------------------------------------------

_ONLINE_META = {"version": "v1", "keys": ["user_id"], "features": ["a", "b"], "layout": "array",
                "as_of": "2026-01-02T00:00:00+00:00"}


def _value(**features: object) -> str:
    from strataml.features.online import encode_value

    return encode_value(["a", "b"], features | {"_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"})


def _write(store: OnlineStore, rows: dict[str, str], *, full: bool = True, meta: dict[str, Any] = _ONLINE_META,
           view: str = "v") -> None:
    token = store.begin(view, full=full)
    store.write_batch(view, token, list(rows.items()))
    store.commit(view, token, dict(meta))


def _keys(*ids: str) -> list[dict[str, Any]]:
    return [{"user_id": i} for i in ids]


def online_implements_the_protocol(store: OnlineStore) -> None:
    from strataml.features import OnlineStore

    assert isinstance(store, OnlineStore), "does not implement strataml.features.OnlineStore"


def online_unknown_views_and_keys_read_as_none(store: OnlineStore) -> None:
    assert store.get("never", _keys("u1")) == [None] and store.meta("never") is None
    _write(store, {"u1": _value(a=1, b="x")})
    assert store.get("v", _keys("nope", "u1")) == [None, {"a": 1, "b": "x"}]
    assert store.get("v", []) == []


def online_values_and_metadata_round_trip(store: OnlineStore) -> None:
    _write(store, {"u1": _value(a=1.5, b=None), "u2": _value(a=-3, b="é")})
    assert store.get("v", _keys("u2", "u1", "u2")) == [{"a": -3, "b": "é"}, {"a": 1.5, "b": None}, {"a": -3, "b": "é"}]
    full = store.get("v", _keys("u1"), with_meta=True)[0]
    assert full is not None and full["_as_of"] == "2026-01-02 00:00:00"
    assert store.meta("v") == _ONLINE_META
    assert store.views() == ["v"] and store.count("v") == 2


def online_staged_values_are_invisible_until_commit(store: OnlineStore) -> None:
    _write(store, {"u1": _value(a=1, b="old")})
    token = store.begin("v", full=True)
    store.write_batch("v", token, [("u1", _value(a=2, b="new")), ("u9", _value(a=9, b="new"))])
    assert store.get("v", _keys("u1", "u9")) == [{"a": 1, "b": "old"}, None]
    store.abort("v", token)
    assert store.get("v", _keys("u1")) == [{"a": 1, "b": "old"}] and store.count("v") == 1


def online_full_writes_replace_and_incremental_ones_merge(store: OnlineStore) -> None:
    _write(store, {"u1": _value(a=1, b="x"), "u2": _value(a=2, b="x")})
    _write(store, {"u2": _value(a=20, b="y"), "u3": _value(a=30, b="y")}, full=False, meta=_ONLINE_META | {"mode": "incremental"})
    assert store.get("v", _keys("u1", "u2", "u3")) == [{"a": 1, "b": "x"}, {"a": 20, "b": "y"}, {"a": 30, "b": "y"}]
    assert (store.meta("v") or {}).get("mode") == "incremental"
    _write(store, {"u3": _value(a=300, b="z")})
    assert store.get("v", _keys("u1", "u2", "u3")) == [None, None, {"a": 300, "b": "z"}] and store.count("v") == 1
    _write(store, {})
    assert store.get("v", _keys("u3")) == [None] and store.count("v") == 0


def online_many_keys_keep_their_order(store: OnlineStore) -> None:
    token = store.begin("v", full=True)
    items = [(f"u{i}", _value(a=i, b=str(i))) for i in range(2500)]
    for i in range(0, len(items), 700):
        store.write_batch("v", token, items[i : i + 700])
    store.commit("v", token, _ONLINE_META)
    got = store.get("v", _keys(*(f"u{i}" for i in range(2599, -1, -1))))
    assert got[:100] == [None] * 100
    assert [g["a"] if g else None for g in got[100:]] == list(range(2499, -1, -1))


def online_multi_column_keys_and_views_are_separate(store: OnlineStore) -> None:
    from strataml.features.online import encode_key

    meta = _ONLINE_META | {"keys": ["user_id", "merchant"]}
    _write(store, {encode_key(["user_id", "merchant"], {"user_id": "u1", "merchant": "m1"}): _value(a=1, b="x")}, meta=meta, view="um")
    _write(store, {"u1": _value(a=5, b="other")})
    both = [{"user_id": "u1", "merchant": "m1"}, {"user_id": "u1", "merchant": "m2"}]
    assert store.get("um", both) == [{"a": 1, "b": "x"}, None]
    assert store.get("v", _keys("u1")) == [{"a": 5, "b": "other"}]
    assert sorted(store.views()) == ["um", "v"]


def online_projection_order_unknown_features_and_meta(store: OnlineStore) -> None:
    _write(store, {"u1": _value(a=1, b="x")})
    assert store.get("v", _keys("u1", "u2"), features=["b", "zz", "a"]) == [{"b": "x", "zz": None, "a": 1}, None]
    got = store.get("v", _keys("u1"), features=["a"], with_meta=True)[0]
    assert got == {"a": 1, "_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"}


def online_an_incremental_write_with_other_features_is_refused(store: OnlineStore) -> None:
    from strataml.features.online import OnlineStoreError, encode_value

    _write(store, {"u1": _value(a=1, b="x")})
    try:
        _write(store, {"u1": encode_value(["c"], {"c": 1})}, full=False, meta=_ONLINE_META | {"features": ["c"]})
    except OnlineStoreError as exc:
        assert "different value layout" in exc.message
    else:
        raise AssertionError("an incremental write with other features was accepted")
    assert store.get("v", _keys("u1")) == [{"a": 1, "b": "x"}]


def online_values_written_as_json_objects_are_read(store: OnlineStore) -> None:
    old_meta = {k: v for k, v in _ONLINE_META.items() if k != "layout"}
    old = orjson.dumps({"a": 1, "b": "x", "_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"}).decode()
    _write(store, {"u1": old}, meta=old_meta)
    assert store.get("v", _keys("u1", "u2")) == [{"a": 1, "b": "x"}, None]
    assert store.get("v", _keys("u1"), features=["b"], with_meta=True) == [
        {"b": "x", "_event_ts": "2026-01-01 00:00:00", "_as_of": "2026-01-02 00:00:00"}]


ONLINE_STORE_CHECKS: list[Callable[[Any], None]] = [
    online_implements_the_protocol,
    online_unknown_views_and_keys_read_as_none,
    online_values_and_metadata_round_trip,
    online_staged_values_are_invisible_until_commit,
    online_full_writes_replace_and_incremental_ones_merge,
    online_many_keys_keep_their_order,
    online_multi_column_keys_and_views_are_separate,
    online_projection_order_unknown_features_and_meta,
    online_an_incremental_write_with_other_features_is_refused,
    online_values_written_as_json_objects_are_read,
]


def check_online_store(new_store: Callable[[], OnlineStore]) -> None:
    """Check an online-store backend: ``new_store()`` returns a fresh, empty, opened store.

    Covers the protocol, missing views and keys, round trips of values and metadata,
    staged writes invisible until commit (and abort), full and incremental writes, order
    over thousands of keys, multi-column keys, projections, the value layout check and
    the JSON-object values of older stores.
    """
    _run("online store", new_store, ONLINE_STORE_CHECKS)


# --- rate-limit buckets --------------------------------------------------------------------


def buckets_allow_a_burst_then_refuse_then_refill(buckets: Buckets) -> None:
    from strataml.serving._ratelimit import Limit

    key = uuid.uuid4().hex
    lim = Limit(rate=4.0, burst=5)  # a token per 250 ms: seven takes fit in that even on a busy machine
    results = [buckets.take(key, lim) for _ in range(7)]
    assert [d.allowed for d in results] == [True] * 5 + [False] * 2
    assert 0 < results[-1].retry_after <= 0.25 + 1e-6
    time.sleep(0.3)
    assert buckets.take(key, lim).allowed, "a bucket did not refill"


def buckets_are_separate_per_key(buckets: Buckets) -> None:
    from strataml.serving._ratelimit import Limit

    lim = Limit(rate=0.001, burst=5)
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    assert sum(buckets.take(a, lim).allowed for _ in range(6)) == 5
    other = buckets.take(b, lim)
    assert other.allowed and abs(other.remaining - 4) < 0.01


def buckets_take_a_cost(buckets: Buckets) -> None:
    from strataml.serving._ratelimit import Limit

    key, lim = uuid.uuid4().hex, Limit(rate=0.001, burst=10)
    assert buckets.take(key, lim, cost=8).allowed
    assert not buckets.take(key, lim, cost=3).allowed
    assert buckets.take(key, lim, cost=2).allowed


RATE_LIMIT_CHECKS: list[Callable[[Any], None]] = [
    buckets_allow_a_burst_then_refuse_then_refill,
    buckets_are_separate_per_key,
    buckets_take_a_cost,
]


def check_rate_limit_buckets(new_buckets: Callable[[], Buckets]) -> None:
    """Check a rate-limit bucket backend: ``new_buckets()`` returns a fresh bucket store.

    Covers a burst then refusals with a retry-after, refilling, separate keys and costs.
    """
    _run("rate-limit buckets", new_buckets, RATE_LIMIT_CHECKS)


# --- response caches -----------------------------------------------------------------------


def cache_misses_then_holds_until_the_ttl(cache: ResponseCache) -> None:
    from strataml.serving._cache import cache_key

    k = cache_key(f"m{uuid.uuid4().hex}@v1", [{"a": 1, "b": 2}])
    assert cache.get(k) is None
    cache.set(k, [0.25, {"x": 1}], ttl=0.2)
    assert cache.get(k) == [0.25, {"x": 1}]
    time.sleep(0.3)
    assert cache.get(k) is None, "an entry outlived its ttl"


def cache_keys_are_separate(cache: ResponseCache) -> None:
    from strataml.serving._cache import cache_key

    ref = f"m{uuid.uuid4().hex}"
    k1, k2 = cache_key(f"{ref}@v1", [{"a": 1}]), cache_key(f"{ref}@v2", [{"a": 1}])
    long = cache_key(f"{ref}@v1", [{"a": "x" * 300}])  # a hashed key
    cache.set(k1, [1], ttl=60)
    cache.set(long, [3], ttl=60)
    assert cache.get(k2) is None and cache.get(k1) == [1] and cache.get(long) == [3]


RESPONSE_CACHE_CHECKS: list[Callable[[Any], None]] = [cache_misses_then_holds_until_the_ttl, cache_keys_are_separate]


def check_response_cache(new_cache: Callable[[], ResponseCache]) -> None:
    """Check a response-cache backend: ``new_cache()`` returns a fresh cache.

    Covers misses, round trips of prediction lists, expiry after the TTL and separate keys.
    """
    _run("response cache", new_cache, RESPONSE_CACHE_CHECKS)


# --- model formats -------------------------------------------------------------------------


@dataclass
class _FormatCase:
    """One model in one format, with what the checks need to run it."""

    fmt: ModelFormat
    fitted: Any  # a fitted estimator the format claims, or the bytes of a file in it
    rows: list[dict[str, Any]]
    signature: Mapping[str, Any]
    definition: Any
    trusted: list[str]
    extra_modules: tuple[str, ...]
    recorded: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.signature["output"]["kind"])

    @property
    def classes(self) -> list[Any]:
        return list(self.signature["output"].get("classes") or [])

    def data(self) -> bytes:
        """The file: the fitted estimator dumped (the types it needs trusted are recorded), or the bytes given."""
        if isinstance(self.fitted, bytes):
            return self.fitted
        ser = self.fmt.dump(self.fitted, self.trusted)
        self.recorded = list(ser.trusted_types)
        return ser.data

    def load(self, data: bytes) -> Any:
        """What the format loads from ``data``, trusting the types recorded when it was dumped."""
        return self.fmt.load(data, trusted_types=self.recorded, where="the checked file", estimator=self.definition)

    def reference(self) -> Any:
        """The prediction object the checks compare against (the fitted model itself, not its file)."""
        return self.load(self.fitted) if isinstance(self.fitted, bytes) else self.fmt.native(self.fitted)

    def frame(self, rows: list[dict[str, Any]] | None = None, fmt: Any = None) -> Any:
        from strataml.models import prepare

        return prepare(self.rows if rows is None else rows, self.signature, fmt or self.fmt)

    def predict(self, native: Any, rows: list[dict[str, Any]] | None = None) -> Any:
        import numpy as np

        return np.asarray(self.fmt.predict_matrix(native, self.frame(rows), self.kind, self.classes, 1))


def _refused(call: Callable[[], Any], what: str, match: str = "") -> None:
    from strataml.errors import UnsafeModel

    try:
        call()
    except UnsafeModel as exc:
        assert match in exc.message, f"{what}: refused, but the message does not say {match!r}: {exc.message}"
    else:
        raise AssertionError(f"{what} was accepted")


def format_claims_what_it_saves(case: _FormatCase) -> None:
    if isinstance(case.fitted, bytes):
        return
    assert case.fmt.claims(case.fitted), f"does not claim the {type(case.fitted).__name__} it is checked with"
    ser = case.fmt.dump(case.fitted, case.trusted)
    assert ser.format == case.fmt.name, f"dump records format {ser.format!r}, not {case.fmt.name!r}"
    assert case.fmt.dump(case.fitted, case.trusted).data == ser.data, "two dumps of one model differ (bytes are not canonical)"


def format_round_trip_predicts_byte_identically(case: _FormatCase) -> None:
    data = case.data()
    case.fmt.verify(data, "the checked file")
    expected = case.predict(case.reference())
    got = case.predict(case.load(data))
    assert got.shape == expected.shape and got.tobytes() == expected.tobytes(), (
        f"predictions after dump, verify and load differ from the model's own (largest difference "
        f"{abs(got.astype(float) - expected.astype(float)).max() if got.shape == expected.shape else got.shape})"
    )


def format_refuses_what_is_not_its_file(case: _FormatCase) -> None:
    for junk in (b"import os; os.system('id')\n", b"\x00" * 64):
        _refused(lambda j=junk: case.fmt.verify(j, "junk"), f"verify({junk[:12]!r}...)")  # type: ignore[misc]
        _refused(lambda j=junk: case.load(j), f"load({junk[:12]!r}...)")  # type: ignore[misc]


def format_refuses_pickle(case: _FormatCase) -> None:
    import io
    import pickle
    import zipfile

    payloads = {f"a protocol-{p} pickle": pickle.dumps({"weights": [1.0, 2.0]}, protocol=p) for p in (2, 4, 5)}
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:  # the layout of torch.save
        z.writestr("archive/data.pkl", payloads["a protocol-2 pickle"])
    payloads["a zip holding a pickle"] = zipped.getvalue()
    for what, payload in payloads.items():
        _refused(lambda p=payload: case.fmt.verify(p, "the checked file"), f"verify of {what}", "pickle")  # type: ignore[misc]
        _refused(lambda p=payload: case.load(p), f"load of {what}", "pickle")  # type: ignore[misc]


@contextmanager
def _hidden(modules: tuple[str, ...]) -> Iterator[None]:
    """``import`` of ``modules`` fails inside (as when the extra is not installed)."""
    import sys

    saved = {m: sys.modules.get(m) for m in modules}
    try:
        for m in modules:
            sys.modules[m] = None  # type: ignore[assignment]
        yield
    finally:
        for m, mod in saved.items():
            if mod is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = mod


def format_names_a_missing_extra(case: _FormatCase) -> None:
    from strataml.errors import MissingExtra

    if case.fmt.extra is None:
        return
    data = case.data()
    with _hidden(case.extra_modules):
        try:
            case.load(data)
        except MissingExtra as exc:
            want = f"pip install 'strataml[{case.fmt.extra}]'"
            assert exc.hint == want, f"without {case.extra_modules} the hint is {exc.hint!r}, not {want!r}"
        else:
            raise AssertionError(f"loaded without {', '.join(case.extra_modules)} installed, or without naming the extra")


class _Feature(NamedTuple):
    name: str
    type: str


class _Loaded:
    """What a format's row predictor is given: the loaded model's format, predictor and signature."""

    def __init__(self, case: _FormatCase, native: Any) -> None:
        self.format = case.fmt.name
        self.signature = dict(case.signature)
        self.predictor = self
        self.native = native


def format_row_predictor_answers_like_the_matrix(case: _FormatCase) -> None:
    import numpy as np

    native = case.load(case.data())
    feats = [_Feature(i["name"], i["type"]) for i in case.signature["inputs"]]
    names = [f.name for f in feats]

    def generic(rows: list[dict[str, Any]]) -> Any:
        out = case.predict(native, [{n: r.get(n) for n in names} for r in rows])
        return [dict(zip(case.classes, map(float, r), strict=True)) for r in out] if case.kind == "multiclass" else out

    fast = case.fmt.row_predictor(_Loaded(case, native), feats, generic)
    if fast is None:
        return

    def values(raw: Any) -> Any:
        if isinstance(raw, list) and raw and isinstance(raw[0], dict):
            return np.asarray([[r[c] for c in case.classes] for r in raw], dtype=np.float64)
        out = np.asarray(raw, dtype=np.float64)
        return out[:, 1] if case.kind == "binary" and out.ndim == 2 and out.shape[1] == 2 else out

    for batch in [case.rows, *([r] for r in case.rows[:20])]:
        a, b = values(fast(batch)), values(generic(batch))
        assert a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True), (
            f"the row predictor answers {a[:3].tolist()} where the matrix predictor answers {b[:3].tolist()} "
            f"(on {len(batch)} row(s))"
        )


def format_onnx_export_predicts_like_the_model(case: _FormatCase) -> None:
    import numpy as np

    from strataml.models import ExportRefused
    from strataml.models._onnx_runtime import load_onnx

    native = case.load(case.data())
    try:
        proto = case.fmt.to_onnx(native, case.signature)
    except ExportRefused:
        return  # a refusal that names why (e.g. string inputs its converter cannot encode); a missing converter is no pass
    if proto is None:
        return
    exported = load_onnx(proto.SerializeToString(), "the ONNX export")
    classes = getattr(native, "classes_", None)
    if classes is not None:  # the export's probability columns follow the estimator's classes
        exported.classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
    frame = case.frame(fmt="onnx")
    got = np.asarray(exported.predict_matrix(frame, case.kind, case.classes), dtype=np.float64)
    expected = case.predict(native).astype(np.float64)
    scale = max(1.0, float(np.nanmax(np.abs(expected)))) if case.kind == "regression" and expected.size else 1.0
    assert got.shape == expected.shape, f"the ONNX export answers with shape {got.shape}, the model with {expected.shape}"
    diff = float(np.nanmax(np.abs(got - expected))) if got.size else 0.0
    assert diff <= 1e-4 * scale, f"the ONNX export's predictions differ from the model's by up to {diff:.3g}"


MODEL_FORMAT_CHECKS: list[Callable[[_FormatCase], None]] = [
    format_claims_what_it_saves,
    format_round_trip_predicts_byte_identically,
    format_refuses_what_is_not_its_file,
    format_refuses_pickle,
    format_names_a_missing_extra,
    format_row_predictor_answers_like_the_matrix,
    format_onnx_export_predicts_like_the_model,
]


def check_model_format(
    fmt: ModelFormat,
    fitted: Any,
    rows: list[dict[str, Any]],
    signature: Mapping[str, Any],
    *,
    definition: Any = None,
    trusted: Iterable[str] = (),
    extra_modules: Iterable[str] | None = None,
) -> None:
    """Check a model format (:class:`strataml.models.ModelFormat`) on one fitted model.

    ``fitted`` is a fitted estimator the format claims (or, for a format that saves no
    estimator, such as ONNX, the bytes of a file in it); ``rows`` are records to predict;
    ``signature`` is ``{"inputs": [{"name", "type"}...], "output": {"kind", "classes"}}``.
    ``definition`` is the unfitted estimator a weights-only format rebuilds the model
    from; ``trusted`` the types its file may name; ``extra_modules`` the modules whose
    absence the format reports as its missing extra (default: the extra's name).

    Covers canonical dumps, a dump → verify → load round trip that predicts
    byte-identically, refusal of files that are not the format's and of pickles (bare or
    zipped), the missing extra named with its pip command, the optional fast row predictor answering
    like the matrix predictor, and the optional ONNX export predicting like the model.
    """
    case = _FormatCase(fmt, fitted, list(rows), dict(signature), definition, list(trusted),
                       tuple(extra_modules if extra_modules is not None else ([fmt.extra] if fmt.extra else [])))
    for check in MODEL_FORMAT_CHECKS:
        try:
            check(case)
        except AssertionError as exc:
            raise AssertionError(f"model format {fmt.name!r}: {check.__name__}: {exc}") from exc
