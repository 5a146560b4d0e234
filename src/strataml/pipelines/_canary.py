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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from strataml.errors import ConfigError
from strataml.spine import parse_duration

Outcome = Literal["pass", "fail", "inconclusive"]
TRAFFIC_METRICS = ("error_rate", "latency_p99", "prediction_drift")
_DEFAULT_MARGIN = {"error_rate": 0.0, "latency_p99": 1.2, "prediction_drift": 0.0}
_QUALITY_MARGIN = 0.01
_LIMIT = re.compile(r"^\s*(\d+)\s*(?:of|/)\s*(\d+)\s*$")


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

            raise ConfigError(
                f"check metric {self.metric!r} is unknown",
                hint=f"use {', '.join(TRAFFIC_METRICS)} or a model metric ({', '.join(sorted(METRICS))})",
            )
        if self.vs not in ("champion", None):
            raise ConfigError(
                f"check {self.metric}: vs={self.vs!r} must be 'champion' or None (a threshold only)"
            )
        if self.vs is None and self.max is None and self.min is None:
            raise ConfigError(
                f"check {self.metric} compares with nothing",
                hint="give vs='champion', max= or min=",
            )
        if self.metric == "prediction_drift" and self.vs != "champion":
            raise ConfigError(
                "check prediction_drift compares the canary's outputs with the champion's",
                hint="keep vs='champion'",
            )
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
        return {
            "metric": self.metric,
            "vs": self.vs,
            "max": self.max,
            "min": self.min,
            "margin": self.margin,
            "alpha": self.alpha,
            "min_requests": self.min_requests,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        """The rule from :meth:`to_dict`."""
        return cls(
            **{
                k: d[k]
                for k in ("metric", "vs", "max", "min", "margin", "alpha", "min_requests")
                if k in d
            }
        )


def parse_limit(value: int | str) -> tuple[int, int | None]:
    """``"2 of 5"`` → (2, 5): roll back when 2 of the last 5 rounds failed; ``3`` → (3, None): 3 failed rounds in all."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"failure_limit {value} must be at least 1")
        return value, None
    m = _LIMIT.match(str(value))
    if not m or int(m.group(1)) < 1 or int(m.group(1)) > int(m.group(2)):
        raise ConfigError(
            f"failure_limit {value!r} is not 'K of N'",
            hint="e.g. '2 of 5' (K failed rounds among the last N), or a number of failed rounds",
        )
    return int(m.group(1)), int(m.group(2))


def _checks(
    value: Sequence[Check] | None, default: Sequence[Check], what: str
) -> tuple[Check, ...]:
    if value is None:
        return tuple(default)
    out = tuple(value)
    for c in out:
        if not isinstance(c, Check):
            raise ConfigError(
                f"{what} takes st.Check rules, got {c!r}",
                hint="e.g. st.Check('error_rate', vs='champion')",
            )
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
        self,
        weight: float = 0.1,
        watch: str = "30m",
        *,
        interval: str = "1m",
        max_watch: str | None = None,
        promote_if: Sequence[Check] | None = None,
        rollback_if: Sequence[Check] | None = None,
        failure_limit: int | str = "2 of 3",
        approval: bool = False,
        approval_timeout: str = "24h",
        bake: str = "1h",
        labels: str | None = None,
    ) -> None:
        if not isinstance(weight, int | float) or not 0 < float(weight) <= 1:
            raise ConfigError(
                f"canary weight {weight!r} must be above 0 and at most 1",
                hint="e.g. weight=0.1 sends a tenth of the traffic",
            )
        values = {
            "weight": float(weight),
            "watch": watch,
            "interval": interval,
            "max_watch": max_watch,
            "promote_if": _checks(promote_if, DEFAULT_PROMOTE, "promote_if"),
            "rollback_if": _checks(rollback_if, DEFAULT_ROLLBACK, "rollback_if"),
            "failure_limit": failure_limit,
            "approval": bool(approval),
            "approval_timeout": approval_timeout,
            "bake": bake,
            "labels": labels,
        }
        for k, v in values.items():
            object.__setattr__(self, k, v)
        if not values["promote_if"]:
            raise ConfigError(
                "a canary with no promote_if check would be promoted on no evidence",
                hint="keep the defaults or name at least one st.Check, e.g. st.Check('error_rate')",
            )
        watch_s, interval_s = parse_duration(watch, "canary watch"), parse_duration(interval, "canary interval")
        if interval_s > watch_s:
            raise ConfigError(f"canary interval {interval} is longer than its watch {watch}")
        if max_watch is not None and parse_duration(max_watch, "canary max_watch") < watch_s:
            raise ConfigError(f"canary max_watch {max_watch} is shorter than its watch {watch}")
        parse_duration(approval_timeout, "approval_timeout")
        parse_duration(bake, "canary bake", zero=True)
        parse_limit(failure_limit)

    @property
    def watch_s(self) -> float:
        """The watch in seconds."""
        return parse_duration(self.watch, "canary watch")

    @property
    def interval_s(self) -> float:
        """The interval between rounds of checks, in seconds."""
        return parse_duration(self.interval, "canary interval")

    @property
    def max_watch_s(self) -> float:
        """The longest the watch may be extended to, in seconds."""
        return parse_duration(self.max_watch, "canary max_watch") if self.max_watch else 3 * self.watch_s

    @property
    def approval_timeout_s(self) -> float:
        """How long a passing canary waits for approval, in seconds."""
        return parse_duration(self.approval_timeout, "approval_timeout")

    @property
    def bake_s(self) -> float:
        """How long the previous champion is kept after a promotion, in seconds (0: not kept)."""
        return parse_duration(self.bake, "canary bake", zero=True)

    def to_dict(self) -> dict[str, Any]:
        """The rules as plain data (stored with the loop's state)."""
        return {
            "weight": self.weight,
            "watch": self.watch,
            "interval": self.interval,
            "max_watch": self.max_watch,
            "promote_if": [c.to_dict() for c in self.promote_if],
            "rollback_if": [c.to_dict() for c in self.rollback_if],
            "failure_limit": self.failure_limit,
            "approval": self.approval,
            "approval_timeout": self.approval_timeout,
            "bake": self.bake,
            "labels": self.labels,
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
