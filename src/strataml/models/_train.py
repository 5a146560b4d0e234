"""Training: build the training data, split, fit, evaluate on the holdout, gate, register.

``train(ws, "fraud")`` runs the whole step inside one tracked run. The training data
comes from the feature store (the model's views joined point-in-time onto its labels)
or, for a model without views, from the labels dataset itself. The holdout is the
latest rows by the labels' timestamp (or a seeded random draw); the model is judged
by the bytes that will be registered (it is serialised, reloaded through the safe
loader and evaluated), and the current champion is evaluated on the same holdout for
the gate. A failed gate registers nothing and the result says why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strataml.errors import ConfigError, NotFound, StrataError
from strataml.models._definitions import Model
from strataml.models._fitting import (
    Prepared,
    configure,
    evaluate,
    fit,
    scalar_params,
    threads_of,
)
from strataml.models._lineage import code_version, package_versions
from strataml.models._metrics import DEFAULT_METRICS
from strataml.models._predictor import Predictor, input_schema, output_kind, prepare
from strataml.models._registry import (
    CHAMPION,
    load_model,
    move_alias,
    register_version,
    resolve_version,
)
from strataml.models._serialization import dump, flavor
from strataml.models._tracking import Run
from strataml.spine import Workspace


@dataclass
class TrainingData:
    """The rows a model learns from, with the columns' roles and where they came from."""

    table: pa.Table
    inputs: list[str]
    target: str
    timestamp: str | None
    keys: list[str]
    lineage: dict[str, Any]


@dataclass
class TrainResult:
    """What one ``strata train`` did (``--json`` prints :meth:`to_dict`)."""

    run: str
    model: str
    version: int | None
    metrics: dict[str, float]
    gate: dict[str, Any]
    champion: dict[str, Any] | None
    aliases: dict[str, int]
    sha256: str
    tuning: dict[str, Any] | None
    timings: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "run": self.run, "model": self.model, "version": self.version, "metrics": self.metrics,
            "gate": self.gate, "champion": self.champion, "aliases": self.aliases, "sha256": self.sha256,
            "tuning": self.tuning, "timings": self.timings,
        }


# --- training data -------------------------------------------------------------------


def load_training_data(ws: Workspace, model: Model) -> TrainingData:
    """The model's training rows: from its feature views, or from its labels dataset's columns."""
    from strataml.data import get_version

    dv = get_version(ws, model.labels)
    contract = dv.contract
    keys, ts = (list(contract.key_columns), contract.timestamp) if contract else ([], None)
    if model.features:
        from strataml.features import build_training_set

        built = build_training_set(ws, dv.ref, list(model.features))
        table = built.table
        inputs = list(built.feature_columns) + [c for c in (model.columns or []) if c not in built.feature_columns]
        sources = list(dict(built.lineage.get("sources") or {}).values())
        lineage = {
            "training_set": built.ref,
            "labels": dv.ref,
            "views": dict(built.lineage.get("views") or {}),
            "datasets": list(dict.fromkeys([dv.ref, *sources, *([built.ref] if built.ref else [])])),
            "dataset_sha256": {dv.ref: dv.sha256},
        }
    else:
        table = dv.to_arrow()
        skip = {model.target, *keys, *([ts] if ts else [])}
        if model.columns:
            inputs = list(model.columns)
        else:
            inputs = [f.name for f in table.schema if f.name not in skip and not f.name.startswith("_") and _usable(f.type)]
        lineage = {"training_set": None, "labels": dv.ref, "views": {}, "datasets": [dv.ref], "dataset_sha256": {dv.ref: dv.sha256}}
    if model.target not in table.column_names:
        raise ConfigError(f"model {model.name!r}: target {model.target!r} is not a column of {dv.ref} ({', '.join(table.column_names)})")
    if model.target in inputs:
        raise ConfigError(f"model {model.name!r}: the target {model.target!r} cannot also be an input")
    if not inputs:
        raise ConfigError(f"model {model.name!r} has no input columns", hint="add feature views or list columns=[...]")
    table = table.filter(pc.is_valid(table[model.target]))
    return TrainingData(table, inputs, model.target, ts if ts in table.column_names else None, [k for k in keys if k in table.column_names], lineage)


