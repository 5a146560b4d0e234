"""Quality once labels arrive, and estimated quality before they do.

Labels are an ordinary dataset. :func:`quality` joins them to the logged live
predictions — on ``request_id`` (and ``instance``) when the labels carry them,
otherwise on the model's entity key with the first label at or after the prediction's
time within a horizon — in DuckDB, and computes per model version and window:

* classifiers (binary): ROC AUC, log loss, accuracy, precision, recall and
  false-positive rate at the deployment's threshold (numpy on the joined rows: the
  same figures as scikit-learn's, which the tests check); regressors: MAE, RMSE and
  R² (through scikit-learn);
* the counts of labelled and still unlabelled predictions;
* for binary classifiers, **estimated** ROC AUC and accuracy from the predicted
  probabilities alone (confidence-based performance estimation): the probabilities are
  calibrated on the version's held-out rows (isotonic regression), and each prediction
  counts as a fractional positive. The estimate covers every prediction of the window,
  labelled or not, and is shown beside the realised figures once labels arrive.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from strataml.errors import ConfigError
from strataml.monitoring._arrays import float64_values, int64_values
from strataml.spine import Workspace, duck, parse_duration, quote_ident, quote_literal

BY = ("version", "day", "hour")


@dataclass
class QualityReport:
    """Realised (and estimated) quality of a model's live predictions, per version and window."""

    model: str
    labels: str
    kind: str
    by: str
    join: str
    threshold: float | None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"model","labels","kind","by","join","threshold","rows":[{"version","window","labelled","unlabelled",metrics…,"estimated":{…}}]}``."""
        return {"model": self.model, "labels": self.labels, "kind": self.kind, "by": self.by, "join": self.join,
                "threshold": self.threshold, "rows": self.rows}


def _kind(ws: Workspace, model: str, version: int) -> str:
    from strataml.models import get_model

    for v in get_model(ws, model)["versions"]:
        if int(v["version"]) == version:
            out = v["signature"].get("output", {})
            return str(out.get("kind", "regression"))
    return "regression"


def _threshold(ws: Workspace, deployment: str, given: float | None) -> float:
    if given is not None:
        return float(given)
    from strataml.serving import get_traffic

    t = get_traffic(ws.catalog, deployment)
    return float(getattr(t, "threshold", 0.5)) if t is not None else 0.5


def joined(ws: Workspace, model: str, labels: str | None, *, by: str = "version", horizon: str | float = "30d",
           deployment: str | None = None, since: dt.datetime | None = None) -> tuple[pa.Table, str]:
    """The model's live predictions with their labels (``label`` null when none arrived yet).

    ``since`` keeps the predictions made at or after that time. Columns: ``version``,
    ``window`` (start of the hour/day, or null by version),
    ``prediction`` (the logged output as a number) and ``label``. Also returns how the
    join was made (``"request_id"`` or ``"entity:<key>"``).
    """
    from strataml.data import get_version
    from strataml.serving import prediction_log_dir, prediction_log_sql

    if by not in BY:
        raise ConfigError(f"--by {by!r} is not one of {', '.join(BY)}")
    seconds = parse_duration(horizon, "horizon")
    directory = prediction_log_dir(ws.state_dir)
    where = f"model = {quote_literal(model)} AND mode = 'live'"
    if deployment:
        where += f" AND deployment = {quote_literal(deployment)}"
    if since is not None:
        where += f" AND ts >= CAST({quote_literal(since.isoformat())} AS TIMESTAMPTZ)"
    window = {"version": "NULL::TIMESTAMPTZ", "day": "date_trunc('day', p.ts)", "hour": "date_trunc('hour', p.ts)"}[by]
    has_log = directory.is_dir() and any(directory.glob("*.jsonl"))
    empty = pa.table({"version": pa.array([], pa.int64()), "window": pa.array([], pa.timestamp("us", tz="UTC")),
                      "prediction": pa.array([], pa.float64()), "label": pa.array([], pa.float64())})
    if labels is None:  # estimates only
        if not has_log:
            return empty, "none"
        sql = (f"SELECT p.version, {window} AS window, TRY_CAST(p.output AS DOUBLE) AS prediction, NULL::DOUBLE AS label "
               f"FROM {prediction_log_sql(directory)} p WHERE {where}")
        con = duck()
        try:
            return con.sql(sql).to_arrow_table(), "none"
        finally:
            con.close()
    definition = ws.definitions.get("model", model)
    target = definition.target
    lv = get_version(ws, labels or "")
    cols = lv.columns
    if target not in cols:
        raise ConfigError(f"labels {lv.ref} have no column {target!r} (the target of model {model!r})",
                          hint=f"its columns: {', '.join(cols)}")
    if not has_log:
        return empty, "none"
    y = f"TRY_CAST(l.{quote_ident(target)} AS DOUBLE)"
    if "request_id" in cols:
        how = "request_id"
        on = "p.request_id = l.request_id" + (" AND p.instance = l.instance" if "instance" in cols else "")
        sql = (f"SELECT p.version, {window} AS window, TRY_CAST(p.output AS DOUBLE) AS prediction, {y} AS label "
               f"FROM (SELECT * FROM {prediction_log_sql(directory)} WHERE {where}) p "
               f"LEFT JOIN {lv.sql_source()} l ON {on}")
    else:
        key = _entity_key(ws, definition, lv.contract_name, cols)
        how = f"entity:{key}"
        ts_col = _label_time(ws, lv.contract_name, cols)
        pkey = f"json_extract_string(p.features, {quote_literal('$.' + key)})"
        if ts_col is None:
            sql = (f"SELECT p.version, {window} AS window, TRY_CAST(p.output AS DOUBLE) AS prediction, {y} AS label "
                   f"FROM (SELECT *, {pkey} AS _k FROM {prediction_log_sql(directory)} WHERE {where}) p "
                   f"LEFT JOIN (SELECT CAST({quote_ident(key)} AS VARCHAR) AS _k, any_value({quote_ident(target)}) AS {quote_ident(target)} "
                   f"FROM {lv.sql_source()} GROUP BY 1) l ON p._k = l._k")
        else:
            w2 = window.replace("p.ts", "ts")
            sql = (f"SELECT version, {w2} AS window, TRY_CAST(output AS DOUBLE) AS prediction, "
                   f"CASE WHEN _t <= ts + to_seconds({seconds}) THEN _y END AS label FROM ("
                   f"SELECT p.version, p.ts, p.output, l._t, l._y "
                   f"FROM (SELECT version, ts, output, {pkey} AS _k FROM {prediction_log_sql(directory)} p WHERE {where}) p "
                   f"ASOF LEFT JOIN (SELECT CAST({quote_ident(key)} AS VARCHAR) AS _k, CAST({quote_ident(ts_col)} AS TIMESTAMPTZ) AS _t, "
                   f"TRY_CAST({quote_ident(target)} AS DOUBLE) AS _y FROM {lv.sql_source()}) l ON p._k = l._k AND l._t >= p.ts)")
    con = duck()
    try:
        table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return table, how


def _entity_key(ws: Workspace, definition: Any, contract_name: str | None, cols: list[str]) -> str:
    from strataml.data import resolve_contract

    for name in (definition.labels, contract_name):
        if not name:
            continue
        try:
            key = resolve_contract(ws, name).key
        except Exception:  # a dataset ingested without a declared contract
            continue
        keys = [key] if isinstance(key, str) else list(key or [])
        if len(keys) == 1 and keys[0] in cols:
            return keys[0]
    raise ConfigError("the labels carry no request_id and the model has no single entity key they share",
                      hint="give the labels a request_id (and instance) column, or the key column of the model's labels contract")


def _label_time(ws: Workspace, contract_name: str | None, cols: list[str]) -> str | None:
    from strataml.data import resolve_contract

    if contract_name:
        try:
            ts = resolve_contract(ws, contract_name).timestamp
        except Exception:
            ts = None
        if ts and ts in cols:
            return str(ts)
    return None


def _realised(kind: str, y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    if len(y) == 0:
        return {}
    if kind == "binary":
        # one pass of counts rather than sklearn's per-metric label checks (each sorts every row)
        hard = p >= threshold
        pos = y == 1
        tp, fp = int(np.count_nonzero(hard & pos)), int(np.count_nonzero(hard & ~pos))
        fn = int(np.count_nonzero(pos)) - tp
        tn = len(y) - tp - fp - fn
        both = 0 < tp + fn < len(y)
        q = np.clip(p, 1e-15, 1 - 1e-15)
        return {
            # roc_auc_score's curve (one point per distinct score, trapezoids), one unstable sort
            "roc_auc": expected_roc_auc(pos.astype(np.float64), p) if both else None,
            "log_loss": float(-np.mean(np.where(pos, np.log(q), np.log(1 - q)))),
            "accuracy": (tp + tn) / len(y),
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "fpr": fp / (fp + tn) if fp + tn else None,
        }
    from sklearn import metrics as skm

    return {
        "mae": float(skm.mean_absolute_error(y, p)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
        "r2": float(skm.r2_score(y, p)) if len(y) > 1 else None,
    }


def expected_roc_auc(prob: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC expected when each prediction is a positive with probability ``prob``, ranked by ``score``."""
    if len(prob) == 0:
        return None
    order = np.argsort(-score)  # ties are grouped below, so the sort need not be stable
    s, pp = score[order], prob[order]
    # one point of the curve per distinct score (ties move together)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(pp)[last]
    fp = np.cumsum(1.0 - pp)[last]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return None
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return float(np.trapezoid(tpr, fpr))


