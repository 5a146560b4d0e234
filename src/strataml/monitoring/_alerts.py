"""Alert rules, their evaluation, and where firings and resolutions go.

Rules are declared in ``definitions.py`` (``st.Alert(...)``, the same class as
:class:`AlertRule`). :func:`check_alerts` evaluates each once: a rule whose value
crosses its threshold *fires* (once — it stays firing while the value stays bad), and
*resolves* only when the value is back past the threshold by the rule's hysteresis; after
resolving it cannot fire again within its cooldown. Each firing and resolution is an
``alert.fired``/``alert.resolved`` event in the catalog's event log (written in the same
transaction as the state change, so pipelines can trigger on it), a log line, and — when
the rule names a webhook — an HTTP POST of the event as JSON, retried a bounded number of
times with backoff, in a background thread whose overall wait is capped so a dead
endpoint never holds up the check.

Error-rate rules with an ``slo`` use multi-window burn rates: the error rate divided by
the error budget (``1 - slo``) must exceed the threshold over both the fast and the slow
window (the SRE workbook's 14.4 times over 5 minutes and 1 hour by default), so a short blip
(fast only) does not page and a slow leak (slow window) keeps the alert up.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from strataml.errors import ConfigError
from strataml.monitoring._tables import monitor_alerts
from strataml.spine import Workspace, append_event, parse_duration, utcnow

log = logging.getLogger("strataml.monitoring._alerts")

METRICS = ("drift_share", "feature_drift", "quality", "p99_latency", "error_rate")
SEVERITIES = ("info", "warning", "page")
_LOWER_IS_WORSE = {"roc_auc", "accuracy", "precision", "recall", "r2", "estimated_roc_auc", "estimated_accuracy"}
WEBHOOK_DEADLINE_S = 5.0


@dataclass
class AlertRule:
    """A declared alert: ``metric`` of ``model`` (a deployment name) against ``threshold``.

    ``metric`` is ``drift_share``, ``feature_drift`` (with ``feature``; the value is the
    feature's PSI), ``quality`` (with ``quality_metric`` — ``roc_auc``, ``log_loss``,
    ``mae``…, or ``estimated_roc_auc``/``estimated_accuracy`` — and ``labels`` for
    realised figures), ``p99_latency`` (ms) or ``error_rate`` (a fraction; with ``slo``,
    e.g. ``0.999``, the threshold is a burn rate over ``fast_window`` and ``slow_window``).
    ``direction`` is ``above`` or ``below`` (by default ``below`` for quality figures
    where higher is better, else ``above``).
    """

    __strata_kind__ = "alert"

    name: str
    model: str
    metric: str
    threshold: float
    window: str = "1h"
    severity: str = "warning"
    feature: str | None = None
    quality_metric: str | None = None
    labels: str | None = None
    slo: float | None = None
    fast_window: str = "5m"
    slow_window: str = "1h"
    direction: str | None = None
    hysteresis: float = 0.1
    cooldown: str = "10m"
    webhook: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"alert {self.name!r}: unknown metric {self.metric!r}", hint=f"one of {', '.join(METRICS)}")
        if self.severity not in SEVERITIES:
            raise ConfigError(f"alert {self.name!r}: unknown severity {self.severity!r}", hint=f"one of {', '.join(SEVERITIES)}")
        if self.metric == "feature_drift" and not self.feature:
            raise ConfigError(f"alert {self.name!r}: feature_drift needs feature=", hint="name the input column to watch")
        if self.metric == "quality" and not self.quality_metric:
            raise ConfigError(f"alert {self.name!r}: quality needs quality_metric=", hint="e.g. quality_metric='roc_auc' (with labels=) or 'estimated_roc_auc'")
        if self.metric == "quality" and not (self.quality_metric or "").startswith("estimated_") and not self.labels:
            raise ConfigError(f"alert {self.name!r}: realised {self.quality_metric} needs labels=", hint="name the labels dataset, or watch estimated_roc_auc")
        if self.slo is not None and not 0 < self.slo < 1:
            raise ConfigError(f"alert {self.name!r}: slo must be between 0 and 1, e.g. 0.999")
        if self.direction is None:
            self.direction = "below" if self.metric == "quality" and self.quality_metric in _LOWER_IS_WORSE else "above"
        if self.direction not in ("above", "below"):
            raise ConfigError(f"alert {self.name!r}: direction must be 'above' or 'below'")
        for w in (self.window, self.fast_window, self.slow_window):
            parse_duration(w, f"alert {self.name!r} window")
        parse_duration(self.cooldown, f"alert {self.name!r} cooldown", zero=True)

    def breached(self, value: float) -> bool:
        """Whether ``value`` is past the threshold."""
        return value > self.threshold if self.direction == "above" else value < self.threshold

    def cleared(self, value: float) -> bool:
        """Whether ``value`` is back past the threshold by the hysteresis margin."""
        margin = abs(self.threshold) * self.hysteresis
        return value < self.threshold - margin if self.direction == "above" else value > self.threshold + margin

    def to_dict(self) -> dict[str, Any]:
        """The rule as declared."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Alert:
    """A rule's current state."""

    rule: str
    state: str
    severity: str
    subject: str
    metric: str
    value: float | None
    threshold: float
    message: str
    fired_at: dt.datetime | None
    resolved_at: dt.datetime | None
    checked_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        def iso(t: dt.datetime | None) -> str | None:
            return t.isoformat() if t is not None else None

        return {"rule": self.rule, "state": self.state, "severity": self.severity, "subject": self.subject, "metric": self.metric,
                "value": self.value, "threshold": self.threshold, "message": self.message,
                "fired_at": iso(self.fired_at), "resolved_at": iso(self.resolved_at), "checked_at": iso(self.checked_at)}


