"""What a workspace declares about a model: ``st.Model``, ``st.Gate``, ``st.Split``, ``st.Tune``.

A model names its inputs (feature views, or the columns of its labels dataset), its
target, an estimator, the metrics to report, the gate a new version must pass, how
to split the holdout, and optionally a tuning space. Definitions are plain data:
nothing runs until ``strata train``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strataml.errors import ConfigError
from strataml.models._metrics import METRICS, higher_is_better
from strataml.spine import check_name, user_code


@dataclass(frozen=True)
class Gate:
    """What a new version must reach before it is registered.

    ``min``/``max`` are absolute thresholds on holdout metrics; ``max_drop_vs_champion``
    bounds how much worse than the current champion (evaluated on the same holdout) a
    metric may be: for a higher-is-better metric the new value must be at least
    ``champion - drop``, for a lower-is-better one at most ``champion + drop``.
    """

    min: Mapping[str, float] = field(default_factory=dict)
    max: Mapping[str, float] = field(default_factory=dict)
    max_drop_vs_champion: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in ("min", "max", "max_drop_vs_champion"):
            for k, v in dict(getattr(self, part)).items():
                if k not in METRICS:
                    raise ConfigError(f"gate {part}: unknown metric {k!r}", hint=f"known metrics: {', '.join(sorted(METRICS))}")
                if not isinstance(v, int | float):
                    raise ConfigError(f"gate {part}[{k!r}] must be a number, not {v!r}")
        for k, v in dict(self.max_drop_vs_champion).items():
            if v < 0:
                raise ConfigError(f"gate max_drop_vs_champion[{k!r}] must be >= 0")

    @property
    def metrics(self) -> set[str]:
        """Every metric the gate reads."""
        return set(self.min) | set(self.max) | set(self.max_drop_vs_champion)

    def to_dict(self) -> dict[str, Any]:
        """The gate as plain data."""
        return {"min": dict(self.min), "max": dict(self.max), "max_drop_vs_champion": dict(self.max_drop_vs_champion)}

    def evaluate(self, metrics: Mapping[str, float], champion: Mapping[str, float] | None) -> list[str]:
        """The reasons the gate fails (empty when it passes)."""
        reasons: list[str] = []
        for k, bound in self.min.items():
            v = metrics.get(k)
            if v is None or not v >= bound:
                reasons.append(f"{k} = {_fmt(v)} is below the minimum {bound}")
        for k, bound in self.max.items():
            v = metrics.get(k)
            if v is None or not v <= bound:
                reasons.append(f"{k} = {_fmt(v)} is above the maximum {bound}")
        if champion is None:
            return reasons
        for k, drop in self.max_drop_vs_champion.items():
            v, c = metrics.get(k), champion.get(k)
            if c is None:
                continue
            if v is None:
                reasons.append(f"{k} was not computed")
            elif higher_is_better(k) and v < c - drop:
                reasons.append(f"{k} = {_fmt(v)} is {c - v:.4f} below the champion's {_fmt(c)} (allowed drop {drop})")
            elif not higher_is_better(k) and v > c + drop:
                reasons.append(f"{k} = {_fmt(v)} is {v - c:.4f} above the champion's {_fmt(c)} (allowed rise {drop})")
        return reasons


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


@dataclass(frozen=True)
class Split:
    """How the holdout is chosen.

    ``kind="time"`` keeps the latest ``holdout`` fraction of rows (by the labels'
    timestamp) for evaluation; ``"random"`` draws it with ``seed``; ``"auto"`` (the
    default) means time when the labels have a timestamp, random otherwise.
    """

    kind: str = "auto"
    holdout: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "time", "random"):
            raise ConfigError(f"split kind {self.kind!r} is unknown", hint="use 'auto', 'time' or 'random'")
        if not 0.0 < self.holdout < 1.0:
            raise ConfigError(f"split holdout {self.holdout} must be between 0 and 1")


@dataclass(frozen=True)
class Tune:
    """A tuning space for Optuna.

    ``params`` maps an estimator parameter to a spec: ``("int", low, high)``,
    ``("float", low, high)``, ``("float", low, high, "log")`` or ``("choice", [a, b…])``;
    or ``space`` is a function ``trial -> dict`` for anything else. ``metric`` defaults
    to the model's first metric.
    """

    params: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    trials: int = 20
    metric: str | None = None
    space: Callable[[Any], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        for k, spec in dict(self.params).items():
            if not spec or spec[0] not in ("int", "float", "choice"):
                raise ConfigError(f"tune param {k!r}: spec {spec!r} must start with 'int', 'float' or 'choice'")
            if spec[0] in ("int", "float") and len(spec) not in (3, 4):
                raise ConfigError(f"tune param {k!r}: write ({spec[0]!r}, low, high[, 'log'])")
            if spec[0] == "choice" and (len(spec) != 2 or not list(spec[1])):
                raise ConfigError(f"tune param {k!r}: write ('choice', [value, …])")
        if self.metric is not None and self.metric not in METRICS:
            raise ConfigError(f"tune metric {self.metric!r} is unknown", hint=f"known: {', '.join(sorted(METRICS))}")

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw one set of parameters for an Optuna trial."""
        out: dict[str, Any] = {}
        for k, spec in self.params.items():
            if spec[0] == "int":
                out[k] = trial.suggest_int(k, int(spec[1]), int(spec[2]), log=len(spec) == 4 and spec[3] == "log")
            elif spec[0] == "float":
                out[k] = trial.suggest_float(k, float(spec[1]), float(spec[2]), log=len(spec) == 4 and spec[3] == "log")
            else:
                out[k] = trial.suggest_categorical(k, list(spec[1]))
        if self.space is not None:
            with user_code(f"the tune space function {getattr(self.space, '__qualname__', 'space')}"):
                out.update(self.space(trial))
        return out


