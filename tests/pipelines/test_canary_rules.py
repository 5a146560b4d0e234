"""Canary rules as data, and the three outcomes of each check."""

from __future__ import annotations

import numpy as np
import pytest

import strataml as st
from strataml.errors import ConfigError
from strataml.pipelines import Canary, Check
from strataml.pipelines._canary import failed_rounds, parse_limit
from strataml.pipelines._checks import Observation, evaluate


def obs(
    req: dict[int, int],
    err: dict[int, int] | None = None,
    lat: dict[int, np.ndarray] | None = None,
    **kw,
) -> Observation:
    return Observation(
        champion=1, canary=2, requests=req, errors=err or {}, latencies=lat or {}, **kw
    )


def test_rules_round_trip_as_data_and_bad_rules_say_how_to_fix_them() -> None:
    c = Canary(
        weight=0.2,
        watch="10m",
        interval="30s",
        promote_if=[Check("error_rate"), Check("roc_auc", margin=0.02)],
        rollback_if=[Check("latency_p99", vs=None, max=300)],
        failure_limit="2 of 4",
        approval=True,
        bake="0s",
    )
    again = Canary.from_dict(c.to_dict())
    assert again == c and again.to_dict() == c.to_dict()
    assert (c.watch_s, c.interval_s, c.max_watch_s) == (600, 30, 1800)
    assert st.Canary is Canary and st.Check is Check
    for bad, words in [
        (lambda: Check("speed"), "unknown"),
        (lambda: Check("error_rate", vs=None), "compares with nothing"),
        (lambda: Check("prediction_drift", vs=None, max=1), "champion"),
        (lambda: Canary(weight=0), "weight"),
        (lambda: Canary(weight=1.5), "weight"),
        (lambda: Canary(watch="1m", interval="5m"), "longer than its watch"),
        (lambda: Canary(watch="soon"), "not a duration"),
        (lambda: Canary(failure_limit="3 of 2"), "K of N"),
        (lambda: Canary(promote_if=["error_rate"]), "st.Check"),  # type: ignore[list-item]
        (lambda: Canary(promote_if=[]), "no evidence"),
    ]:
        with pytest.raises(ConfigError, match=words) as info:
            bad()
        assert info.value.message


def test_failure_limit_counts_failed_rounds_among_the_last_n() -> None:
    assert parse_limit("2 of 5") == (2, 5) and parse_limit(3) == (3, None)
    fail = {"rollback_if": [{"outcome": "fail"}]}
    ok = {"rollback_if": [{"outcome": "pass"}, {"outcome": "inconclusive"}]}
    assert failed_rounds([fail, ok, ok, ok], "2 of 3") == (False, 0, 3)
    assert failed_rounds([fail, ok, fail], "2 of 3") == (True, 2, 3)
    assert failed_rounds([fail, ok, ok, fail], 2) == (True, 2, 4)


def test_error_rate_is_a_two_proportion_test_on_the_same_traffic() -> None:
    check = Check("error_rate", min_requests=100)
    # too little traffic on either side: inconclusive, whatever the rates
    assert evaluate(check, obs({1: 500, 2: 40}, {2: 30})).outcome == "inconclusive"
    assert evaluate(check, obs({1: 50, 2: 500}, {2: 0})).outcome == "inconclusive"
    # a clearly higher canary error rate fails, with the figures it saw
    r = evaluate(check, obs({1: 1000, 2: 1000}, {1: 5, 2: 40}))
    assert r.outcome == "fail" and r.figures["p_value"] < 0.05
    assert r.figures["canary_errors"] == 40 and r.figures["champion_errors"] == 5
    # a difference the test cannot tell from noise passes
    r = evaluate(check, obs({1: 1000, 2: 1000}, {1: 5, 2: 7}))
    assert r.outcome == "pass" and r.figures["p_value"] > 0.05
    # the margin tolerates a small significant rise
    assert (
        evaluate(Check("error_rate", margin=0.05), obs({1: 1000, 2: 1000}, {1: 5, 2: 40})).outcome
        == "pass"
    )
    # a threshold rule needs no champion
    assert (
        evaluate(
            Check("error_rate", vs=None, max=0.01, min_requests=10), obs({2: 100}, {2: 5})
        ).outcome
        == "fail"
    )
    assert (
        evaluate(
            Check("error_rate", vs=None, max=0.1, min_requests=10), obs({2: 100}, {2: 5})
        ).outcome
        == "pass"
    )