@dataclass(frozen=True)
class AlertEvent:
    """A firing or a resolution (also recorded as a catalog event)."""

    rule: str
    kind: str  # "fired" or "resolved"
    severity: str
    subject: str
    value: float | None
    threshold: float
    message: str
    ts: dt.datetime
    event_id: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the webhook's body)."""
        return {"rule": self.rule, "kind": self.kind, "severity": self.severity, "subject": self.subject, "value": self.value,
                "threshold": self.threshold, "message": self.message, "ts": self.ts.isoformat(), "event_id": self.event_id,
                "details": self.details}


def evaluate(ws: Workspace, rule: AlertRule) -> tuple[float | None, dict[str, Any]]:
    """The rule's current value (None: not enough data to judge) and the figures behind it."""
    if rule.metric in ("drift_share", "feature_drift"):
        from strataml.monitoring._drift import drift

        d = drift(ws, rule.model, deployment=rule.model, window=rule.window).to_dict()
        if rule.metric == "drift_share":
            share = d.get("drift_share")
            return (float(share) if isinstance(share, int | float) else None), {"drifted": d.get("drifted")}
        f = d["features"].get(rule.feature or "")
        if f is None:
            raise ConfigError(f"alert {rule.name!r}: {rule.model} has no input {rule.feature!r}", hint=f"its inputs: {', '.join(d['features'])}")
        psi = f.get("psi")
        return (float(psi) if psi is not None else None), {k: f.get(k) for k in ("test", "statistic", "p_value", "psi", "drifted")}
    if rule.metric == "quality":
        from strataml.monitoring._quality import quality

        q = quality(ws, rule.model, rule.labels, deployment=rule.model, horizon="30d").to_dict()
        if not q["rows"]:
            return None, {}
        row = max(q["rows"], key=lambda r: r["version"])
        name = rule.quality_metric or ""
        value = (row.get("estimated") or {}).get(name.removeprefix("estimated_")) if name.startswith("estimated_") else row.get(name)
        return (float(value) if value is not None else None), {"version": row["version"], "labelled": row["labelled"]}
    from strataml.monitoring._slo import counts, slo

    if rule.metric == "p99_latency":
        t = slo(ws, rule.model, window=rule.window, bucket=rule.window).totals()
        return t["p99_max"], {"requests": t["requests"]}
    now = dt.datetime.now(dt.UTC)
    if rule.slo is None:
        ok, bad = counts(ws, rule.model, now - dt.timedelta(seconds=parse_duration(rule.window)))
        return (bad / (ok + bad) if ok + bad else None), {"requests": ok, "errors": bad}
    budget = 1.0 - rule.slo
    burns = {}
    for label, w in (("fast", rule.fast_window), ("slow", rule.slow_window)):
        ok, bad = counts(ws, rule.model, now - dt.timedelta(seconds=parse_duration(w)))
        burns[label] = (bad / (ok + bad)) / budget if ok + bad else 0.0
    # both windows must burn: the smaller of the two is what must cross the threshold
    return min(burns["fast"], burns["slow"]), {"burn_fast": burns["fast"], "burn_slow": burns["slow"]}


