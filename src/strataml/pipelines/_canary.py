"""A canary's analysis rules, as data, and the checks they make.

A :class:`Check` names a metric and what the canary must reach: a comparison with the
champion serving beside it (a statistical test on the two versions' live traffic over
the same span, not two unrelated averages) and/or an absolute threshold. Every check
has three outcomes: ``pass``, ``fail`` or ``inconclusive`` (too little traffic, no
values, or a difference the test cannot tell from noise). :class:`Canary` holds the
rules of one canary: its weight, how long it is watched and how often it is checked,
the checks that must pass to promote (``promote_if``), the checks whose failures roll
it back early (``rollback_if``), how many failed rounds out of how many roll back
(``failure_limit``), optional human approval, and the bake period after promotion.

Metrics:

* ``error_rate``: failed requests / requests, per version (the gateway records a
  canary's failures under its version). Against the champion: Fisher's exact test
  of the two proportions (one-sided, canary worse), failing when significant at
  ``alpha`` and the difference exceeds ``margin`` (default 0).
* ``latency_p99``: the 99th percentile of request latency (ms). Against the champion:
  the ratio of the two p99s must stay within ``margin`` (default 1.2); a higher ratio
  fails when the Mann-Whitney U test says the canary's latencies are larger
  (one-sided, ``alpha``), and is inconclusive otherwise.
* ``prediction_drift``: the monitoring layer's drift test between the two versions'
  outputs over the same minutes; drifted fails.
* a model metric (``roc_auc``, ``accuracy``, ``log_loss``, ``mae``…): realised quality
  once labels arrived for at least ``min_requests`` predictions of each version, else
  the confidence-based estimate (binary classifiers), else inconclusive. Against the
  champion it may be worse by at most ``margin`` (default 0.01).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from strataml.errors import ConfigError

Outcome = Literal["pass", "fail", "inconclusive"]
TRAFFIC_METRICS = ("error_rate", "latency_p99", "prediction_drift")
_DEFAULT_MARGIN = {"error_rate": 0.0, "latency_p99": 1.2, "prediction_drift": 0.0}
_QUALITY_MARGIN = 0.01
_LIMIT = re.compile(r"^\s*(\d+)\s*(?:of|/)\s*(\d+)\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(value: str | int | float, what: str, *, zero: bool = False) -> float:
    """Seconds in ``"30m"``, ``"2s"``, ``"1h"`` (or a number of seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        out = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ConfigError(f"{what} {value!r} is not a duration", hint="write a whole number and a unit: 2s, 5m, 1h, 1d")
        out = float(m.group(1)) * _UNIT[m.group(2)]
    if out < 0 or (out == 0 and not zero):
        raise ConfigError(f"{what} must be {'zero or more' if zero else 'positive'}, got {value!r}")
    return out


def _is_quality(metric: str) -> bool:
    from strataml.models import METRICS

    return metric in METRICS


@dataclass(frozen=True)
class Check:
    """One analysis rule: a metric, compared with the champion (``vs="champion"``) and/or
    held to a threshold (``max``/``min`` on the canary's own value).

    ``margin`` is how much worse than the champion the canary may be: an absolute rise
    of the error rate (default 0), a ratio of p99 latencies (default 1.2), an absolute
    drop of a quality metric (default 0.01). ``alpha`` is the tests' significance level;
    ``min_requests`` the requests (or, for quality, labelled predictions) each version
    needs before the check can pass or fail.
    """

    metric: str
    vs: Literal["champion"] | None = "champion"
    max: float | None = None
    min: float | None = None
    margin: float | None = None
    alpha: float = 0.05
    min_requests: int = 100

    def __post_init__(self) -> None:
        if self.metric not in TRAFFIC_METRICS and not _is_quality(self.metric):
            from strataml.models import METRICS

            raise ConfigError(f"check metric {self.metric!r} is unknown",
                              hint=f"use {', '.join(TRAFFIC_METRICS)} or a model metric ({', '.join(sorted(METRICS))})")
        if self.vs not in ("champion", None):
            raise ConfigError(f"check {self.metric}: vs={self.vs!r} must be 'champion' or None (a threshold only)")
        if self.vs is None and self.max is None and self.min is None:
            raise ConfigError(f"check {self.metric} compares with nothing", hint="give vs='champion', max= or min=")
        if self.metric == "prediction_drift" and self.vs != "champion":
            raise ConfigError("check prediction_drift compares the canary's outputs with the champion's", hint="keep vs='champion'")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"check {self.metric}: alpha {self.alpha} must be between 0 and 1")
        if self.min_requests < 1:
            raise ConfigError(f"check {self.metric}: min_requests must be at least 1")
        if self.margin is not None and self.margin < 0:
            raise ConfigError(f"check {self.metric}: margin must be >= 0")

    @property
    def name(self) -> str:
        """A readable label: ``error_rate vs champion``, ``latency_p99 <= 250``."""
        parts = []
        if self.vs:
            parts.append(f"vs champion (margin {self.effective_margin:g})")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        return f"{self.metric} " + ", ".join(parts)

    @property
    def effective_margin(self) -> float:
        """The margin given, or the metric's default."""
        if self.margin is not None:
            return float(self.margin)
        return _DEFAULT_MARGIN.get(self.metric, _QUALITY_MARGIN)

    def to_dict(self) -> dict[str, Any]:
        """The rule as plain data."""
        return {"metric": self.metric, "vs": self.vs, "max": self.max, "min": self.min, "margin": self.margin,
                "alpha": self.alpha, "min_requests": self.min_requests}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        """The rule from :meth:`to_dict`."""
        return cls(**{k: d[k] for k in ("metric", "vs", "max", "min", "margin", "alpha", "min_requests") if k in d})


