"""Tuning: an Optuna study whose trials are child runs of the training run.

Trials fit on the training rows minus a validation slice (the latest fifth by time
for a time split, a seeded random fifth otherwise), so the holdout the gate reads is
never seen while choosing parameters. With ``engine="ray"`` each batch of trials runs
in parallel as Ray tasks on a local instance or the cluster at ``STRATA_RAY``; the
trials only compute, and the driver records every one of them in the catalog.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import numpy as np

from strataml.errors import MissingExtra, StrataError
from strataml.models._definitions import Model, Tune
from strataml.models._metrics import higher_is_better
from strataml.models._serialization import flavor
from strataml.models._tracking import Run
from strataml.spine import Workspace, user_code

#: the search space used when a LightGBM model declares none
LIGHTGBM_SPACE = Tune(
    params={
        "num_leaves": ("int", 8, 128, "log"),
        "learning_rate": ("float", 0.01, 0.3, "log"),
        "min_child_samples": ("int", 5, 100, "log"),
        "colsample_bytree": ("float", 0.5, 1.0),
    }
)

#: the search space used when an XGBoost model declares none
XGBOOST_SPACE = Tune(
    params={
        "max_depth": ("int", 2, 10),
        "learning_rate": ("float", 0.01, 0.3, "log"),
        "min_child_weight": ("float", 0.5, 20.0, "log"),
        "subsample": ("float", 0.5, 1.0),
        "colsample_bytree": ("float", 0.5, 1.0),
    }
)
#: the search space used when a st.TorchEstimator model declares none
TORCH_SPACE = Tune(
    params={
        "lr": ("float", 1e-4, 3e-2, "log"),
        "batch_size": ("choice", [64, 128, 256, 512]),
        "weight_decay": ("float", 1e-6, 1e-2, "log"),
    }
)
DEFAULT_SPACES = {"lightgbm": LIGHTGBM_SPACE, "xgboost": XGBOOST_SPACE, "torch": TORCH_SPACE}


def trial_task(
    estimator: Any, params: dict[str, Any], seed: int, x_tr: Any, y_tr: Any, x_va: Any, y_va: Any,
    signature: dict[str, Any], fmt: str, metrics: list[str],
) -> dict[str, Any]:
    """Fit one parameter set and score it on the validation slice (runs locally or as a Ray task)."""
    from strataml.models._fitting import Prepared, configure, evaluate, fit_target, native_predictor

    t0 = time.perf_counter()
    where = {"pid": os.getpid(), "host": socket.gethostname()}
    try:
        est = configure(estimator, params, seed)
        est.fit(x_tr, fit_target(y_tr, fmt, signature))
        prepared = Prepared(x_tr, y_tr, x_va, y_va, None, signature, fmt)
        values = evaluate(native_predictor(est, prepared), prepared, metrics)
        return {"ok": True, "metrics": values, "seconds": time.perf_counter() - t0, "worker": where}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - t0, "worker": where}


def _space(m: Model) -> Tune:
    if m.tune is not None:
        return m.tune
    default = DEFAULT_SPACES.get(flavor(m.estimator))
    if default is not None:
        return default
    raise StrataError(
        f"model {m.name!r} declares no tuning space",
        hint="add tune=st.Tune(params={'param': ('int', low, high)}) to the model",
    )


def _ray(ws: Workspace) -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtra("ray", "ray", "--engine ray") from exc
    if not ray.is_initialized():
        address = ws.settings.ray
        try:
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        except Exception as exc:
            raise StrataError(
                f"cannot start or reach Ray{' at ' + address if address else ''}: {exc}",
                hint="set STRATA_RAY=ray://host:10001 for a cluster, or leave it unset for a local instance",
            ) from exc
    return ray


def run_study(
    ws: Workspace, parent: Run, m: Model, data: Any, prepared: Any, metrics: list[str], *,
    trials: int, engine: str = "local", seed: int = 0,
) -> dict[str, Any]:
    """Run ``trials`` Optuna trials as child runs of ``parent``; returns the best parameters and a summary."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = _space(m)
    metric = space.metric or metrics[0]
    maximize = higher_is_better(metric)
    all_metrics = list(dict.fromkeys([metric, *metrics]))
    n = len(prepared.x_train)
    n_val = max(1, round(n * 0.2))
    if prepared.signature and data.timestamp and m.split.kind in ("auto", "time"):
        tr, va = np.arange(n - n_val), np.arange(n - n_val, n)
    else:
        perm = np.random.default_rng(seed).permutation(n)
        tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    x_tr, y_tr = prepared.x_train.iloc[tr], prepared.y_train[tr]
    x_va, y_va = prepared.x_train.iloc[va], prepared.y_train[va]
    study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=optuna.samplers.TPESampler(seed=seed))

    if engine == "ray":
        ray = _ray(ws)
        remote = ray.remote(num_cpus=1)(trial_task)
        refs = [ray.put(v) for v in (x_tr, y_tr, x_va, y_va)]
        batch = max(1, int(ray.cluster_resources().get("CPU", 1)))

        def run_batch(params_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
            futures = [remote.remote(m.estimator, p, seed, *refs, prepared.signature, prepared.fmt, all_metrics) for p in params_list]
            return list(ray.get(futures))
    else:
        batch = 1

        def run_batch(params_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [trial_task(m.estimator, p, seed, x_tr, y_tr, x_va, y_va, prepared.signature, prepared.fmt, all_metrics) for p in params_list]

    done: list[dict[str, Any]] = []
    best_value: float | None = None
    while len(done) < trials:
        asked = [study.ask() for _ in range(min(batch, trials - len(done)))]
        params_list = [space.suggest(t) for t in asked]
        results = run_batch(params_list)
        for trial, params, res in zip(asked, params_list, results, strict=True):
            child = Run(ws, m.name, kind="trial", parent=parent, params={**params, "trial": trial.number}, tags={"engine": engine, "worker": res["worker"]})
            child.timings["fit_s"] = round(res["seconds"], 6)
            if res["ok"]:
                child.log_metrics(res["metrics"], step=0)
                value = res["metrics"][metric]
                study.tell(trial, value)
                child.end("finished")
                if best_value is None or (value > best_value if maximize else value < best_value):
                    best_value = value
                parent.log_metric(f"tune_{metric}", value, step=trial.number)
                parent.log_metric(f"tune_best_{metric}", best_value, step=trial.number)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                child.end("failed", res["error"])
            done.append({"trial": trial.number, "run": child.id, "params": params, "ok": res["ok"],
                         "value": res["metrics"][metric] if res["ok"] else None, "error": res.get("error")})
    completed = [d for d in done if d["ok"]]
    if not completed:
        raise StrataError(f"model {m.name!r}: all {trials} tuning trials failed; first error: {done[0]['error']}", hint="check the tuning space")
    best = study.best_trial
    best_run = next(d["run"] for d in done if d["trial"] == best.number)
    return {
        "metric": metric, "direction": "maximize" if maximize else "minimize", "engine": engine, "trials": len(done),
        "failed": len(done) - len(completed), "best_trial": best.number, "best_run": best_run,
        "best_value": best.value, "best_params": dict(best.params) | _fixed(space, best),
        "runs": [d["run"] for d in done],
    }


def _fixed(space: Tune, trial: Any) -> dict[str, Any]:
    """Parameters a custom ``space`` function returned beyond Optuna's own (replayed for the best trial)."""
    if space.space is None:
        return {}
    import optuna

    fixed = optuna.trial.FixedTrial(dict(trial.params))
    with user_code(f"the tune space function {getattr(space.space, '__qualname__', 'space')}"):
        drawn = space.space(fixed)
    return {k: v for k, v in drawn.items() if k not in trial.params}