def _transition(ws: Workspace, rule: AlertRule, value: float | None, details: dict[str, Any]) -> AlertEvent | None:
    t = monitor_alerts
    now = utcnow()
    with ws.catalog.write() as conn:
        row = conn.execute(sa.select(t.c.state, t.c.resolved_at).where(t.c.rule == rule.name)).first()
        state = row.state if row else "ok"
        kind = None
        if value is not None:
            if state == "ok" and rule.breached(value):
                last = row.resolved_at if row else None
                if last is None or (now - last).total_seconds() >= parse_duration(rule.cooldown, zero=True):
                    kind = "fired"
            elif state == "firing" and rule.cleared(value):
                kind = "resolved"
        shown = "n/a" if value is None else f"{value:.4g}"
        message = f"{rule.model} {rule.metric}{'/' + (rule.feature or rule.quality_metric or '') if rule.feature or rule.quality_metric else ''} = {shown} ({rule.direction} {rule.threshold:g})"
        return _write(conn, row is not None, rule.name, kind, {"fired": "firing", "resolved": "ok"}.get(kind or "", state),
                      severity=rule.severity, subject=rule.model, metric=rule.metric, value=value, threshold=rule.threshold,
                      message=message, details=details, now=now)


def _write(conn: sa.Connection, exists: bool, rule: str, kind: str | None, state: str, *, severity: str, subject: str, metric: str,
           value: float | None, threshold: float, message: str, details: dict[str, Any], now: dt.datetime) -> AlertEvent | None:
    """Store an alert's state and figures; for a firing or resolution (``kind``), its event too."""
    t = monitor_alerts
    values: dict[str, Any] = {"state": state, "severity": severity, "subject": subject, "metric": metric, "value": value,
                              "threshold": threshold, "message": message, "checked_at": now}
    if kind == "fired":
        values["fired_at"] = now
    if kind == "resolved":
        values["resolved_at"] = now
    if exists:
        conn.execute(t.update().where(t.c.rule == rule).values(**values))
    else:
        conn.execute(t.insert().values(rule=rule, **values))
    if kind is None:
        return None
    payload = {"rule": rule, "severity": severity, "metric": metric, "value": value, "threshold": threshold, "message": message, "details": details}
    eid = append_event(conn, f"alert.{kind}", subject, payload)
    return AlertEvent(rule, kind, severity, subject, value, threshold, message, now, eid, details)


def set_alert(conn: sa.Connection, rule: str, subject: str, firing: bool, *, metric: str, value: float, threshold: float, message: str,
              severity: str = "warning", details: dict[str, Any] | None = None) -> AlertEvent | None:
    """Set an alert that a decision outside the declared rules raises (a closed loop's
    rollback), in the caller's transaction: it fires when it turns firing and resolves
    when it turns ok, each once, with the same event, state and listing as a rule's
    alert (no webhook: declare a pipeline on the alert to be told). The event, or None
    when the state did not change."""
    t = monitor_alerts
    row = conn.execute(sa.select(t.c.state).where(t.c.rule == rule)).first()
    if row is None and not firing:
        return None  # never fired: nothing to resolve
    state = row.state if row else "ok"
    kind = "fired" if firing and state == "ok" else "resolved" if not firing and state == "firing" else None
    return _write(conn, row is not None, rule, kind, "firing" if firing else "ok", severity=severity, subject=subject, metric=metric,
                  value=value, threshold=threshold, message=message, details=details or {}, now=utcnow())


