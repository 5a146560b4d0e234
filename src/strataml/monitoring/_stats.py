"""Drift statistics between two column summaries, and the drift report.

Per column: a numeric column gets the two-sample Kolmogorov-Smirnov test, PSI over the
reference's deciles and the Wasserstein distance normalised by the reference's
standard deviation; a categorical column gets the chi-squared test of homogeneity,
PSI over the categories and the Jensen-Shannon distance (base 2, in [0, 1]).

A column is called drifted only when its p-value, after the Benjamini-Hochberg
correction over the columns tested together, is below ``alpha`` and its distance is at
least the minimum effect size: on large windows every p-value is tiny, and with many
columns some test fails by chance. The model's prediction is one test of its own (not
corrected).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from strataml.errors import ConfigError
from strataml.monitoring._sketches import CategoricalSummary, NumericSummary, Summary, new_summary
from strataml.monitoring._special import chi2_sf, kolmogorov_sf

PSI_EPS = 1e-4
GRID = 2001


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted (every field documented in the README).

    ``alpha``: the false-discovery rate for the Benjamini-Hochberg corrected p-values
    (0.05). ``numeric_distance``: the minimum Wasserstein distance in reference standard
    deviations (0.1). ``categorical_distance``: the minimum Jensen-Shannon distance
    (0.1). ``min_rows``: fewer non-null rows on either side is ``insufficient_data``
    (100). ``drift_share``: the dataset counts as drifted when at least this share of its
    tested columns drifted (0.5), or when the prediction drifted.
    """

    alpha: float = 0.05
    numeric_distance: float = 0.1
    categorical_distance: float = 0.1
    min_rows: int = 100
    drift_share: float = 0.5

    @classmethod
    def of(cls, value: Thresholds | dict[str, Any] | None) -> Thresholds:
        """Thresholds from an instance, a dictionary of overrides or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Thresholds):
            return value
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown drift thresholds: {', '.join(sorted(unknown))}",
                              hint=f"use any of {', '.join(cls.__dataclass_fields__)}")
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in value.items()})

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as a dictionary."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _empty(kind: str, reason: str) -> dict[str, Any]:
    return {"kind": kind, "test": "ks" if kind == "numeric" else "chi2", "statistic": None, "p_value": None,
            "psi": None, "distance": None, "drifted": False, "reason": reason}


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.clip(p, PSI_EPS, None), np.clip(q, PSI_EPS, None)
    return float(np.sum((q - p) * np.log(q / p)))


# closed forms rather than scipy.special: importing scipy.special costs a command 0.3 s
# of CPU (see _special.py); the tests check them against scipy.


def ks_p_value(d: float, n: int, m: int) -> float:
    """The two-sample KS p-value from the asymptotic Kolmogorov distribution (``ks_2samp``'s
    ``method="asymp"`` for large samples)."""
    return kolmogorov_sf(d * float(np.sqrt(n * m / (n + m))))


def _rel_entr(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``p * log(p / q)`` elementwise, 0 where p is 0 (scipy.special.rel_entr for q > 0 where p > 0)."""
    out = np.zeros_like(p)
    pos = p > 0
    out[pos] = p[pos] * np.log(p[pos] / q[pos])
    return out


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """The Jensen-Shannon distance (base 2) between two probability vectors."""
    mid = (p + q) / 2
    kl = _rel_entr(p, mid).sum() + _rel_entr(q, mid).sum()
    return float(np.sqrt(max(kl, 0.0) / 2 / np.log(2)))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (the false-discovery-rate correction)."""
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    out = np.empty_like(ranked)
    out[order] = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    return out


def compare_numeric(ref: NumericSummary, cur: NumericSummary) -> dict[str, Any]:
    """KS statistic and p-value, PSI and normalised Wasserstein distance from two sketches."""
    n, m = ref.count, cur.count
    grid = np.linspace(0.0, 1.0, GRID)
    points = np.unique(np.concatenate([ref.quantiles(grid), cur.quantiles(grid)]))
    ks = float(np.max(np.abs(ref.cdf(points) - cur.cdf(points))))
    p = ks_p_value(ks, n, m)
    edges = np.unique(ref.quantiles(np.linspace(0.1, 0.9, 9)))
    pr, pc_ = (np.diff(np.concatenate([[0.0], s.cdf(edges), [1.0]])) for s in (ref, cur))
    mid = (np.arange(1000) + 0.5) / 1000
    w = float(np.mean(np.abs(ref.quantiles(mid) - cur.quantiles(mid))))
    scale = ref.std if ref.std > 0 else max(abs(ref.mean), 1.0)
    out = {"kind": "numeric", "test": "ks", "statistic": ks, "p_value": p, "psi": _psi(pr, pc_), "distance": w / scale, "drifted": False}
    if ref.std == 0:
        out["reason"] = "constant on the reference side (distance in units of its mean)"
    return out


def compare_categorical(ref: CategoricalSummary, cur: CategoricalSummary) -> dict[str, Any]:
    """Chi-squared statistic and p-value, PSI and Jensen-Shannon distance from two count tables."""
    cats = sorted(set(ref.counts) | set(cur.counts))
    a = np.array([ref.counts.get(c, 0) for c in cats], dtype="float64")
    b = np.array([cur.counts.get(c, 0) for c in cats], dtype="float64")
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    pa_, pb = a / a.sum(), b / b.sum()
    out: dict[str, Any] = {"kind": "categorical", "test": "chi2", "psi": _psi(pa_, pb),
                           "distance": js_distance(pa_, pb), "drifted": False}
    if len(a) < 2:
        return {**out, "statistic": 0.0, "p_value": 1.0, "reason": "a single category on both sides"}
    observed = np.vstack([a, b])
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    return {**out, "statistic": chi2, "p_value": chi2_sf(len(a) - 1, chi2)}


def compare(ref: Summary | None, cur: Summary | None, th: Thresholds) -> dict[str, Any]:
    """One column's drift figures, or the reason there are none."""
    if ref is None or cur is None:
        kind = (ref or cur).kind if (ref or cur) is not None else "numeric"  # type: ignore[union-attr]
        side = "both sides (check the name)" if ref is None and cur is None else f"the {'reference' if ref is None else 'current'} side"
        return _empty(kind, f"absent on {side}")
    if ref.kind != cur.kind:
        return _empty(ref.kind, f"{ref.kind} on the reference side but {cur.kind} on the current side")
    for side, s in (("reference", ref), ("current", cur)):
        if s.count == 0:
            return _empty(ref.kind, f"all null on the {side} side")
    if min(ref.count, cur.count) < th.min_rows:
        return _empty(ref.kind, "insufficient_data")
    if isinstance(ref, NumericSummary) and isinstance(cur, NumericSummary):
        return compare_numeric(ref, cur)
    assert isinstance(ref, CategoricalSummary) and isinstance(cur, CategoricalSummary)
    return compare_categorical(ref, cur)


