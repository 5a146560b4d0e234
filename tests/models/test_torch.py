"""PyTorch networks through st.TorchEstimator: trained, registered as safetensors weights
plus a JSON header, rebuilt from the workspace's definition, never from the artifact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

import strataml as st
from strataml.errors import ConfigError, NotFound, UserCodeError
from strataml.models import UnsafeModel, load_model
from strataml.models._fitting import configure, fit
from strataml.models._predictor import prepare
from strataml.models._serialization import dump, load
from strataml.models._train import load_training_data, prepare_data, split_indices
from strataml.serving import score
from strataml.serving._servable import RegistryModels

from .conftest import loans_table

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

DEFINITIONS = """
import torch

import strataml as st


class Net(torch.nn.Module):
    def __init__(self, n_inputs, hidden={hidden}):
        super().__init__()
        self.hidden = torch.nn.Linear(n_inputs, hidden)
        self.out = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


loans_mlp = st.Model(
    "loans_mlp", labels="loans", target="defaulted", columns={columns!r},
    estimator=st.TorchEstimator(lambda n_inputs: Net(n_inputs), loss="bce", epochs=4, batch_size=128, lr=0.01),
    metrics=["roc_auc", "log_loss"],
)
"""

COLUMNS = ["amount", "age", "income"]


def define(ws: st.Workspace, hidden: int = 16, columns: list[str] = COLUMNS) -> st.Workspace:
    """Write definitions.py and open the workspace afresh, as a new process would."""
    (ws.root / "definitions.py").write_text(DEFINITIONS.format(hidden=hidden, columns=columns))
    return st.Workspace.open(ws.root)


@pytest.fixture
def mlp_ws(loans_ws: st.Workspace) -> st.Workspace:
    return define(loans_ws)


def in_memory(ws: st.Workspace, name: str) -> Any:
    """The estimator exactly as training fits it, without serialisation."""
    m = ws.definitions.get("model", name)
    data = load_training_data(ws, m)
    tr, ho, _ = split_indices(data, m)
    return fit(configure(m.estimator, {}, m.seed), prepare_data(data, m, tr, ho), m.name)


def header(data: bytes) -> dict[str, Any]:
    n = int.from_bytes(data[:8], "little")
    return dict(json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["strataml"]))


def resave(data: bytes, **changes: Any) -> bytes:
    """The artifact's tensors saved again with an altered header or extra metadata."""
    meta = {"strataml": json.dumps({**header(data), **changes.pop("head", {})})}
    meta.update(changes)
    return bytes(safetensors_torch.save(safetensors_torch.load(data), metadata=meta))


def test_torch_mlp_trains_registers_loads_and_serves(mlp_ws: st.Workspace, tmp_path: Path) -> None:
    r = st.train(mlp_ws, "loans_mlp")
    assert r.version == 1 and r.gate["passed"] and r.metrics["roc_auc"] > 0.6
    # a new process: the network is rebuilt from definitions.py, the weights come from safetensors
    fresh = st.Workspace.open(mlp_ws.root)
    lm = load_model(fresh, "loans_mlp")
    assert lm.format == "torch" and isinstance(lm.predictor.native, st.TorchEstimator)
    data = fresh.artifacts.read_bytes(lm.sha256)
    head = header(data)
    assert head["inputs"] == COLUMNS and head["classes"] == [0, 1] and head["task"] == "binary"
    assert head["params"] == {
        "loss": "bce",
        "epochs": 4,
        "batch_size": 128,
        "lr": 0.01,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "standardize": True,
        "random_state": 0,
        "threads": 1,
    }
    assert len(head["mean"]) == len(head["scale"]) == 3
    assert sorted(safetensors_torch.load(data)) == [
        "hidden.bias",
        "hidden.weight",
        "out.bias",
        "out.weight",
    ]
    rows = loans_table(300, seed=7)
    p = lm.predict(rows)
    assert p.shape == (300,) and ((p > 0) & (p < 1)).all()
    # the registered model answers exactly like the estimator in memory (missing incomes included)
    est = in_memory(fresh, "loans_mlp")
    np.testing.assert_allclose(
        p, est.predict_proba(prepare(rows, lm.signature, "torch"))[:, 1], rtol=1e-6
    )
    assert np.isnan(rows["income"].to_numpy(zero_copy_only=False)).any()
    servable = RegistryModels(fresh).get("loans_mlp", "champion")
    np.testing.assert_allclose(servable.predict_rows(rows.to_pylist()[:40]), p[:40], rtol=1e-6)
    pq.write_table(rows, tmp_path / "score.parquet")
    assert (
        score(fresh, "loans_mlp", str(tmp_path / "score.parquet"), tmp_path / "out.parquet")["rows"]
        == 300
    )
    np.testing.assert_allclose(
        pq.read_table(tmp_path / "out.parquet")["prediction"].to_numpy(), p, rtol=1e-6
    )


def test_same_data_and_seed_give_a_byte_identical_torch_artifact(mlp_ws: st.Workspace) -> None:
    a = st.train(mlp_ws, "loans_mlp")
    b = st.train(st.Workspace.open(mlp_ws.root), "loans_mlp")
    assert a.sha256 == b.sha256 and (a.version, b.version) == (1, 2)
    assert hashlib.sha256(mlp_ws.artifacts.read_bytes(a.sha256)).hexdigest() == a.sha256
    c = st.train(mlp_ws, "loans_mlp", seed=1)
    assert c.sha256 != a.sha256


