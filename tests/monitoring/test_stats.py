"""Statistics from sketches agree with the exact statistics on the raw values (scipy)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats as sps

from strataml.monitoring import CategoricalSummary, NumericSummary, Thresholds
from strataml.monitoring._stats import PSI_EPS, compare, report


def num(values: np.ndarray) -> NumericSummary:
    s = NumericSummary()
    s.update(pa.array(values))
    return s


def cat(values: list[str | None]) -> CategoricalSummary:
    s = CategoricalSummary()
    s.update(pa.array(values, pa.string()))
    return s


@pytest.mark.parametrize(("n", "m", "shift", "scale"), [(200_000, 150_000, 0.0, 1.0), (100_000, 300_000, 0.05, 1.0),
                                                        (50_000, 50_000, 0.3, 1.5), (5_000, 400, 0.0, 1.0)])
def test_ks_from_sketches_is_within_001_of_scipy(n: int, m: int, shift: float, scale: float) -> None:
    # Deterministic although KLL compacts at random: a summary feeds its sketch the column
    # sorted, so each compaction halves an ascending run of values and at most a couple of
    # compactions per level straddle any point; the rank error is then bounded by the
    # sketch's levels (about 2 * 2**(levels - 1) / n: under 0.002 at k=1000 for these
    # sizes) whatever the random bits, far inside the 0.01 the statistic may miss by.
    rng = np.random.default_rng(n + m)
    a = rng.lognormal(size=n)
    b = rng.lognormal(mean=shift, sigma=scale, size=m)
    sa, sb = num(a), num(b)
    for s, raw in ((sa, np.sort(a)), (sb, np.sort(b))):
        points = np.unique(s.quantiles(np.linspace(0, 1, 4001)))
        exact_cdf = np.searchsorted(raw, points, side="right") / len(raw)
        assert np.max(np.abs(s.cdf(points) - exact_cdf)) < 0.004  # the sketch's own rank error, at every retained value
    got = compare(sa, sb, Thresholds())
    exact = sps.ks_2samp(a, b)
    assert abs(got["statistic"] - exact.statistic) < 0.01
    w = sps.wasserstein_distance(a, b) / a.std(ddof=1)
    assert got["distance"] == pytest.approx(w, rel=0.1, abs=0.03)  # the sketch adds noise in the tails
    # the p-value is the asymptotic one of the sketched statistic
    assert got["p_value"] == pytest.approx(sps.kstwobign.sf(got["statistic"] * np.sqrt(n * m / (n + m))), rel=1e-9)
    if exact.pvalue < 1e-9:
        assert got["p_value"] < 1e-4


def test_numeric_psi_matches_the_raw_computation_over_the_reference_deciles() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=100_000), rng.normal(0.2, 1.1, size=80_000)
    edges = np.quantile(a, np.linspace(0.1, 0.9, 9))
    p = np.clip(np.histogram(a, np.concatenate([[-np.inf], edges, [np.inf]]))[0] / len(a), PSI_EPS, None)
    q = np.clip(np.histogram(b, np.concatenate([[-np.inf], edges, [np.inf]]))[0] / len(b), PSI_EPS, None)
    assert compare(num(a), num(b), Thresholds())["psi"] == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=0.01)


def test_chi2_and_psi_are_exact_for_categorical_columns() -> None:
    rng = np.random.default_rng(2)
    a = rng.choice(["US", "DE", "FR", "GB"], p=[0.4, 0.3, 0.2, 0.1], size=30_000).tolist()
    b = rng.choice(["US", "DE", "FR", "GB", "IT"], p=[0.35, 0.3, 0.2, 0.1, 0.05], size=20_000).tolist()
    got = compare(cat(a + [None] * 7), cat(b), Thresholds())
    cats = sorted(set(a) | set(b))
    table = np.array([[a.count(c) for c in cats], [b.count(c) for c in cats]])
    exact = sps.chi2_contingency(table, correction=False)
    assert got["test"] == "chi2" and got["statistic"] == pytest.approx(exact.statistic, rel=1e-12)
    assert got["p_value"] == pytest.approx(exact.pvalue, rel=1e-9, abs=1e-300)
    p = np.clip(table[0] / table[0].sum(), PSI_EPS, None)
    q = np.clip(table[1] / table[1].sum(), PSI_EPS, None)
    assert got["psi"] == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-12)


def test_merged_summaries_equal_the_summary_of_all_rows() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.normal(i, 1 + i, size=10_000 + i) for i in range(5)]
    whole = num(np.concatenate(parts))
    merged = num(parts[0])
    for p in parts[1:]:
        merged.merge(num(p))
    assert merged.count == whole.count and merged.min == whole.min and merged.max == whole.max
    assert merged.mean == pytest.approx(whole.mean, rel=1e-12) and merged.std == pytest.approx(whole.std, rel=1e-12)
    c1, c2 = cat(["a", "b", None]), cat(["b", "c"])
    c1.merge(c2)
    assert c1.counts == {"a": 1, "b": 2, "c": 1} and c1.nulls == 1


def test_no_drift_across_many_columns_is_not_called_drift_and_a_real_shift_is() -> None:
    rng = np.random.default_rng(4)
    ref = {f"x{i}": num(rng.normal(size=20_000)) for i in range(30)}
    cur = {f"x{i}": num(rng.normal(size=20_000)) for i in range(30)}
    cur["x0"] = num(rng.normal(1.0, 1.0, size=20_000))
    cur["x1"] = num(rng.normal(0.01, 1.0, size=20_000))  # significant at this size, but below the effect size
    rep = report("r", "c", ref, cur, list(ref), (20_000, 20_000), Thresholds())
    assert rep.drifted_features == ["x0"]
    assert rep.to_dict()["drift_share"] == pytest.approx(1 / 30) and rep.to_dict()["drifted"] is False
    strict = report("r", "c", ref, cur, list(ref), (20_000, 20_000), Thresholds.of({"numeric_distance": 0.0, "drift_share": 0.01}))
    assert strict.to_dict()["drifted"] is True


def test_all_null_constant_absent_and_small_columns_get_a_reason() -> None:
    rng = np.random.default_rng(5)
    ref = {"nulls": num(np.full(500, np.nan)), "const": num(np.zeros(500)), "only_ref": num(rng.normal(size=500)),
           "few": num(rng.normal(size=500))}
    cur = {"nulls": num(rng.normal(size=500)), "const": num(np.ones(500)), "few": num(rng.normal(size=20)),
           "only_cur": cat(["a"] * 500)}
    rep = report("r", "c", ref, cur, ["nulls", "const", "only_ref", "only_cur", "few"], (500, 500), Thresholds()).to_dict()
    f = rep["features"]
    assert f["nulls"]["reason"] == "all null on the reference side" and f["nulls"]["statistic"] is None
    assert f["only_ref"]["reason"] == "absent on the current side" and f["only_cur"]["reason"] == "absent on the reference side"
    assert f["few"]["reason"] == "insufficient_data" and f["few"]["drifted"] is False
    assert f["const"]["statistic"] == 1.0 and f["const"]["drifted"] is True and "constant" in f["const"]["reason"]
    small = report("r", "c", ref, cur, ["few", "const"], (500, 20), Thresholds()).to_dict()
    assert small["drift_share"] == "insufficient_data" and small["drifted"] is False
    assert all(f["reason"] == "insufficient_data" for f in small["features"].values())


def test_jensen_shannon_and_benjamini_hochberg_match_scipy() -> None:
    from scipy.spatial.distance import jensenshannon

    from strataml.monitoring._stats import benjamini_hochberg, js_distance

    rng = np.random.default_rng(6)
    p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
    q[2] = 0.0
    q /= q.sum()
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    pv = rng.random(40) ** 3
    assert np.allclose(benjamini_hochberg(pv), sps.false_discovery_control(pv, method="bh"), rtol=1e-12)


def test_unknown_threshold_is_a_clear_error() -> None:
    from strataml.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown drift thresholds: alfa"):
        Thresholds.of({"alfa": 0.1})


def test_the_closed_form_survival_functions_equal_scipys() -> None:
    from scipy import special

    from strataml.monitoring._special import chi2_sf, kolmogorov_sf

    for x in [0.0, 0.05, 0.3, 0.6, 0.8, 0.99, 1.0, 1.01, 1.3, 2.0, 3.5, 6.0, 12.0, 27.0]:
        assert kolmogorov_sf(x) == pytest.approx(float(special.kolmogorov(x)), rel=1e-12, abs=1e-300)
    for df in [1, 2, 3, 4, 5, 10, 29, 30, 101, 998, 999]:
        for x in [0.0, 1e-6, 0.5, 1.0, df / 2, float(df), df + 3 * np.sqrt(2 * df), 5.0 * df + 50, 400.0, 2000.0, 1e5]:
            assert chi2_sf(df, x) == pytest.approx(float(special.chdtrc(df, x)), rel=1e-10, abs=1e-300), (df, x)