def decide(features: dict[str, dict[str, Any]], th: Thresholds) -> None:
    """Set each tested column's ``drifted``: BH-corrected p below alpha and distance at least the minimum."""
    tested = [k for k, f in features.items() if f["p_value"] is not None]
    if not tested:
        return
    adjusted = benjamini_hochberg(np.array([features[k]["p_value"] for k in tested]))
    for k, q in zip(tested, adjusted, strict=True):
        f = features[k]
        floor = th.numeric_distance if f["kind"] == "numeric" else th.categorical_distance
        f["drifted"] = bool(q < th.alpha and f["distance"] >= floor)


def decide_one(f: dict[str, Any], th: Thresholds) -> None:
    """``drifted`` of a single test (the prediction): p below alpha and distance at least the minimum."""
    if f["p_value"] is not None:
        floor = th.numeric_distance if f["kind"] == "numeric" else th.categorical_distance
        f["drifted"] = bool(f["p_value"] < th.alpha and f["distance"] >= floor)


@dataclass
class DriftReport:
    """Drift of a current window or dataset against a reference (``to_dict`` is the ``--json`` output).

    ``drift_share`` is the share of tested columns that drifted, or ``"insufficient_data"``
    when either side has fewer than ``min_rows`` rows.
    """

    reference: str
    current: str
    rows: dict[str, int]
    features: dict[str, dict[str, Any]]
    prediction: dict[str, Any] | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def drift_share(self) -> float | str:
        """The share of tested columns that drifted."""
        if min(self.rows["reference"], self.rows["current"]) < self.thresholds.min_rows:
            return "insufficient_data"
        tested = [f for f in self.features.values() if f["p_value"] is not None]
        return sum(f["drifted"] for f in tested) / len(tested) if tested else 0.0

    @property
    def drifted(self) -> bool:
        """Whether the share of drifted columns reaches the threshold or the prediction drifted."""
        share = self.drift_share
        if isinstance(share, str):
            return False
        tested = any(f["p_value"] is not None for f in self.features.values())
        return bool((tested and share >= self.thresholds.drift_share) or (self.prediction or {}).get("drifted"))

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted columns."""
        return [k for k, f in self.features.items() if f["drifted"]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``strata monitor drift --json`` prints."""
        out: dict[str, Any] = {"reference": self.reference, "current": self.current, "rows": dict(self.rows), "features": self.features}
        if self.prediction is not None:
            out["prediction"] = self.prediction
        out["drift_share"] = self.drift_share
        out["drifted"] = self.drifted
        return out


def report(reference: str, current: str, ref: dict[str, Summary], cur: dict[str, Summary], columns: list[str],
           rows: tuple[int, int], th: Thresholds, prediction: tuple[Summary | None, Summary | None] | None = None) -> DriftReport:
    """Compare the named columns of two profiles' summaries (and their predictions)."""
    if min(rows) < th.min_rows:  # a window too small to test reports that, column by column
        features = {c: _empty((ref.get(c) or cur.get(c) or new_summary("numeric")).kind, "insufficient_data") for c in columns}
    else:
        features = {c: compare(ref.get(c), cur.get(c), th) for c in columns}
    decide(features, th)
    pred = None
    if prediction is not None:
        pred = compare(prediction[0], prediction[1], th)
        decide_one(pred, th)
    return DriftReport(reference, current, {"reference": rows[0], "current": rows[1]}, features, pred, th)