def test_latency_compares_p99_within_a_margin_backed_by_mann_whitney() -> None:
    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 5.0, 2000)
    check = Check("latency_p99", min_requests=100)
    same = evaluate(check, obs({1: 2000, 2: 2000}, lat={1: base, 2: rng.permutation(base)}))
    assert same.outcome == "pass" and same.figures["ratio"] == pytest.approx(1.0)
    slow = evaluate(check, obs({1: 2000, 2: 2000}, lat={1: base, 2: base * 2}))
    assert slow.outcome == "fail" and slow.figures["p_value"] < 0.05 and slow.figures["ratio"] > 1.2
    # the tail is worse but the distributions are not: above the margin, not significant → inconclusive
    tail = base.copy()
    tail[:30] = base.max() * 3
    unsure = evaluate(check, obs({1: 2000, 2: 2000}, lat={1: base, 2: tail}))
    assert unsure.outcome == "inconclusive" and unsure.figures["p_value"] > 0.05
    assert (
        evaluate(check, obs({1: 2000, 2: 10}, lat={1: base, 2: base[:10]})).outcome
        == "inconclusive"
    )
    assert (
        evaluate(
            Check("latency_p99", vs=None, max=5.0, min_requests=10), obs({2: 2000}, lat={2: base})
        ).outcome
        == "fail"
    )


def test_prediction_drift_and_quality_outcomes() -> None:
    check = Check("prediction_drift")
    assert evaluate(check, obs({}, drift=None)).outcome == "inconclusive"
    assert evaluate(
        check, obs({}, drift={"p_value": None, "reason": "insufficient_data"})
    ).reason.endswith("insufficient_data")
    assert (
        evaluate(
            check, obs({}, drift={"test": "ks", "p_value": 1e-9, "distance": 0.5, "drifted": True})
        ).outcome
        == "fail"
    )
    assert (
        evaluate(
            check, obs({}, drift={"test": "ks", "p_value": 0.4, "distance": 0.01, "drifted": False})
        ).outcome
        == "pass"
    )
    q = Check("roc_auc", min_requests=50)
    # realised figures once enough labels arrived on both sides
    realised = {
        1: {"labelled": 80, "predictions": 90, "roc_auc": 0.80},
        2: {"labelled": 70, "predictions": 90, "roc_auc": 0.70},
    }
    r = evaluate(q, obs({}, quality=realised))
    assert (
        r.outcome == "fail"
        and r.figures["canary_source"] == "realised"
        and r.figures["worse_by"] == pytest.approx(0.1)
    )
    # before labels: the estimate, compared like with like
    est = {
        1: {"labelled": 0, "predictions": 90, "estimated": {"roc_auc": 0.75}},
        2: {"labelled": 0, "predictions": 90, "estimated": {"roc_auc": 0.755}},
    }
    r = evaluate(q, obs({}, quality=est))
    assert r.outcome == "pass" and r.figures["champion_source"] == "estimated"
    # neither labels nor an estimate: inconclusive
    assert (
        evaluate(q, obs({}, quality={2: {"labelled": 3, "predictions": 10}})).outcome
        == "inconclusive"
    )
    # lower-is-better metrics turn the comparison round
    ll = {1: {"labelled": 80, "log_loss": 0.40}, 2: {"labelled": 80, "log_loss": 0.30}}
    assert evaluate(Check("log_loss", min_requests=50), obs({}, quality=ll)).outcome == "pass"