def _post(url: str, body: dict[str, Any], attempts: int = 3) -> None:
    import httpx
    from tenacity import retry, stop_after_attempt, wait_exponential

    @retry(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=0.2, max=2.0), reraise=True)
    def send() -> None:
        httpx.post(url, json=body, timeout=2.0).raise_for_status()

    try:
        send()
    except Exception as exc:
        log.warning("alert webhook %s failed after %d attempts: %s", url.split("?")[0], attempts, type(exc).__name__)


def _deliver(rules: dict[str, AlertRule], events: list[AlertEvent], deadline: float = WEBHOOK_DEADLINE_S) -> None:
    jobs = [(rules[e.rule].webhook, e) for e in events if rules[e.rule].webhook]
    if not jobs:
        return
    pool = cf.ThreadPoolExecutor(max_workers=min(8, len(jobs)), thread_name_prefix="alert-webhook")
    futures = [pool.submit(_post, str(url), e.to_dict()) for url, e in jobs]
    cf.wait(futures, timeout=deadline)
    pool.shutdown(wait=False, cancel_futures=True)


def rules_of(ws: Workspace) -> list[AlertRule]:
    """The alert rules ``definitions.py`` declares."""
    return [r for r in ws.definitions.all("alert") if isinstance(r, AlertRule)]


def check_alerts(ws: Workspace, rules: list[AlertRule] | None = None) -> list[AlertEvent]:
    """Evaluate every rule once; the firings and resolutions this check caused."""
    rules = rules_of(ws) if rules is None else rules
    events = []
    for rule in rules:
        try:
            value, details = evaluate(ws, rule)
        except ConfigError:
            raise
        except Exception as exc:  # one broken rule does not stop the others
            log.warning("alert %s could not be evaluated: %s", rule.name, exc)
            continue
        ev = _transition(ws, rule, value, details)
        if ev is not None:
            (log.error if ev.severity == "page" else log.warning)("alert %s %s: %s", ev.rule, ev.kind, ev.message)
            events.append(ev)
    _deliver({r.name: r for r in rules}, events)
    return events


def list_alerts(ws: Workspace, state: str | None = None) -> list[Alert]:
    """Every rule's state (``state``: only ``firing`` or only ``ok``)."""
    if state is not None and state not in ("firing", "ok"):
        raise ConfigError(f"unknown alert state {state!r}", hint="firing or ok")
    t = monitor_alerts
    q = sa.select(t).order_by(t.c.rule)
    if state:
        q = q.where(t.c.state == state)
    with ws.catalog.read() as conn:
        rows = conn.execute(q).mappings().all()
    return [Alert(r["rule"], r["state"], r["severity"], r["subject"], r["metric"], r["value"], r["threshold"], r["message"],
                  r["fired_at"], r["resolved_at"], r["checked_at"] or utcnow()) for r in rows]


def run_monitor(ws: Workspace, interval: float | str = 60.0, *, stop: threading.Event | None = None,
                iterations: int | None = None) -> int:
    """Check every rule each ``interval`` until ``stop`` is set, SIGTERM/SIGINT arrives or
    ``iterations`` checks ran; the number of checks made."""
    seconds = parse_duration(interval, "interval")
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    done = 0
    try:
        while not stop.is_set():
            try:
                check_alerts(ws)
            except ConfigError:
                raise
            except Exception as exc:
                log.error("alert check failed: %s", exc)
            done += 1
            if iterations is not None and done >= iterations:
                break
            stop.wait(seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return done