class Calibrator:
    """Isotonic calibration of a version's probabilities, fitted on its held-out rows."""

    def __init__(self, heldout: pa.Table) -> None:
        from sklearn.isotonic import IsotonicRegression

        x, y = float64_values(heldout["prediction"]), float64_values(heldout["label"])
        self.iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        self.rows = len(x)

    def estimate(self, p: np.ndarray, threshold: float) -> dict[str, Any]:
        """Estimated ROC AUC and accuracy of predictions ``p`` (no labels needed)."""
        if len(p) == 0:
            return {"roc_auc": None, "accuracy": None, "rows": 0}
        c = np.asarray(self.iso.predict(p), dtype=float)
        correct = np.where(p >= threshold, c, 1.0 - c)
        return {"roc_auc": expected_roc_auc(c, p), "accuracy": float(correct.mean()), "rows": len(p)}


def _calibrator(ws: Workspace, model: str, version: int) -> Calibrator | None:
    from strataml.monitoring._profiles import profile

    held = profile(ws, f"{model}@{version}").heldout
    if held is None or held.num_rows < 10:
        return None
    return Calibrator(held)


def _groups(version: np.ndarray, window: np.ndarray) -> list[tuple[int, int]]:
    """The distinct (version, window) pairs, in order."""
    if len(version) == 0:
        return []
    if bool((version == version[0]).all() and (window == window[0]).all()):
        return [(int(version[0]), int(window[0]))]
    vs, vi = np.unique(version, return_inverse=True)
    ws_, wi = np.unique(window, return_inverse=True)
    return [(int(vs[c // len(ws_)]), int(ws_[c % len(ws_)])) for c in np.unique(vi * len(ws_) + wi).tolist()]


def quality(ws: Workspace, model: str, labels: str | None, *, by: str = "version", horizon: str | float = "30d",
            deployment: str | None = None, threshold: float | None = None, estimate: bool = True,
            since: dt.datetime | None = None) -> QualityReport:
    """Realised quality of ``model``'s live predictions against the ``labels`` dataset, per
    version and window (``by`` ``version``, ``day`` or ``hour``), with the estimated figures
    for binary classifiers beside them. ``labels=None`` gives the estimates alone; ``since``
    keeps the predictions made from that time on (two versions compared over the same span)."""
    table, how = joined(ws, model, labels, by=by, horizon=horizon, deployment=deployment, since=since)
    thr = _threshold(ws, deployment or model, threshold)
    # through the buffers: pyarrow's to_numpy and group_by import pandas
    version = int64_values(table["version"])
    window = int64_values(table["window"]) if by != "version" else np.zeros(len(version), dtype=np.int64)
    pred, lab = float64_values(table["prediction"]), float64_values(table["label"])
    kinds: dict[int, str] = {}
    cals: dict[int, Calibrator | None] = {}
    report = QualityReport(model, labels or "", "", by, how, None)
    groups = _groups(version, window)
    single = len(groups) == 1
    for v, w in groups:
        mask = np.ones(len(version), dtype=bool) if single else (version == v) & (window == w)
        if v not in kinds:
            kinds[v] = _kind(ws, model, v)
        kind = kinds[v]
        report.kind = kind if not report.kind or report.kind == kind else "mixed"
        p, y = pred[mask], lab[mask]
        have = ~np.isnan(y) & ~np.isnan(p)
        row: dict[str, Any] = {"version": v, "window": None if by == "version" else
                               dt.datetime.fromtimestamp(w / 1e6, dt.UTC).isoformat(),
                               "predictions": int(mask.sum()), "labelled": int(have.sum()), "unlabelled": int((~have).sum())}
        row.update(_realised(kind, y[have], p[have], thr) if kind in ("binary", "regression") else {})
        if kind == "binary":
            report.threshold = thr
            if estimate:
                if v not in cals:
                    cals[v] = _calibrator(ws, model, v)
                cal = cals[v]
                ok = ~np.isnan(p)
                row["estimated"] = cal.estimate(p[ok], thr) if cal is not None else None
        report.rows.append(row)
    return report
