"""The checks a canary's rules make, on what the two versions did over the same span.

Each returns a :class:`CheckResult`: ``pass``, ``fail`` or ``inconclusive``, with the
reason in words and the figures it saw (see :mod:`._canary` for the rules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from strataml.pipelines._canary import Check, Outcome


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
        return {
            "check": self.check,
            "metric": self.metric,
            "outcome": self.outcome,
            "reason": self.reason,
            "figures": self.figures,
        }


def _r(x: float | None, digits: int = 6) -> float | None:
    return (
        None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), digits)
    )


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
                "version": v,
                "requests": req,
                "errors": err,
                "error_rate": _r(err / (req + err)) if req + err else None,
                "p99_ms": _r(float(np.quantile(lat, 0.99)), 3)
                if lat is not None and len(lat)
                else None,
            }
        return out


def _outside(
    check: Check, metric: str, value: float, shown: str, figures: dict[str, Any], unit: str = ""
) -> CheckResult | None:
    """A failed result when ``value`` is past the check's own ``max`` or ``min`` (``shown``
    names it in the reason), else None."""
    if check.max is not None and value > check.max:
        return CheckResult(check.name, metric, "fail", f"{shown} is above {check.max:g}{unit}", figures)
    if check.min is not None and value < check.min:
        return CheckResult(check.name, metric, "fail", f"{shown} is below {check.min:g}{unit}", figures)
    return None


def check_error_rate(check: Check, obs: Observation) -> CheckResult:
    """The error-rate rule (see the module docstring)."""
    c = obs.canary
    nc, ec = obs.requests.get(c, 0) + obs.errors.get(c, 0), obs.errors.get(c, 0)
    figures: dict[str, Any] = {
        "canary_requests": nc,
        "canary_errors": ec,
        "canary_rate": _r(ec / nc) if nc else None,
    }
    if nc < check.min_requests:
        return CheckResult(
            check.name,
            check.metric,
            "inconclusive",
            f"the canary has {nc} requests, fewer than {check.min_requests}",
            figures,
        )
    rate = ec / nc
    if (outside := _outside(check, check.metric, rate, f"canary error rate {rate:.4f}", figures)) is not None:
        return outside
    if check.vs == "champion":
        b = obs.champion
        nb = obs.requests.get(b, 0) + obs.errors.get(b, 0) if b is not None else 0
        eb = obs.errors.get(b, 0) if b is not None else 0
        figures.update(
            champion_requests=nb, champion_errors=eb, champion_rate=_r(eb / nb) if nb else None
        )
        if nb < check.min_requests:
            return CheckResult(
                check.name,
                check.metric,
                "inconclusive",
                f"the champion has {nb} requests, fewer than {check.min_requests}",
                figures,
            )
        from scipy.stats import fisher_exact

        p = float(fisher_exact([[ec, nc - ec], [eb, nb - eb]], alternative="greater")[1])
        diff = rate - eb / nb
        figures.update(p_value=_r(p), difference=_r(diff), test="fisher_exact (one-sided)")
        if p < check.alpha and diff > check.effective_margin:
            return CheckResult(
                check.name,
                check.metric,
                "fail",
                f"canary error rate {rate:.4f} vs champion {eb / nb:.4f}: higher (p={p:.3g} < {check.alpha:g})",
                figures,
            )
        return CheckResult(
            check.name,
            check.metric,
            "pass",
            f"canary error rate {rate:.4f} vs champion {eb / nb:.4f} (p={p:.3g})",
            figures,
        )
    return CheckResult(
        check.name,
        check.metric,
        "pass",
        f"canary error rate {rate:.4f} within its threshold",
        figures,
    )


def check_latency(check: Check, obs: Observation) -> CheckResult:
    """The p99-latency rule (see the module docstring)."""
    lc = obs.latencies.get(obs.canary, np.empty(0))
    figures: dict[str, Any] = {"canary_requests": len(lc)}
    if len(lc) < check.min_requests:
        return CheckResult(
            check.name,
            check.metric,
            "inconclusive",
            f"the canary has {len(lc)} timed requests, fewer than {check.min_requests}",
            figures,
        )
    p99c = float(np.quantile(lc, 0.99))
    figures["canary_p99_ms"] = _r(p99c, 3)
    if (outside := _outside(check, check.metric, p99c, f"canary p99 {p99c:.1f} ms", figures, " ms")) is not None:
        return outside
    if check.vs != "champion":
        return CheckResult(
            check.name,
            check.metric,
            "pass",
            f"canary p99 {p99c:.1f} ms within its threshold",
            figures,
        )
    lb = obs.latencies.get(obs.champion, np.empty(0)) if obs.champion is not None else np.empty(0)
    figures["champion_requests"] = len(lb)
    if len(lb) < check.min_requests:
        return CheckResult(
            check.name,
            check.metric,
            "inconclusive",
            f"the champion has {len(lb)} timed requests, fewer than {check.min_requests}",
            figures,
        )
    from scipy.stats import mannwhitneyu

    p99b = float(np.quantile(lb, 0.99))
    ratio = p99c / p99b if p99b > 0 else math.inf
    p = float(mannwhitneyu(lc, lb, alternative="greater").pvalue)
    figures.update(
        champion_p99_ms=_r(p99b, 3),
        ratio=_r(ratio, 4),
        p_value=_r(p),
        test="mann_whitney_u (one-sided)",
    )
    seen = f"canary p99 {p99c:.1f} ms vs champion {p99b:.1f} ms (ratio {ratio:.2f}, margin {check.effective_margin:g})"
    if ratio <= check.effective_margin:
        return CheckResult(check.name, check.metric, "pass", seen, figures)
    if p < check.alpha:
        return CheckResult(
            check.name,
            check.metric,
            "fail",
            f"{seen}: slower (p={p:.3g} < {check.alpha:g})",
            figures,
        )
    return CheckResult(
        check.name,
        check.metric,
        "inconclusive",
        f"{seen}: above the margin but not significant (p={p:.3g})",
        figures,
    )


def check_drift(check: Check, obs: Observation) -> CheckResult:
    """The prediction-drift rule: the two versions' outputs compared over the same minutes."""
    d = obs.drift
    if d is None or d.get("p_value") is None:
        why = (d or {}).get("reason") or "no predictions to compare"
        return CheckResult(
            check.name,
            check.metric,
            "inconclusive",
            f"prediction drift not tested: {why}",
            dict(d or {}),
        )
    figures = {
        k: _r(d.get(k)) if isinstance(d.get(k), float) else d.get(k)
        for k in ("test", "statistic", "p_value", "psi", "distance", "drifted")
    }
    seen = f"{d.get('test')} p={d['p_value']:.3g}, distance {d.get('distance') or 0:.3f}"
    if d.get("drifted"):
        return CheckResult(
            check.name,
            check.metric,
            "fail",
            f"the canary's predictions drifted from the champion's ({seen})",
            figures,
        )
    return CheckResult(
        check.name,
        check.metric,
        "pass",
        f"no prediction drift between the versions ({seen})",
        figures,
    )


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
        return CheckResult(
            check.name,
            m,
            "inconclusive",
            f"no {m} for the canary yet (fewer than {need} labelled predictions and no estimate)",
            figures,
        )
    better = higher_is_better(m)
    if (outside := _outside(check, m, vc, f"canary {m} {vc:.4f} ({src_c})", figures)) is not None:
        return outside
    if check.vs != "champion":
        return CheckResult(
            check.name, m, "pass", f"canary {m} {vc:.4f} ({src_c}) within its threshold", figures
        )
    qb = obs.quality.get(obs.champion, {}) if obs.champion is not None else {}
    vb, src_b = _quality_value(qb, m, need)
    if vb is not None and src_b != src_c:  # compare like with like
        vb, src_b = (
            (None, None) if src_c == "realised" else _quality_value({**qb, "labelled": 0}, m, need)
        )
    figures.update(champion=_r(vb), champion_source=src_b)
    if vb is None:
        return CheckResult(
            check.name,
            m,
            "inconclusive",
            f"no {src_c} {m} for the champion over the same span",
            figures,
        )
    worse = (vb - vc) if better else (vc - vb)
    figures["worse_by"] = _r(worse)
    seen = f"canary {m} {vc:.4f} vs champion {vb:.4f} ({src_c})"
    if worse > check.effective_margin:
        return CheckResult(
            check.name,
            m,
            "fail",
            f"{seen}: worse by {worse:.4f}, more than {check.effective_margin:g}",
            figures,
        )
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
