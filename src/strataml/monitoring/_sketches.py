"""Mergeable column summaries: what a profile keeps of each column.

A numeric column keeps its count, nulls, mean and spread (merged with Chan's
parallel formula), min, max and an Apache DataSketches KLL quantile sketch; a
categorical column keeps the count of each value (the most frequent
:data:`MAX_CATEGORIES`, the rest summed under ``__other__``). Both merge exactly
(KLL within its rank error), so window profiles fold into larger windows without
rereading rows.

Where a figure is approximate: quantiles, histograms and every statistic computed from
a numeric column's CDF (KS, PSI, Wasserstein) come from the KLL sketch, whose
normalised rank error at ``k=1000`` is about 0.3% (so KS is within ~0.006 of the exact
statistic). A column summarised at once is fed to its sketch sorted: each compaction then
halves an ascending run of values, so at most a couple per level straddle any point and
the rank error is bounded by the sketch's levels (about ``2 * 2**(levels - 1) / n``,
under 0.002 up to a million values) whatever KLL's random bits. Counts, nulls, mean, std, min and max are exact; categorical counts are
exact while a column has at most :data:`MAX_CATEGORIES` distinct values.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import datasketches
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strataml.monitoring._arrays import float64_values

KLL_K = 1000
MAX_CATEGORIES = 1000
OTHER = "__other__"
QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
HISTOGRAM_BINS = 50
PARALLEL_ROWS = 100_000


def column_kind(t: pa.DataType) -> str | None:
    """``numeric``, ``categorical`` or None (a type profiles skip: timestamps, nested)."""
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t) or pa.types.is_dictionary(t):
        return "categorical"
    if pa.types.is_null(t):
        return "numeric"
    return None


@dataclass
class NumericSummary:
    """Count, nulls, moments, extremes and a KLL sketch of one numeric column."""

    count: int = 0
    nulls: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    sketch: datasketches.kll_doubles_sketch = field(default_factory=lambda: datasketches.kll_doubles_sketch(KLL_K))

    kind = "numeric"

    def update(self, values: pa.Array | pa.ChunkedArray | np.ndarray) -> None:
        """Add a column's values (nulls and NaN count as null)."""
        arr = values if isinstance(values, np.ndarray) else float64_values(values)
        # sorted: NaN go last, and KLL takes sorted input several times faster (its error
        # bound holds for any order)
        ok = np.sort(arr)
        if len(ok) and np.isnan(ok[-1]):
            ok = ok[: int(np.searchsorted(ok, np.nan))]
        self.nulls += len(arr) - len(ok)
        if len(ok) == 0:
            return
        self.sketch.update(ok)
        n = len(ok)
        mean = float(ok.sum()) / n
        dev = ok - mean  # squared in place and summed: np.dot would go through BLAS threads
        self._combine(n, mean, float(np.square(dev, out=dev).sum()), float(ok[0]), float(ok[-1]))

    def _combine(self, n: int, mean: float, m2: float, lo: float, hi: float) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.min, self.max = min(self.min, lo), max(self.max, hi)

    def merge(self, other: NumericSummary) -> None:
        """Fold another summary of the same column into this one."""
        self.nulls += other.nulls
        if other.count:
            self.sketch.merge(other.sketch)
            self._combine(other.count, other.mean, other.m2, other.min, other.max)

    @property
    def std(self) -> float:
        """The sample standard deviation (0 for fewer than two values)."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """P(X <= x) at each point (from the sketch)."""
        if self.count == 0:
            return np.zeros(len(points))
        return np.asarray(self.sketch.get_cdf(list(map(float, points)), True)[:-1])

    def quantiles(self, ranks: np.ndarray) -> np.ndarray:
        """The values at normalised ranks (from the sketch)."""
        return np.asarray(self.sketch.get_quantiles(list(map(float, ranks)), True), dtype="float64")

    def to_dict(self) -> dict[str, Any]:
        """The user-facing summary (quantiles and a histogram over [min, max])."""
        out: dict[str, Any] = {"kind": "numeric", "count": self.count, "nulls": self.nulls}
        if self.count == 0:
            return {**out, "mean": None, "std": None, "min": None, "max": None, "quantiles": None, "histogram": None}
        qs = self.quantiles(np.array(list(QUANTILES.values())))
        edges = np.linspace(self.min, self.max, HISTOGRAM_BINS + 1) if self.max > self.min else np.array([self.min, self.max])
        cum = np.concatenate([[0.0], self.cdf(edges[1:-1]), [1.0]]) if len(edges) > 2 else np.array([0.0, 1.0])
        counts = np.diff(np.round(cum * self.count)).astype(int)
        return {
            **out, "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
            "quantiles": {k: float(v) for k, v in zip(QUANTILES, qs, strict=True)},
            "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        }

    def state(self) -> dict[str, Any]:
        """A JSON-ready state that :func:`from_state` restores exactly."""
        return {"kind": "numeric", "count": self.count, "nulls": self.nulls, "mean": self.mean, "m2": self.m2,
                "min": self.min if self.count else None, "max": self.max if self.count else None,
                "kll": base64.b64encode(self.sketch.serialize()).decode()}


@dataclass
class CategoricalSummary:
    """Value counts of one categorical column (top values plus ``__other__``)."""

    counts: dict[str, int] = field(default_factory=dict)
    nulls: int = 0

    kind = "categorical"

    def update(self, values: pa.Array | pa.ChunkedArray) -> None:
        """Add a column's values (nulls counted apart)."""
        if pa.types.is_dictionary(values.type) and (pa.types.is_string(values.type.value_type) or pa.types.is_large_string(values.type.value_type)):
            pass  # counted on the dictionary's indices: no string is copied
        elif pa.types.is_dictionary(values.type):
            values = pc.cast(values, values.type.value_type)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_dictionary(values.type)):
            values = pc.cast(values, pa.string())
        self.nulls += values.null_count
        vc = pc.value_counts(values)
        for v, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
            if v is not None:
                self.counts[v] = self.counts.get(v, 0) + int(n)
        self._trim()

    def add_counts(self, values: list[str], counts: np.ndarray, nulls: int = 0) -> None:
        """Add counted values (``counts[i]`` of ``values[i]``) and nulls."""
        self.nulls += nulls
        for v, n in zip(values, counts.tolist(), strict=True):
            if n:
                self.counts[v] = self.counts.get(v, 0) + int(n)
        self._trim()

    def merge(self, other: CategoricalSummary) -> None:
        """Fold another summary of the same column into this one."""
        self.nulls += other.nulls
        for v, n in other.counts.items():
            self.counts[v] = self.counts.get(v, 0) + n
        self._trim()

    def _trim(self) -> None:
        if len(self.counts) - (OTHER in self.counts) <= MAX_CATEGORIES:
            return
        other = self.counts.pop(OTHER, 0)
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        self.counts = dict(ranked[:MAX_CATEGORIES])
        self.counts[OTHER] = other + sum(n for _, n in ranked[MAX_CATEGORIES:])

    @property
    def count(self) -> int:
        """Non-null values."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """The user-facing summary (counts, most frequent first, ``__other__`` last)."""
        ranked = sorted(((v, n) for v, n in self.counts.items() if v != OTHER), key=lambda kv: (-kv[1], kv[0]))
        counts = dict(ranked)
        counts[OTHER] = self.counts.get(OTHER, 0)
        return {"kind": "categorical", "count": self.count, "nulls": self.nulls, "counts": counts}

    def state(self) -> dict[str, Any]:
        """A JSON-ready state that :func:`from_state` restores exactly."""
        return {"kind": "categorical", "nulls": self.nulls, "counts": dict(self.counts)}


Summary = NumericSummary | CategoricalSummary


def new_summary(kind: str) -> Summary:
    """An empty summary of a column kind."""
    return NumericSummary() if kind == "numeric" else CategoricalSummary()


def from_state(state: dict[str, Any]) -> Summary:
    """A summary restored from :meth:`state`."""
    if state["kind"] == "categorical":
        return CategoricalSummary(counts={str(k): int(v) for k, v in state["counts"].items()}, nulls=int(state["nulls"]))
    s = NumericSummary(count=int(state["count"]), nulls=int(state["nulls"]), mean=float(state["mean"]), m2=float(state["m2"]),
                       min=math.inf if state["min"] is None else float(state["min"]),
                       max=-math.inf if state["max"] is None else float(state["max"]))
    s.sketch = datasketches.kll_doubles_sketch.deserialize(base64.b64decode(state["kll"]))
    return s


def is_identifier(values: pa.ChunkedArray | pa.Array) -> bool:
    """Whether a text column is an identifier (at least 100 values, every one distinct): it
    has no distribution to compare, so profiles leave it out."""
    n = len(values) - values.null_count
    t = values.type
    if pa.types.is_dictionary(t):
        text = pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        if sum(len(c.dictionary) for c in chunks) < n:  # fewer distinct values than rows: no counting needed
            return False
        return bool(n >= 100 and text and len(pc.value_counts(values).field("values").drop_null()) == n)
    return bool(n >= 100 and (pa.types.is_string(t) or pa.types.is_large_string(t)) and pc.count_distinct(values).as_py() == n)


def _summary_of(column: pa.ChunkedArray) -> Summary | None:
    kind = column_kind(column.type)
    if kind is None or (kind == "categorical" and is_identifier(column)):
        return None
    s = new_summary(kind)
    s.update(column)
    return s


def summarise(table: pa.Table, columns: list[str] | None = None) -> dict[str, Summary]:
    """Summaries of a table's profilable columns (or of ``columns``); identifiers are left out.

    Large tables summarise two columns at a time: sorting a column releases the GIL, so one
    column sorts while the other updates its sketch."""
    names = columns if columns is not None else table.column_names
    if table.num_rows >= PARALLEL_ROWS and len(names) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            found = list(pool.map(_summary_of, [table[n] for n in names]))
    else:
        found = [_summary_of(table[n]) for n in names]
    return {n: s for n, s in zip(names, found, strict=True) if s is not None}