@dataclass
class CheckResult:
    """What one check saw and concluded."""

    check: str
    metric: str
    outcome: Outcome
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"check": self.check, "metric": self.metric, "outcome": self.outcome, "reason": self.reason, "figures": self.figures}


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), digits)


@dataclass
class Observation:
    """What the canary and the champion did over the same span.

    ``requests``/``errors`` per version; ``latencies`` per version (one per request, ms);
    ``drift``: the prediction part of a drift report between the versions (or None);
    ``quality``: per version, ``{"labelled", "predictions", metric: value…, "estimated": {…}}``.
    """

    champion: int | None
    canary: int
    requests: dict[int, int] = field(default_factory=dict)
    errors: dict[int, int] = field(default_factory=dict)
    latencies: dict[int, np.ndarray] = field(default_factory=dict)
    drift: dict[str, Any] | None = None
    quality: dict[int, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Per-version figures for the timeline and the dashboard."""
        out: dict[str, Any] = {}
        for role, v in (("champion", self.champion), ("canary", self.canary)):
            if v is None:
                continue
            lat = self.latencies.get(v)
            req, err = self.requests.get(v, 0), self.errors.get(v, 0)
            out[role] = {
                "version": v, "requests": req, "errors": err, "error_rate": _r(err / (req + err)) if req + err else None,
                "p99_ms": _r(float(np.quantile(lat, 0.99)), 3) if lat is not None and len(lat) else None,
            }
        return out


def check_error_rate(check: Check, obs: Observation) -> CheckResult:
    """The error-rate rule (see the module docstring)."""
    c = obs.canary
    nc, ec = obs.requests.get(c, 0) + obs.errors.get(c, 0), obs.errors.get(c, 0)
    figures: dict[str, Any] = {"canary_requests": nc, "canary_errors": ec, "canary_rate": _r(ec / nc) if nc else None}
    if nc < check.min_requests:
        return CheckResult(check.name, check.metric, "inconclusive", f"the canary has {nc} requests, fewer than {check.min_requests}", figures)
    rate = ec / nc
    if check.max is not None and rate > check.max:
        return CheckResult(check.name, check.metric, "fail", f"canary error rate {rate:.4f} is above {check.max:g}", figures)
    if check.min is not None and rate < check.min:
        return CheckResult(check.name, check.metric, "fail", f"canary error rate {rate:.4f} is below {check.min:g}", figures)
    if check.vs == "champion":
        b = obs.champion
        nb = obs.requests.get(b, 0) + obs.errors.get(b, 0) if b is not None else 0
        eb = obs.errors.get(b, 0) if b is not None else 0
        figures.update(champion_requests=nb, champion_errors=eb, champion_rate=_r(eb / nb) if nb else None)
        if nb < check.min_requests:
            return CheckResult(check.name, check.metric, "inconclusive", f"the champion has {nb} requests, fewer than {check.min_requests}", figures)
        from scipy.stats import fisher_exact

        p = float(fisher_exact([[ec, nc - ec], [eb, nb - eb]], alternative="greater")[1])
        diff = rate - eb / nb
        figures.update(p_value=_r(p), difference=_r(diff), test="fisher_exact (one-sided)")
        if p < check.alpha and diff > check.effective_margin:
            return CheckResult(check.name, check.metric, "fail",
                               f"canary error rate {rate:.4f} vs champion {eb / nb:.4f}: higher (p={p:.3g} < {check.alpha:g})", figures)
        return CheckResult(check.name, check.metric, "pass", f"canary error rate {rate:.4f} vs champion {eb / nb:.4f} (p={p:.3g})", figures)
    return CheckResult(check.name, check.metric, "pass", f"canary error rate {rate:.4f} within its threshold", figures)


def check_latency(check: Check, obs: Observation) -> CheckResult:
    """The p99-latency rule (see the module docstring)."""
    lc = obs.latencies.get(obs.canary, np.empty(0))
    figures: dict[str, Any] = {"canary_requests": len(lc)}
    if len(lc) < check.min_requests:
        return CheckResult(check.name, check.metric, "inconclusive", f"the canary has {len(lc)} timed requests, fewer than {check.min_requests}", figures)
    p99c = float(np.quantile(lc, 0.99))
    figures["canary_p99_ms"] = _r(p99c, 3)
    if check.max is not None and p99c > check.max:
        return CheckResult(check.name, check.metric, "fail", f"canary p99 {p99c:.1f} ms is above {check.max:g} ms", figures)
    if check.min is not None and p99c < check.min:
        return CheckResult(check.name, check.metric, "fail", f"canary p99 {p99c:.1f} ms is below {check.min:g} ms", figures)
    if check.vs != "champion":
        return CheckResult(check.name, check.metric, "pass", f"canary p99 {p99c:.1f} ms within its threshold", figures)
    lb = obs.latencies.get(obs.champion, np.empty(0)) if obs.champion is not None else np.empty(0)
    figures["champion_requests"] = len(lb)
    if len(lb) < check.min_requests:
        return CheckResult(check.name, check.metric, "inconclusive", f"the champion has {len(lb)} timed requests, fewer than {check.min_requests}", figures)
    from scipy.stats import mannwhitneyu

    p99b = float(np.quantile(lb, 0.99))
    ratio = p99c / p99b if p99b > 0 else math.inf
    p = float(mannwhitneyu(lc, lb, alternative="greater").pvalue)
    figures.update(champion_p99_ms=_r(p99b, 3), ratio=_r(ratio, 4), p_value=_r(p), test="mann_whitney_u (one-sided)")
    seen = f"canary p99 {p99c:.1f} ms vs champion {p99b:.1f} ms (ratio {ratio:.2f}, margin {check.effective_margin:g})"
    if ratio <= check.effective_margin:
        return CheckResult(check.name, check.metric, "pass", seen, figures)
    if p < check.alpha:
        return CheckResult(check.name, check.metric, "fail", f"{seen}: slower (p={p:.3g} < {check.alpha:g})", figures)
    return CheckResult(check.name, check.metric, "inconclusive", f"{seen}: above the margin but not significant (p={p:.3g})", figures)


def check_drift(check: Check, obs: Observation) -> CheckResult:
    """The prediction-drift rule: the two versions' outputs compared over the same minutes."""
    d = obs.drift
    if d is None or d.get("p_value") is None:
        why = (d or {}).get("reason") or "no predictions to compare"
        return CheckResult(check.name, check.metric, "inconclusive", f"prediction drift not tested: {why}", dict(d or {}))
    figures = {k: _r(d.get(k)) if isinstance(d.get(k), float) else d.get(k) for k in ("test", "statistic", "p_value", "psi", "distance", "drifted")}
    seen = f"{d.get('test')} p={d['p_value']:.3g}, distance {d.get('distance') or 0:.3f}"
    if d.get("drifted"):
        return CheckResult(check.name, check.metric, "fail", f"the canary's predictions drifted from the champion's ({seen})", figures)
    return CheckResult(check.name, check.metric, "pass", f"no prediction drift between the versions ({seen})", figures)


def _quality_value(q: dict[str, Any], metric: str, need: int) -> tuple[float | None, str | None]:
    if q.get("labelled", 0) >= need and q.get(metric) is not None:
        return float(q[metric]), "realised"
    est = q.get("estimated") or {}
    if q.get("predictions", 0) >= need and est.get(metric) is not None:
        return float(est[metric]), "estimated"
    return None, None


def check_quality(check: Check, obs: Observation) -> CheckResult:
    """A model-metric rule: realised quality when labels arrived, else the estimate."""
    from strataml.models import higher_is_better

    m, need = check.metric, check.min_requests
    vc, src_c = _quality_value(obs.quality.get(obs.canary, {}), m, need)
    figures: dict[str, Any] = {"canary": _r(vc), "canary_source": src_c}
    if vc is None:
        return CheckResult(check.name, m, "inconclusive", f"no {m} for the canary yet (fewer than {need} labelled predictions and no estimate)", figures)
    better = higher_is_better(m)
    if check.max is not None and vc > check.max:
        return CheckResult(check.name, m, "fail", f"canary {m} {vc:.4f} ({src_c}) is above {check.max:g}", figures)
    if check.min is not None and vc < check.min:
        return CheckResult(check.name, m, "fail", f"canary {m} {vc:.4f} ({src_c}) is below {check.min:g}", figures)
    if check.vs != "champion":
        return CheckResult(check.name, m, "pass", f"canary {m} {vc:.4f} ({src_c}) within its threshold", figures)
    qb = obs.quality.get(obs.champion, {}) if obs.champion is not None else {}
    vb, src_b = _quality_value(qb, m, need)
    if vb is not None and src_b != src_c:  # compare like with like
        vb, src_b = (None, None) if src_c == "realised" else _quality_value({**qb, "labelled": 0}, m, need)
    figures.update(champion=_r(vb), champion_source=src_b)
    if vb is None:
        return CheckResult(check.name, m, "inconclusive", f"no {src_c} {m} for the champion over the same span", figures)
    worse = (vb - vc) if better else (vc - vb)
    figures["worse_by"] = _r(worse)
    seen = f"canary {m} {vc:.4f} vs champion {vb:.4f} ({src_c})"
    if worse > check.effective_margin:
        return CheckResult(check.name, m, "fail", f"{seen}: worse by {worse:.4f}, more than {check.effective_margin:g}", figures)
    return CheckResult(check.name, m, "pass", seen, figures)


def evaluate(check: Check, obs: Observation) -> CheckResult:
    """Run one check on an observation."""
    if check.metric == "error_rate":
        return check_error_rate(check, obs)
    if check.metric == "latency_p99":
        return check_latency(check, obs)
    if check.metric == "prediction_drift":
        return check_drift(check, obs)
    return check_quality(check, obs)


def parse_limit(value: int | str) -> tuple[int, int | None]:
    """``"2 of 5"`` → (2, 5): roll back when 2 of the last 5 rounds failed; ``3`` → (3, None): 3 failed rounds in all."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"failure_limit {value} must be at least 1")
        return value, None
    m = _LIMIT.match(str(value))
    if not m or int(m.group(1)) < 1 or int(m.group(1)) > int(m.group(2)):
        raise ConfigError(f"failure_limit {value!r} is not 'K of N'", hint="e.g. '2 of 5' (K failed rounds among the last N), or a number of failed rounds")
    return int(m.group(1)), int(m.group(2))


def _checks(value: Sequence[Check] | None, default: Sequence[Check], what: str) -> tuple[Check, ...]:
    if value is None:
        return tuple(default)
    out = tuple(value)
    for c in out:
        if not isinstance(c, Check):
            raise ConfigError(f"{what} takes st.Check rules, got {c!r}", hint="e.g. st.Check('error_rate', vs='champion')")
    return out


DEFAULT_PROMOTE = (Check("error_rate"), Check("latency_p99"))
DEFAULT_ROLLBACK = (Check("error_rate", vs=None, max=0.05, min_requests=20),)


@dataclass(frozen=True, init=False)
class Canary:
    """How a challenger is tried on live traffic before it replaces the champion.

    ``weight`` of the traffic (sticky per entity) goes to the canary for ``watch``;
    every ``interval`` the checks run on both versions' traffic since the canary
    started. ``rollback_if`` checks that fail in ``failure_limit`` rounds (``"2 of 3"``:
    two of the last three) roll the canary back at once. When the watch ends, every
    ``promote_if`` check must pass: a fail rolls back, an inconclusive check extends
    the watch by one interval up to ``max_watch`` (default three watches), after which
    the canary is rolled back, never promoted. With ``approval`` a passing canary
    waits for ``strata models approve NAME@V`` up to ``approval_timeout``, then rolls
    back. After promotion the previous champion keeps the alias ``previous`` for
    ``bake``; during the bake a failing ``rollback_if`` threshold moves the champion
    back to it (a pointer move). ``labels`` is the dataset for realised quality
    (default: the model's labels).
    """

    weight: float
    watch: str
    interval: str
    max_watch: str | None
    promote_if: tuple[Check, ...]
    rollback_if: tuple[Check, ...]
    failure_limit: int | str
    approval: bool
    approval_timeout: str
    bake: str
    labels: str | None

    def __init__(
        self, weight: float = 0.1, watch: str = "30m", *, interval: str = "1m", max_watch: str | None = None,
        promote_if: Sequence[Check] | None = None, rollback_if: Sequence[Check] | None = None,
        failure_limit: int | str = "2 of 3", approval: bool = False, approval_timeout: str = "24h", bake: str = "1h",
        labels: str | None = None,
    ) -> None:
        if not isinstance(weight, int | float) or not 0 < float(weight) <= 1:
            raise ConfigError(f"canary weight {weight!r} must be above 0 and at most 1", hint="e.g. weight=0.1 sends a tenth of the traffic")
        values = {
            "weight": float(weight), "watch": watch, "interval": interval, "max_watch": max_watch,
            "promote_if": _checks(promote_if, DEFAULT_PROMOTE, "promote_if"),
            "rollback_if": _checks(rollback_if, DEFAULT_ROLLBACK, "rollback_if"),
            "failure_limit": failure_limit, "approval": bool(approval), "approval_timeout": approval_timeout, "bake": bake, "labels": labels,
        }
        for k, v in values.items():
            object.__setattr__(self, k, v)
        if not values["promote_if"]:
            raise ConfigError("a canary with no promote_if check would be promoted on no evidence",
                              hint="keep the defaults or name at least one st.Check, e.g. st.Check('error_rate')")
        watch_s, interval_s = seconds(watch, "canary watch"), seconds(interval, "canary interval")
        if interval_s > watch_s:
            raise ConfigError(f"canary interval {interval} is longer than its watch {watch}")
        if max_watch is not None and seconds(max_watch, "canary max_watch") < watch_s:
            raise ConfigError(f"canary max_watch {max_watch} is shorter than its watch {watch}")
        seconds(approval_timeout, "approval_timeout")
        seconds(bake, "canary bake", zero=True)
        parse_limit(failure_limit)

    @property
    def watch_s(self) -> float:
        """The watch in seconds."""
        return seconds(self.watch, "canary watch")

    @property
    def interval_s(self) -> float:
        """The interval between rounds of checks, in seconds."""
        return seconds(self.interval, "canary interval")

    @property
    def max_watch_s(self) -> float:
        """The longest the watch may be extended to, in seconds."""
        return seconds(self.max_watch, "canary max_watch") if self.max_watch else 3 * self.watch_s

    def to_dict(self) -> dict[str, Any]:
        """The rules as plain data (stored with the loop's state)."""
        return {
            "weight": self.weight, "watch": self.watch, "interval": self.interval, "max_watch": self.max_watch,
            "promote_if": [c.to_dict() for c in self.promote_if], "rollback_if": [c.to_dict() for c in self.rollback_if],
            "failure_limit": self.failure_limit, "approval": self.approval, "approval_timeout": self.approval_timeout,
            "bake": self.bake, "labels": self.labels,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Canary:
        """The rules from :meth:`to_dict`."""
        kw = dict(d)
        kw["promote_if"] = [Check.from_dict(c) for c in kw.get("promote_if", [])]
        kw["rollback_if"] = [Check.from_dict(c) for c in kw.get("rollback_if", [])]
        return cls(**kw)

    def needs(self) -> set[str]:
        """The metrics the checks read."""
        return {c.metric for c in (*self.promote_if, *self.rollback_if)}


def failed_rounds(rounds: Sequence[Mapping[str, Any]], limit: int | str) -> tuple[bool, int, int]:
    """Whether the ``rollback_if`` failures reach ``limit``: (reached, failed rounds counted, rounds counted)."""
    k, n = parse_limit(limit)
    window = list(rounds) if n is None else list(rounds)[-n:]
    failed = sum(1 for r in window if any(x["outcome"] == "fail" for x in r.get("rollback_if", [])))
    return failed >= k, failed, len(window)
