"""Single-row LightGBM predictions without pandas give the model's own answers."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from strataml.models import LightGBMRows

from .conftest import FEATURES, instance, train_booster


def test_numeric_rows_match_booster_predict_for_any_batch_size() -> None:
    booster = train_booster(3)
    rows = [instance(i) for i in range(40)]
    rows[5]["f2"] = None  # missing → NaN, as in training
    x = np.array([[np.nan if r[f] is None else r[f] for f in FEATURES] for r in rows])
    fast = LightGBMRows(booster, FEATURES)
    expected = booster.predict(x)
    assert np.array_equal(np.concatenate([fast(rows[i : i + 1]) for i in range(40)]), expected)
    assert np.array_equal(fast(rows[:5]), expected[:5]) and np.array_equal(fast(rows), expected)
    assert np.array_equal(pickle.loads(pickle.dumps(fast))(rows), expected)
    absent = {k: v for k, v in rows[5].items() if k != "f2"}  # a feature absent from the row is missing, like None
    assert np.array_equal(fast([absent]), expected[5:6])


def test_string_features_map_to_the_categories_recorded_at_training() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.normal(size=2000), "country": pd.Categorical(rng.choice(["fr", "de", "it"], 2000))})
    y = (frame["amount"] > 0).astype(int) + (frame["country"] == "it").astype(int)
    trained = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(frame, y), 20)
    booster = lgb.Booster(model_str=trained.model_to_string())  # as loaded from the registry
    (categories,) = booster.pandas_categorical
    fast = LightGBMRows(booster, ["amount", "country"], {"country": {c: float(i) for i, c in enumerate(categories)}})
    rows = [{"amount": 0.3, "country": "it"}, {"amount": -1.0, "country": "de"}, {"amount": None, "country": "fr"}, {"amount": 0.1, "country": "unseen"}]
    request = pd.DataFrame(rows).astype({"amount": "float64", "country": "category"})  # the generic path's frame
    expected = booster.predict(request)
    assert np.allclose(fast(rows), expected, rtol=1e-12, atol=0)
    assert np.allclose(np.concatenate([fast([r]) for r in rows]), expected, rtol=1e-12, atol=0)  # one row at a time too


def test_one_row_answers_like_many_and_refuses_text_like_the_matrix() -> None:
    booster = train_booster(3)
    rows = [instance(i) for i in range(6)]
    fast = LightGBMRows(booster, FEATURES)
    batch = np.asarray(fast(rows))
    assert np.array_equal(np.concatenate([np.asarray(fast([r])) for r in rows]), batch)
    bad = dict(rows[0], f1="not a number")
    with pytest.raises(ValueError):
        fast([bad])
    assert np.array_equal(np.asarray(fast(rows[:1])), batch[:1])  # the buffers are not left half-filled


def test_one_multiclass_row_gives_one_row_of_class_scores() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 2))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(x, y), 10)
    fast = LightGBMRows(booster, ["a", "b"])
    one = np.asarray(fast([{"a": 0.2, "b": 0.9}]))
    assert one.shape == (1, 3) and np.allclose(one, booster.predict(np.array([[0.2, 0.9]])), rtol=1e-12, atol=0)


def test_outputs_become_json_values_one_per_row() -> None:
    from strataml.serving._servable import normalise

    nan, inf = float("nan"), float("inf")
    assert normalise([0.25], "binary", (), 1) == [0.25]
    assert normalise([nan], "binary", (), 1) == [None] and normalise([inf], "regression", (), 1) == [None]  # JSON has no NaN
    assert normalise([0.5, -inf, 2.0], "regression", (), 3) == [0.5, None, 2.0]
    assert normalise([3], "regression", (), 1) == [3.0] and type(normalise([3], "regression", (), 1)[0]) is float
    assert normalise(np.array([[0.9, 0.1], [0.2, 0.8]]), "binary", (), 2) == [0.1, 0.8]  # the positive class's column
    assert normalise(np.array([[0.7, 0.2, 0.1]]), "multiclass", ("a", "b", "c"), 1) == [{"a": 0.7, "b": 0.2, "c": 0.1}]
