"""LightGBM models in LightGBM's own text format (the booster dump), and their fast
single-instance predictions.

The gateway's requests are one or a few rows; building a DataFrame for each costs far
more than the prediction. :class:`LightGBMRows` builds the float matrix straight from
the rows and calls LightGBM's single-row C entry point; :func:`lightgbm_fast_path`
offers it for a registered model only where it answers exactly like the generic path.
"""

from __future__ import annotations

import math
import operator
import re
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from strataml.errors import UnsafeModel
from strataml.models._pickle_guard import refuse_pickle
from strataml.models.formats._base import EstimatorFormat, RowsFn, Serialized, float_inputs

_LGB_HEAD = re.compile(rb"^tree\r?\nversion=v\d+\r?\n")


class LightGBMFormat(EstimatorFormat):
    """LightGBM models (sklearn wrappers or boosters), stored as the booster's text dump."""

    name = "lightgbm"
    categorical = True
    onnx_packages: tuple[str, ...] = ("onnxmltools",)
    #: below this many rows a prediction runs on one thread (thread start-up costs more)
    SMALL_BATCH = 2_000

    def claims(self, estimator: Any) -> bool:
        return type(estimator).__module__.startswith("lightgbm")

    def configure(self, params: Mapping[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        # reproducible bytes: no timing-based choice between row- and column-wise histograms
        if "force_row_wise" not in params and "force_col_wise" not in params:
            extra["force_col_wise"] = True
        if "deterministic" not in params:
            extra["deterministic"] = True
        if "verbose" not in params and "verbosity" not in params:
            extra["verbosity"] = -1
        return extra

    def dump(self, estimator: Any, trusted: Iterable[str] = ()) -> Serialized:
        return Serialized(self.native(estimator).model_to_string().encode("utf-8"), self.name)

    def verify(self, data: bytes, where: str) -> None:
        refuse_pickle(data, where)
        if not _LGB_HEAD.match(data[:64]):
            raise UnsafeModel(f"{where} is not a LightGBM text model (it does not start with 'tree/version=')")

    def load(self, data: bytes, *, trusted_types: Iterable[str] = (), where: str = "model artifact", estimator: Any = None) -> Any:
        import lightgbm as lgb

        self.verify(data, where)
        try:
            return lgb.Booster(model_str=data.decode("utf-8"))
        except Exception as exc:
            raise UnsafeModel(f"{where} is not a valid LightGBM model: {exc}") from exc

    def native(self, estimator: Any) -> Any:
        return estimator.booster_ if hasattr(estimator, "booster_") else estimator

    def predict_matrix(self, native: Any, frame: pd.DataFrame, kind: str, classes: list[Any], threads: int | None) -> np.ndarray:
        n = 1 if len(frame) < self.SMALL_BATCH else (threads or 0)
        return np.asarray(native.predict(frame, num_threads=n))

    def row_predictor(self, loaded: Any, feats: Sequence[Any], generic: RowsFn) -> RowsFn | None:
        return lightgbm_fast_path(loaded, feats, generic)

    def to_onnx(self, native: Any, signature: Mapping[str, Any]) -> Any:
        """The booster through onnxmltools (numeric inputs, one float matrix, no ZipMap)."""
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        n = float_inputs(signature, "this LightGBM model")
        return convert_lightgbm(native, initial_types=[("input", FloatTensorType([None, n]))], zipmap=False, target_opset=15)


def lightgbm_fast_path(loaded: Any, feats: Sequence[Any], generic: Callable[[list[dict[str, Any]]], Any]) -> Callable[[list[dict[str, Any]]], Any] | None:
    """For a native LightGBM model: predict from a float matrix built straight from the
    rows (string features mapped to the category codes recorded at training) without
    building a DataFrame. Used only if it gives the generic path's answers on probe rows
    (zeros, ones, missing values, random values, every known category and an unknown one)."""
    native = getattr(getattr(loaded, "predictor", None), "native", None)
    if getattr(loaded, "format", None) != "lightgbm" or native is None or not hasattr(native, "predict"):
        return None
    if not feats or any(f.type not in ("float", "int", "bool", "string") for f in feats):
        return None
    names = [f.name for f in feats]
    kinds = {f.name: f.type for f in feats}
    strings = [f.name for f in feats if f.type == "string"]
    recorded = list(getattr(native, "pandas_categorical", None) or [])
    if len(recorded) != len(strings):  # the categories seen in training are unknown: keep the generic path
        return None
    codes = {n: {c: float(i) for i, c in enumerate(cats)} for n, cats in zip(strings, recorded, strict=True)}
    try:
        fast: Callable[[list[dict[str, Any]]], Any] = LightGBMRows(native, names, codes)
    except Exception:
        return None

    rng = np.random.default_rng(0)

    def value(n: str, i: int) -> Any:
        kind = kinds[n]
        if kind == "string":
            cats = list(codes[n])
            return cats[i % len(cats)] if cats and i % (len(cats) + 1) else "\x00unseen category"
        if kind == "bool":
            return bool(rng.integers(0, 2))
        return int(rng.integers(-100, 100)) if kind == "int" else float(rng.normal(0, 100))

    if strings:
        probes: list[dict[str, Any]] = [dict.fromkeys(names)]
    else:
        probes = [dict.fromkeys(names, 0), dict.fromkeys(names, 1), dict.fromkeys(names)]
    span = max([len(c) + 1 for c in codes.values()] + [5])
    probes += [{n: value(n, i) for n in names} for i in range(span)]
    try:
        for batch in (probes, probes[:1]):
            a = np.asarray(fast(batch), dtype=np.float64)
            raw = generic(batch)
            b = np.asarray([[r[k] for k in sorted(r)] for r in raw] if isinstance(raw, list) and raw and isinstance(raw[0], dict) else raw, dtype=np.float64)
            if a.shape != b.shape and a.ndim == 2 and a.shape[1] == 2 and b.ndim == 1:
                a = a[:, 1]
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
                return None
    except Exception:
        return None
    return fast


class LightGBMRows:
    """Predictions of a LightGBM ``Booster`` for a few rows at a time, without its Python
    overhead: each row goes through the C API's single-row fast path (set up once per
    model), called with the interpreter lock held — a row takes microseconds, and holding
    the lock also keeps two threads out of the booster's one-thread prediction buffers.
    Larger batches use ``Booster.predict`` on the float matrix (one thread below
    ``threaded_rows``)."""

    SINGLE_ROWS = 8

    def __init__(self, booster: Any, names: list[str], codes: dict[str, dict[Any, float]] | None = None, *, threaded_rows: int = 2_000) -> None:
        import ctypes
        import weakref

        from lightgbm.basic import _LIB, _safe_call  # type: ignore[attr-defined]

        self.booster = booster
        self.names = names
        self.codes = codes or {}
        self.threaded_rows = threaded_rows
        self.width = int(booster.num_model_per_iteration())
        best = int(getattr(booster, "best_iteration", 0) or 0)
        self._num_iteration = best if best > 0 else -1
        handle = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(self._num_iteration),
            ctypes.c_int(1), ctypes.c_int32(len(names)), ctypes.c_char_p(b"num_threads=1"), ctypes.byref(handle),
        ))
        self._config = handle
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, handle)
        lib = ctypes.PyDLL(_LIB._name)  # called with the interpreter lock held
        self._fast = lib["LGBM_BoosterPredictForMatSingleRowFast"]
        self._fast.restype = ctypes.c_int
        self._fast.argtypes = [ctypes.c_void_p] * 4
        self._out_len = ctypes.c_int64()
        self._out_len_p = ctypes.addressof(self._out_len)
        # one row (the usual online request) goes through buffers set up once, skipping
        # numpy: its arrays and their ctypes views cost more than the prediction; the
        # call's arguments never change, so they are ready ctypes objects, passed to an
        # entry without argtypes that skips converting them on every call
        self._row = (ctypes.c_double * len(names))()
        self._pack = struct.Struct(f"={len(names)}d").pack_into  # the row in one call, not one ctypes store per value
        self._values: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            operator.itemgetter(*names) if len(names) > 1 else lambda r, n=names[0]: (r[n],)  # type: ignore[misc]
        )
        self._res = (ctypes.c_double * self.width)()
        self._one_lock = threading.Lock()
        self._fast_one = lib["LGBM_BoosterPredictForMatSingleRowFast"]
        self._fast_one.restype = ctypes.c_int
        self._one_args = (handle, ctypes.byref(self._row), ctypes.byref(self._out_len), ctypes.byref(self._res))

    def __reduce__(self) -> tuple[Any, ...]:
        # the C handles are per process: a copy (e.g. sent to a Ray worker) sets up its own
        return (LightGBMRows, (self.booster, self.names, self.codes), {"threaded_rows": self.threaded_rows})

    def matrix(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """The float64 input matrix of ``rows`` (None → NaN, strings → training category codes, unknown → NaN)."""
        out = np.empty((len(rows), len(self.names)), dtype=np.float64)
        codes = self.codes
        nan = np.nan
        for i, r in enumerate(rows):
            vals = []
            for n in self.names:
                v = r.get(n)
                if v is None:
                    vals.append(nan)
                elif n in codes:
                    vals.append(codes[n].get(v, nan))
                else:
                    vals.append(v)
            out[i] = vals
        return out

    def _one(self, r: dict[str, Any]) -> list[Any] | None:
        """The raw output of one row through the preallocated buffers (None: a value is
        not a number, left to the matrix path to report)."""
        try:
            values = self._values(r)
        except KeyError:  # a feature absent from the row is missing
            values = tuple([r.get(n) for n in self.names])
        nan = math.nan
        codes = self.codes
        if codes:
            values = tuple([codes[n].get(v, nan) if n in codes else v for n, v in zip(self.names, values, strict=True)])
        if None in values:
            values = tuple([nan if v is None else v for v in values])
        with self._one_lock:  # the buffers are shared by the threads that predict
            try:
                self._pack(self._row, 0, *values)
            except (TypeError, struct.error):
                return None
            if self._fast_one(*self._one_args) != 0:
                _failed()
            return [self._res[0]] if self.width == 1 else [list(self._res)]

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        if len(rows) == 1:
            one = self._one(rows[0])
            if one is not None:
                return one
        x = self.matrix(rows)
        n = len(rows)
        if n > self.SINGLE_ROWS:
            return np.asarray(self.booster.predict(x, num_threads=1 if n < self.threaded_rows else 0))
        res = np.empty((n, self.width), dtype=np.float64)
        x_at, res_at, x_step, res_step = x.ctypes.data, res.ctypes.data, 8 * x.shape[1], 8 * self.width
        for i in range(n):
            rc = self._fast(self._config.value, x_at + i * x_step, self._out_len_p, res_at + i * res_step)
            if rc != 0:
                _failed()
        return res[:, 0] if self.width == 1 else res


def _failed() -> NoReturn:
    """Raise LightGBM's last error (after a prediction call returned non-zero)."""
    from lightgbm.basic import _LIB  # type: ignore[attr-defined]

    raise RuntimeError(f"LightGBM prediction failed: {_LIB.LGBM_GetLastError().decode()}")
