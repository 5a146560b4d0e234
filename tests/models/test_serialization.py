"""Safe serialisation: no pickle, trusted types fixed at save time, hashes verified first."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import strataml as st
from strataml.errors import IntegrityError
from strataml.models import UnsafeModel, load_model
from strataml.models._serialization import dump, load

from .conftest import register_bytes


def _xy(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((n, 3))
    return x, (x[:, 0] + 0.3 * rng.random(n) > 0.6).astype(int)


class Custom(LogisticRegression):
    """A user-defined estimator: its type is not trusted by default."""


def test_skops_round_trip_and_canonical_bytes() -> None:
    x, y = _xy()
    a = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=4, random_state=0)).fit(x, y)
    b = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=4, random_state=0)).fit(x, y)
    sa, sb = dump(a), dump(b)
    assert sa.format == "skops"
    assert hashlib.sha256(sa.data).digest() == hashlib.sha256(sb.data).digest()
    assert all(t.startswith("sklearn.") for t in sa.trusted_types)
    back = load(sa.data, "skops", trusted_types=sa.trusted_types)
    np.testing.assert_array_equal(back.predict_proba(x), a.predict_proba(x))


def test_untrusted_type_refused_at_save_unless_trusted() -> None:
    x, y = _xy()
    est = Custom().fit(x, y)
    with pytest.raises(UnsafeModel, match="outside the trusted libraries"):
        dump(est)
    name = f"{Custom.__module__}.{Custom.__qualname__}"
    ser = dump(est, trusted=[name])
    assert name in ser.trusted_types


def test_skops_file_naming_an_untrusted_type_is_refused_at_load() -> None:
    x, y = _xy()
    ser = dump(LogisticRegression().fit(x, y))
    # rewrite the file so that it names code to import (os.system) instead of the estimator
    with zipfile.ZipFile(io.BytesIO(ser.data)) as z:
        blobs = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(blobs["schema.json"])
    schema["__module__"], schema["__class__"] = "os", "system"
    blobs["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, b in blobs.items():
            z.writestr(n, b)
    with pytest.raises(UnsafeModel, match="not trusted"):
        load(out.getvalue(), "skops", trusted_types=ser.trusted_types)
    # the same file with the original trust record passes only when unaltered
    assert load(ser.data, "skops", trusted_types=ser.trusted_types) is not None




def test_unregistered_formats_are_refused_and_their_pickles_named() -> None:
    x, y = _xy()
    ser = dump(LGBMClassifier(n_estimators=5, verbosity=-1, n_jobs=1).fit(x, y))
    with pytest.raises(UnsafeModel, match="does not load"):
        load(ser.data, "joblib")
    with pytest.raises(UnsafeModel, match="pickle"):
        load(pickle.dumps(LogisticRegression().fit(x, y)), "pickle")


def _train_small(ws: st.Workspace) -> st.LoadedModel:
    m = st.Model("tamper", labels="loans", target="defaulted", columns=["amount", "age", "income", "country"],
                 estimator=LGBMClassifier(n_estimators=10, n_jobs=1))
    result = st.train(ws, m)
    assert result.version == 1
    return load_model(ws, "tamper")


def test_tampered_artifact_is_refused_before_loading(loans_ws: st.Workspace) -> None:
    loaded = _train_small(loans_ws)
    path = loans_ws.artifacts.local_path(loaded.sha256)
    os.chmod(path, 0o644)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"num_leaves=31", b"num_leaves=32", 1) if b"num_leaves=31" in data else data + b"\n")
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        load_model(loans_ws, "tamper")


def test_registered_pickle_artifact_is_refused(loans_ws: st.Workspace) -> None:
    """Even a pickle stored under its own (valid) hash and registered as a version is never unpickled."""
    loaded = _train_small(loans_ws)
    v = register_bytes(loans_ws, "tamper", pickle.dumps({"evil": True}), "lightgbm", loaded.signature)
    with pytest.raises(UnsafeModel, match="pickle"):
        load_model(loans_ws, "tamper", v)