class Model:
    """A model the workspace declares.

    ``features`` lists feature views joined point-in-time onto the ``labels`` dataset;
    with no views the model learns from the labels dataset's own columns (``columns``,
    or every column except the target, the key and the timestamp). ``target`` names
    the label column; ``estimator`` is an unfitted scikit-learn estimator or pipeline,
    a LightGBM or XGBoost model, or an ``st.TorchEstimator`` wrapping a PyTorch network. ``metrics`` are computed on the holdout (the first
    is the primary one); ``gate`` decides whether a version is registered.
    """

    __strata_kind__ = "model"

    def __init__(
        self,
        name: str,
        *,
        labels: str,
        target: str,
        estimator: Any,
        features: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
        gate: Gate | None = None,
        split: Split | str | float | None = None,
        tune: Tune | None = None,
        seed: int = 0,
        trusted_types: Sequence[str] = (),
        description: str = "",
    ) -> None:
        self.name = check_name(name, "model name")
        self.labels = labels
        self.target = target
        if estimator is None or not hasattr(estimator, "fit"):
            raise ConfigError(f"model {name!r}: estimator must be an object with fit(), got {estimator!r}")
        self.estimator = estimator
        self.features = [check_name(v, "feature view name") for v in (features or [])]
        self.columns = list(columns) if columns else None
        self.gate = gate or Gate()
        if isinstance(split, str):
            split = Split(kind=split)
        elif isinstance(split, float):
            split = Split(holdout=split)
        self.split = split or Split()
        self.tune = tune
        self.seed = int(seed)
        self.trusted_types = list(trusted_types)
        self.description = description
        self.metrics = list(metrics) if metrics else []
        for m in [*self.metrics, *sorted(self.gate.metrics)]:
            if m not in METRICS:
                raise ConfigError(f"model {name!r}: unknown metric {m!r}", hint=f"known metrics: {', '.join(sorted(METRICS))}")
        for m in sorted(self.gate.metrics):
            if m not in self.metrics:
                self.metrics.append(m)

    def __repr__(self) -> str:
        return f"Model({self.name!r}, labels={self.labels!r}, target={self.target!r}, features={self.features!r})"