def _usable(t: pa.DataType) -> bool:
    from strataml.models._predictor import arrow_kind

    return arrow_kind(t) is not None


def split_indices(data: TrainingData, model: Model, holdout: float | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Train and holdout row indices: the latest rows by time, or a seeded random draw."""
    n = data.table.num_rows
    frac = holdout if holdout is not None else model.split.holdout
    n_hold = max(1, round(n * frac))
    if n - n_hold < 2:
        raise ConfigError(f"model {model.name!r}: {n} training rows are too few to split", hint="add labelled rows")
    kind = model.split.kind
    if kind == "auto":
        kind = "time" if data.timestamp else "random"
    if kind == "time" and not data.timestamp:
        raise ConfigError(f"model {model.name!r} asks for a time split, but its labels have no timestamp", hint="use st.Split('random')")
    keys = [(k, "ascending") for k in data.keys]
    if kind == "time":
        assert data.timestamp is not None
        order = pc.sort_indices(data.table, sort_keys=[(data.timestamp, "ascending"), *keys]).to_numpy()
        return order[: n - n_hold], order[n - n_hold :], kind
    base = pc.sort_indices(data.table, sort_keys=keys).to_numpy() if keys else np.arange(n)
    perm = base[np.random.default_rng(model.split.seed).permutation(n)]
    return np.sort(perm[: n - n_hold]), np.sort(perm[n - n_hold :]), kind


def prepare_data(data: TrainingData, model: Model, train_idx: np.ndarray, hold_idx: np.ndarray) -> Prepared:
    """Frames for fitting and evaluation, and the signature they define."""
    fmt = flavor(model.estimator)
    y_all = data.table[data.target].to_numpy(zero_copy_only=False)
    kind, classes = output_kind(model.estimator, y_all)
    signature = {
        "inputs": input_schema(data.table, data.inputs),
        "output": {"kind": kind, "classes": classes, "target": data.target},
    }
    inputs_table = data.table.select(data.inputs)
    x_train = prepare(inputs_table.take(train_idx), signature, fmt)
    x_hold = prepare(inputs_table.take(hold_idx), signature, fmt)
    return Prepared(x_train, y_all[train_idx], x_hold, y_all[hold_idx], data.table.take(hold_idx), signature, fmt, train_idx)


def _champion(ws: Workspace, model: Model, prepared: Prepared, metrics: list[str]) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        number = resolve_version(ws, model.name, CHAMPION)
    except NotFound:
        return None, []
    try:
        champ = load_model(ws, model.name, number, definition=model)
        if champ.kind != prepared.kind or list(champ.signature["output"].get("classes") or []) != prepared.classes:
            return {"version": number, "metrics": None}, [f"champion v{number} predicts {champ.kind} {champ.signature['output'].get('classes')}, not {prepared.kind} {prepared.classes}"]
        x = prepare(prepared.hold_table, champ.signature, champ.format)
        values = evaluate(champ.predictor, prepared, metrics, x=x)
    except StrataError as exc:
        return {"version": number, "metrics": None}, [f"champion v{number} could not be evaluated on this holdout: {exc.message}"]
    return {"version": number, "metrics": values}, []


def resolve_model(ws: Workspace, model: Model | str) -> Model:
    """A model object from a name declared in ``definitions.py`` or given directly."""
    if isinstance(model, Model):
        return model
    return ws.definitions.get("model", model)  # type: ignore[no-any-return]


def train(
    ws: Workspace,
    model: Model | str,
    *,
    tune: int | None = None,
    engine: str = "local",
    promote: bool | None = None,
    seed: int | None = None,
) -> TrainResult:
    """Train, evaluate, gate and (when the gate passes) register a new version.

    ``tune`` runs that many Optuna trials first (child runs; ``engine="ray"`` runs them
    as Ray tasks). A version that passes the gate becomes ``champion`` when there is
    none yet or ``promote`` is true, and ``challenger`` otherwise.
    """
    m = resolve_model(ws, model)
    seed = m.seed if seed is None else int(seed)
    if engine not in ("local", "ray"):
        raise ConfigError(f"unknown engine {engine!r}", hint="use --engine local or --engine ray")
    t_start = time.perf_counter()
    with Run(ws, m.name, kind="train", tags={"engine": engine}) as run:
        with run.timer("load"):
            data = load_training_data(ws, m)
        with run.timer("split"):
            train_idx, hold_idx, split_kind = split_indices(data, m)
            prepared = prepare_data(data, m, train_idx, hold_idx)
        metrics = m.metrics or DEFAULT_METRICS[prepared.kind]
        trials = tune if tune is not None else (m.tune.trials if m.tune is not None else 0)
        tuning: dict[str, Any] | None = None
        best: dict[str, Any] = {}
        if trials:
            from strataml.models._tuning import run_study

            with run.timer("tune"):
                tuning = run_study(ws, run, m, data, prepared, metrics, trials=trials, engine=engine, seed=seed)
            best = dict(tuning["best_params"])
        estimator = configure(m.estimator, best, seed)
        run.log_params({**scalar_params(estimator), "seed": seed, "split": split_kind, "holdout": m.split.holdout,
                        "rows_train": len(train_idx), "rows_holdout": len(hold_idx), "inputs": data.inputs})
        with run.timer("fit"):
            fitted = fit(estimator, prepared, m.name)
        with run.timer("serialize"):
            ser = dump(fitted, trusted=m.trusted_types)
            sha = ws.artifacts.put_bytes(ser.data)
        with run.timer("evaluate"):
            predictor = Predictor.from_serialized(ser, prepared.signature, where=f"new model {m.name}", estimator=m.estimator)
            predictor.threads = threads_of(fitted)
            values = evaluate(predictor, prepared, metrics)
        run.log_metrics(values, step=0)
        with run.timer("gate"):
            champion, reasons = _champion(ws, m, prepared, metrics)
            if champion is not None and champion["metrics"] is None and not m.gate.max_drop_vs_champion:
                reasons = []  # the champion only matters to a gate that compares against it
            reasons = [*reasons, *m.gate.evaluate(values, champion["metrics"] if champion else None)]
        lineage = {
            **data.lineage, "code": code_version(ws.root), "packages": package_versions(), "seed": seed,
            "split": {"kind": split_kind, "holdout": m.split.holdout, "rows_train": len(train_idx), "rows_holdout": len(hold_idx)},
        }
        run.set_lineage(**lineage)
        run.log_artifact(ser.data, name=f"model.{ser.format}")
        version: int | None = None
        aliases: dict[str, int] = {}
        with run.timer("register"):
            if not reasons:
                with ws.catalog.write() as conn:
                    version = register_version(
                        conn, m.name, run_id=run.id, sha256=sha, fmt=ser.format, signature=prepared.signature,
                        metrics=values, params=run.params, lineage={**lineage, "run": run.id}, feature_views=list(m.features),
                        trusted_types=ser.trusted_types, description=m.description,
                    )
                    if champion is None or promote:
                        why = "first version to pass the gate" if champion is None else "promoted by train (gate passed)"
                        move_alias(conn, m.name, CHAMPION, version, reason=why)
                        aliases[CHAMPION] = version
                    else:
                        move_alias(conn, m.name, "challenger", version, reason="passed the gate; champion kept")
                        aliases["challenger"] = version
        gate = {"status": "failed" if reasons else "passed", "passed": not reasons, "reasons": reasons, "definition": m.gate.to_dict()}
        run.set_tags({"gate": gate["status"], "version": version})
        run.timings["total_s"] = round(time.perf_counter() - t_start, 6)
    return TrainResult(run.id, m.name, version, values, gate, champion, aliases, sha, tuning, dict(run.timings))