def test_the_artifact_does_not_depend_on_the_callers_thread_count() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 20))
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)

    def net(n: int) -> Any:
        return torch.nn.Sequential(
            torch.nn.Linear(n, 128), torch.nn.ReLU(), torch.nn.Linear(128, 1)
        )

    previous = torch.get_num_threads()
    digests = set()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            est = st.TorchEstimator(net, epochs=2, batch_size=256, random_state=0).fit(x, y)
            digests.add(hashlib.sha256(dump(est).data).hexdigest())
            assert torch.get_num_threads() == threads  # restored after training
    finally:
        torch.set_num_threads(previous)
    assert len(digests) == 1


def test_tuning_and_the_champion_gate_rebuild_from_the_definition(mlp_ws: st.Workspace) -> None:
    st.train(mlp_ws, "loans_mlp")
    m = mlp_ws.definitions.get("model", "loans_mlp")
    m.gate = st.Gate(max_drop_vs_champion={"roc_auc": 0.5})
    r = st.train(mlp_ws, m, tune=2)
    assert r.tuning is not None and r.tuning["trials"] == 2 and r.tuning["failed"] == 0
    assert {"lr", "batch_size", "weight_decay"} <= set(r.tuning["best_params"])
    assert r.champion is not None and r.champion["metrics"] is not None and r.gate["passed"]


def test_a_changed_or_missing_definition_is_a_clear_error(mlp_ws: st.Workspace) -> None:
    st.train(mlp_ws, "loans_mlp")
    with pytest.raises(ConfigError, match="does not match the stored weights") as info:
        load_model(define(mlp_ws, hidden=32), "loans_mlp")
    assert "hidden.weight" in info.value.message and "restore the module=" in (
        info.value.hint or ""
    )
    (mlp_ws.root / "definitions.py").write_text("")
    with pytest.raises(NotFound, match="stores weights only"):
        load_model(st.Workspace.open(mlp_ws.root), "loans_mlp")


def test_string_inputs_are_refused_with_the_fix(loans_ws: st.Workspace) -> None:
    ws = define(loans_ws, columns=[*COLUMNS, "country"])
    with pytest.raises(UserCodeError, match="numeric and boolean inputs; input 'country'") as info:
        st.train(ws, "loans_mlp")
    assert "feature view" in info.value.message



def test_an_artifact_naming_code_is_refused(mlp_ws: st.Workspace) -> None:
    st.train(mlp_ws, "loans_mlp")
    lm = load_model(mlp_ws, "loans_mlp")
    data = mlp_ws.artifacts.read_bytes(lm.sha256)
    definition = mlp_ws.definitions.get("model", "loans_mlp").estimator
    assert (
        load(resave(data), "torch", estimator=definition) is not None
    )  # re-saving alone changes nothing
    for bad in (
        resave(data, head={"module": "os:system"}),
        resave(data, module="mypackage.nets:Net"),
        resave(data, head={"params": {**header(data)["params"], "module": "builtins.eval"}}),
    ):
        with pytest.raises(UnsafeModel, match="never a reference to code"):
            load(bad, "torch", estimator=definition)
    with pytest.raises(UnsafeModel, match="not a strataml torch artifact"):
        load(
            resave(data, head={"params": {**header(data)["params"], "loss": "os.system"}}),
            "torch",
            estimator=definition,
        )
    with pytest.raises(UnsafeModel, match="not a strataml torch artifact"):
        load(data[:-4], "torch", estimator=definition)



def test_torch_estimator_is_a_scikit_learn_estimator() -> None:
    from sklearn.base import clone, is_classifier, is_regressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2))
    est = st.TorchEstimator(
        lambda n: torch.nn.Linear(n, 1), loss="mse", epochs=30, lr=0.05, random_state=3
    )
    assert is_regressor(est) and not is_classifier(est)
    assert est.get_params()["epochs"] == 30 and clone(est).get_params() == est.get_params()
    assert est.set_params(epochs=40) is est and est.epochs == 40
    with pytest.raises(ConfigError, match="no parameter 'epoch'"):
        est.set_params(epoch=1)
    y = 3 * x[:, 0] - x[:, 1] + 100 + rng.normal(0, 0.1, 600)
    pred = est.fit(x, y).predict(x)
    assert np.corrcoef(pred, y)[0, 1] > 0.99 and abs(pred.mean() - 100) < 1
    # a classifier with one logit per class (the factory may take the number of outputs)
    labels = np.array(["low", "mid", "high"])[np.digitize(x[:, 0], [-0.5, 0.5])]
    multi = st.TorchEstimator(
        lambda n, k: torch.nn.Linear(n, k), loss="cross_entropy", epochs=20, lr=0.05
    )
    assert is_classifier(multi)
    multi.fit(x, labels)
    assert list(multi.classes_) == ["high", "low", "mid"]
    assert (multi.predict(x) == labels).mean() > 0.9
    np.testing.assert_allclose(multi.predict_proba(x).sum(axis=1), 1.0, rtol=1e-6)
    # the artifact round-trips through the definition's factory
    back = load(
        dump(multi).data,
        "torch",
        estimator=st.TorchEstimator(lambda n, k: torch.nn.Linear(n, k), loss="cross_entropy"),
    )
    np.testing.assert_array_equal(back.predict_proba(x), multi.predict_proba(x))
    with pytest.raises(ConfigError, match="loss='bce' needs two classes"):
        st.TorchEstimator(lambda n: torch.nn.Linear(n, 1)).fit(x, labels)
    with pytest.raises(ConfigError, match="must return a torch.nn.Module"):
        st.TorchEstimator(lambda n: "not a network").fit(x, labels[:600] == "low")
