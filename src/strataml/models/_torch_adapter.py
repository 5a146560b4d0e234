"""PyTorch networks as scikit-learn style estimators: ``st.TorchEstimator``.

The workspace supplies the network as a factory in its definitions; strataml supplies
the training loop (mini-batch gradient descent with a fixed seed), input
standardisation, missing-value filling and the output head's meaning (``loss``)::

    class Net(torch.nn.Module): ...

    churn = st.Model(
        "churn", labels="customers", target="churned",
        estimator=st.TorchEstimator(lambda n_inputs: Net(n_inputs), loss="bce", epochs=20),
    )

The artifact (:mod:`strataml.models.formats._torch`) is data only: one safetensors file whose tensors are the network's
``state_dict`` and whose metadata holds a JSON header (input names, standardisation
statistics, class labels, hyper-parameters). It never names code. Loading rebuilds
the network from the model's definition in the workspace, checks that its parameters
have exactly the names, shapes and dtypes of the stored tensors, and only then copies
the weights in. A torch pickle (``torch.save``) or a header with any field outside
the format is refused.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from strataml.errors import ConfigError, MissingExtra

FORMAT = "strataml.torch"
FORMAT_VERSION = 1
LOSSES = ("bce", "cross_entropy", "mse")
OPTIMIZERS = ("adam", "adamw", "sgd")
#: the hyper-parameters an artifact records, with the types each may have
PARAMS: dict[str, tuple[type, ...]] = {
    "loss": (str,),
    "epochs": (int,),
    "batch_size": (int,),
    "lr": (float, int),
    "optimizer": (str,),
    "weight_decay": (float, int),
    "standardize": (bool,),
    "random_state": (int, type(None)),
    "threads": (int,),
}


def _torch(purpose: str) -> Any:
    try:
        import safetensors.torch  # noqa: F401
        import torch
    except ImportError as exc:
        raise MissingExtra("torch", "torch", purpose) from exc
    return torch


class TorchEstimator:
    """A PyTorch network trained and served like a scikit-learn estimator.

    ``module`` is a factory that builds the untrained network: called as
    ``module(n_inputs)``, or ``module(n_inputs, n_outputs)`` when it takes two
    arguments. The network maps a float tensor ``(batch, n_inputs)`` to
    ``(batch, n_outputs)`` raw outputs (logits for classifiers).

    ``loss`` decides the task: ``"bce"`` a binary classifier (one logit),
    ``"cross_entropy"`` a classifier with one logit per class, ``"mse"`` a regressor
    (one output; the target is standardised while training). Inputs must be numeric
    or boolean; missing values become the training mean. With ``standardize`` each
    input is centred and scaled by its training mean and standard deviation.

    Training runs ``epochs`` passes of shuffled mini-batches of ``batch_size`` rows
    with the ``optimizer`` (``adam``, ``adamw`` or ``sgd``), learning rate ``lr`` and
    ``weight_decay``, on ``threads`` CPU threads. ``random_state`` (the model's seed
    when unset) fixes the initial weights and the batch order, so the same data, seed
    and ``threads`` give the same artifact, byte for byte.
    """

    __strata_format__ = "torch"
    # fitted state (set by fit, or by load from an artifact)
    feature_names_in_: list[str]
    mean_: list[float]
    scale_: list[float]
    classes_: np.ndarray
    target_mean_: float | None
    target_scale_: float | None
    n_outputs_: int
    module_: Any
    _param_names = ("module", *PARAMS)

    def __init__(
        self,
        module: Callable[..., Any] | None = None,
        *,
        loss: str = "bce",
        epochs: int = 10,
        batch_size: int = 256,
        lr: float = 1e-3,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        standardize: bool = True,
        random_state: int | None = None,
        threads: int = 1,
    ) -> None:
        self.module = module
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.standardize = standardize
        self.random_state = random_state
        self.threads = threads

    # --- scikit-learn protocol -------------------------------------------------------

    # scikit-learn's estimator protocol, written out so that importing strataml does not
    # import scikit-learn

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (``deep`` is accepted for scikit-learn compatibility)."""
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params: Any) -> TorchEstimator:
        """Change constructor parameters; unknown names are an error."""
        for k, v in params.items():
            if k not in self._param_names:
                raise ConfigError(
                    f"TorchEstimator has no parameter {k!r}",
                    hint=f"parameters: {', '.join(self._param_names)}",
                )
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        changed = {
            k: v for k, v in self.get_params().items() if k != "module" and v != _DEFAULTS.get(k)
        }
        return f"TorchEstimator(module={self.module!r}{''.join(f', {k}={v!r}' for k, v in changed.items())})"

    @property
    def _estimator_type(self) -> str:
        return "regressor" if self.loss == "mse" else "classifier"

    def __sklearn_tags__(self) -> Any:
        """Tags for scikit-learn >= 1.6: a classifier or a regressor, depending on ``loss``."""
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        regressor = self.loss == "mse"
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True),
            classifier_tags=None if regressor else ClassifierTags(),
            regressor_tags=RegressorTags() if regressor else None,
            input_tags=InputTags(allow_nan=True),
        )

    def _check_params(self) -> None:
        if self.module is None or not callable(self.module):
            raise ConfigError(
                "TorchEstimator needs module=, a function that builds the network from the number of inputs",
                hint="st.TorchEstimator(lambda n_inputs: MyNet(n_inputs), loss='bce')",
            )
        if self.loss not in LOSSES:
            raise ConfigError(
                f"TorchEstimator loss {self.loss!r} is unknown",
                hint=f"use one of {', '.join(LOSSES)}",
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"TorchEstimator optimizer {self.optimizer!r} is unknown",
                hint=f"use one of {', '.join(OPTIMIZERS)}",
            )
        for name in ("epochs", "batch_size", "threads"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"TorchEstimator {name} must be a positive integer, not {v!r}")
        if not float(self.lr) > 0 or not float(self.weight_decay) >= 0:
            raise ConfigError(
                f"TorchEstimator needs lr > 0 and weight_decay >= 0 (got {self.lr}, {self.weight_decay})"
            )

    def hyperparameters(self) -> dict[str, Any]:
        """The hyper-parameters an artifact records (everything but the network factory)."""
        out: dict[str, Any] = {}
        for k in PARAMS:
            v = getattr(self, k)
            out[k] = v.item() if isinstance(v, np.generic) else v
        out["lr"] = float(out["lr"])
        out["weight_decay"] = float(out["weight_decay"])
        return out

    # --- inputs and targets ----------------------------------------------------------

    def _matrix(self, x: Any, fitting: bool) -> np.ndarray:
        if isinstance(x, pd.DataFrame):
            names = [str(c) for c in x.columns]
            if not fitting:
                missing = [n for n in self.feature_names_in_ if n not in names]
                if missing:
                    raise ConfigError(f"TorchEstimator input is missing column(s) {missing}")
                x = x[list(self.feature_names_in_)]
                names = list(self.feature_names_in_)
            for n in names:
                dtype = x[n].dtype
                if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
                    raise ConfigError(
                        f"TorchEstimator takes numeric and boolean inputs; input {n!r} is {dtype}",
                        hint="encode it as numbers in a feature view, or leave it out with st.Model(columns=[...])",
                    )
            if fitting:
                self.feature_names_in_ = names
            return np.asarray(x.astype("float64").to_numpy(dtype="float64", na_value=np.nan))
        arr = np.asarray(x, dtype="float64")
        if arr.ndim != 2:
            raise ConfigError(f"TorchEstimator takes a 2-d input, got shape {arr.shape}")
        if fitting:
            self.feature_names_in_ = [f"x{i}" for i in range(arr.shape[1])]
        elif arr.shape[1] != len(self.feature_names_in_):
            raise ConfigError(
                f"TorchEstimator was fitted on {len(self.feature_names_in_)} inputs, got {arr.shape[1]}"
            )
        return arr

    def _scaled(self, arr: np.ndarray) -> np.ndarray:
        mean, scale = np.asarray(self.mean_), np.asarray(self.scale_)
        arr = np.where(np.isnan(arr), mean, arr)
        if self.standardize:
            arr = (arr - mean) / scale
        return arr

    # --- fitting ---------------------------------------------------------------------

    def _build(self, torch: Any, n_inputs: int, n_outputs: int) -> Any:
        factory = self.module
        assert factory is not None
        try:
            params = [
                p
                for p in inspect.signature(factory).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            ]
            two = len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
        except (TypeError, ValueError):
            two = False
        net = factory(n_inputs, n_outputs) if two else factory(n_inputs)
        if not isinstance(net, torch.nn.Module):
            raise ConfigError(
                f"TorchEstimator module= must return a torch.nn.Module, it returned a {type(net).__name__}"
            )
        return net

    def fit(self, x: Any, y: Any) -> TorchEstimator:
        """Train a freshly built network on ``x`` (one row per sample, one column per input) and ``y``."""
        torch = _torch("TorchEstimator")
        self._check_params()
        arr = self._matrix(x, fitting=True)
        with np.errstate(all="ignore"):
            mean = np.nanmean(arr, axis=0) if len(arr) else np.zeros(arr.shape[1])
            std = np.nanstd(arr, axis=0) if len(arr) else np.ones(arr.shape[1])
        self.mean_ = [0.0 if not math.isfinite(v) else float(v) for v in mean]
        self.scale_ = [1.0 if not math.isfinite(v) or v <= 0 else float(v) for v in std]
        xs = self._scaled(arr)
        y = np.asarray(y)
        self.target_mean_ = None
        self.target_scale_ = None
        if self.loss == "mse":
            self.classes_ = np.asarray([])
            target = y.astype("float64")
            self.target_mean_ = float(target.mean())
            sd = float(target.std())
            self.target_scale_ = sd if sd > 0 and math.isfinite(sd) else 1.0
            target = (target - self.target_mean_) / self.target_scale_
            n_outputs = 1
        else:
            self.classes_ = np.unique(y)
            k = len(self.classes_)
            if k < 2:
                raise ConfigError(
                    f"TorchEstimator: the target has a single class ({self.classes_.tolist()})"
                )
            if self.loss == "bce" and k != 2:
                raise ConfigError(
                    f"TorchEstimator loss='bce' needs two classes, the target has {k}",
                    hint="use loss='cross_entropy' for more than two classes",
                )
            target = np.searchsorted(self.classes_, y)
            n_outputs = 1 if self.loss == "bce" else k
        self.n_outputs_ = n_outputs
        seed = int(self.random_state) if self.random_state is not None else 0
        # float sums depend on how work is split between threads: a fixed count keeps the
        # weights (and the artifact's bytes) the same from run to run
        previous = torch.get_num_threads()
        torch.set_num_threads(int(self.threads))
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = self._build(torch, arr.shape[1], n_outputs)
                self.module_ = self._train(torch, net, xs, target, seed)
        finally:
            torch.set_num_threads(previous)
        return self

    def _train(self, torch: Any, net: Any, xs: np.ndarray, target: np.ndarray, seed: int) -> Any:
        params = list(net.parameters())
        dtype = params[0].dtype if params else torch.float32
        xt = torch.as_tensor(xs, dtype=dtype)
        if self.loss == "cross_entropy":
            yt = torch.as_tensor(target, dtype=torch.int64)
            loss_fn: Any = torch.nn.CrossEntropyLoss()
        else:
            yt = torch.as_tensor(target, dtype=dtype).reshape(-1, 1)
            loss_fn = torch.nn.BCEWithLogitsLoss() if self.loss == "bce" else torch.nn.MSELoss()
        opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[
            self.optimizer
        ]
        opt = opt_cls(params, lr=float(self.lr), weight_decay=float(self.weight_decay))
        rng = np.random.default_rng(seed)
        n, bs = len(xs), int(self.batch_size)
        net.train()
        for _ in range(int(self.epochs)):
            order = torch.as_tensor(rng.permutation(n))
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                opt.zero_grad()
                out = net(xt[idx])
                loss = loss_fn(out, yt[idx])
                loss.backward()
                opt.step()
        net.eval()
        return net

    # --- prediction ------------------------------------------------------------------

    def _outputs(self, x: Any) -> np.ndarray:
        _check_fitted(self)
        torch = _torch("TorchEstimator")
        xs = self._scaled(self._matrix(x, fitting=False))
        params = list(self.module_.parameters())
        dtype = params[0].dtype if params else torch.float32
        with torch.no_grad():
            out = self.module_(torch.as_tensor(xs, dtype=dtype))
            if self.loss == "bce":
                out = torch.sigmoid(out).reshape(-1)
            elif self.loss == "cross_entropy":
                out = torch.softmax(out, dim=1)
            else:
                out = out.reshape(-1)
        return np.asarray(out.double().numpy(), dtype="float64")

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_`` order."""
        if self.loss == "mse":
            raise ConfigError("TorchEstimator with loss='mse' is a regressor; use predict()")
        out = self._outputs(x)
        return np.column_stack([1.0 - out, out]) if self.loss == "bce" else out

    def predict(self, x: Any) -> np.ndarray:
        """The most likely class (classifiers) or the predicted value (regressors)."""
        if self.loss == "mse":
            assert self.target_mean_ is not None and self.target_scale_ is not None
            return np.asarray(
                self._outputs(x) * self.target_scale_ + self.target_mean_, dtype="float64"
            )
        return np.asarray(np.asarray(self.classes_)[np.argmax(self.predict_proba(x), axis=1)])

    # --- the artifact ----------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """The artifact's JSON header: inputs, statistics, classes and hyper-parameters."""
        classes = [
            c.item() if isinstance(c, np.generic) else c for c in np.asarray(self.classes_).tolist()
        ]
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "inputs": list(self.feature_names_in_),
            "task": "regression"
            if self.loss == "mse"
            else ("binary" if self.loss == "bce" else "multiclass"),
            "classes": classes,
            "mean": list(self.mean_),
            "scale": list(self.scale_),
            "target_mean": self.target_mean_,
            "target_scale": self.target_scale_,
            "n_outputs": int(self.n_outputs_),
            "params": self.hyperparameters(),
        }


_DEFAULTS: dict[str, Any] = {
    k: p.default
    for k, p in inspect.signature(TorchEstimator.__init__).parameters.items()
    if k != "self"
}


def _check_fitted(estimator: TorchEstimator) -> None:
    if not hasattr(estimator, "module_"):
        raise ConfigError("this TorchEstimator is not fitted yet", hint="call fit(x, y) first")
