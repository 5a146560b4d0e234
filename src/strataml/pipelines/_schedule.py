"""Schedules: when a pipeline runs by the clock, as pure functions of time.

A :class:`Schedule` is either a cron expression read in a time zone or a fixed interval:

- ``Schedule("30 2 * * *", tz="Europe/Berlin")``: five fields (minute hour day month
  weekday) or six with **seconds first** (``"*/10 * * * * *"`` every ten seconds), or a
  croniter nickname (``@hourly``, ``@daily``...). Cron fields are *wall-clock* times in
  ``tz`` (default UTC).
- ``Schedule(every="30s")``: every 30 seconds of elapsed time, on the multiples of the
  interval since the Unix epoch (``every="1h"`` ticks on the hour, UTC). Intervals ignore
  time zones and daylight saving.

**Daylight saving.** A cron tick whose wall-clock time does not exist (it falls in the
hour skipped when clocks go forward) runs at the first valid instant after the gap:
``30 2 * * *`` in Europe/Berlin runs at 03:00 CEST on the last Sunday of March. Several
ticks that land on the same instant this way run once. A wall-clock time that occurs
twice (clocks go back) runs once, at its first occurrence: ``30 2 * * *`` in Berlin runs
at 02:30 CEST (00:30 UTC) on the last Sunday of October, not again an hour later. So a
daily job runs exactly once on both change days; an hourly cron job runs 23 times on the
short day and 24 on the long one (the repeated hour is not run twice). Jobs that must
follow elapsed time use ``every=`` or ``tz="UTC"``.

croniter only iterates naive wall-clock times here; the mapping of each wall-clock time
to an instant (and the rules above) is done by this module with :mod:`zoneinfo`.

**Catch-up.** A tick is *missed* when it fell due more than ``grace`` before the
scheduler took charge of the schedule (it was not running, or another scheduler holding
the schedule died). ``catchup`` chooses what happens to missed ticks: ``"none"`` (the
default) runs none of them, ``"latest"`` runs only the most recent one, ``"all"`` runs
the most recent ``max_catchup`` of them (older ones are skipped). Ticks that fall due
while the scheduler is in charge always run, however late it notices them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from strataml.errors import ConfigError
from strataml.spine import parse_duration

UTC = dt.UTC
CatchUp = Literal["none", "latest", "all"]
_CATCHUP = ("none", "latest", "all")


def _aware(t: dt.datetime, what: str = "time") -> dt.datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ConfigError(
            f"{what} {t.isoformat()} has no time zone",
            hint="pass an aware datetime (e.g. datetime.now(UTC))",
        )
    return t.astimezone(UTC)


@dataclass(frozen=True)
class TickPlan:
    """What to do with the ticks due since a cursor: which to run, which were skipped."""

    run: list[dt.datetime]
    """Ticks to run now, oldest first (UTC)."""
    cursor: dt.datetime
    """The new cursor: every tick at or before it is handled (run or skipped)."""
    skipped_from: dt.datetime | None = None
    """When ticks were skipped: the cursor they were skipped after (exclusive)."""
    skipped_until: dt.datetime | None = None
    """When ticks were skipped: the last instant up to which they were skipped (inclusive)."""


@dataclass(frozen=True)
class Schedule:
    """When a pipeline runs by the clock (see the module docstring for the rules).

    ``cron`` or ``every`` (exactly one), ``tz`` (an IANA zone name, for cron), ``catchup``
    (``"none"``, ``"latest"`` or ``"all"``), ``max_catchup`` (the cap for ``"all"``),
    ``grace`` (how late a tick may be noticed and still count as on time) and ``params``
    (passed to every run this schedule starts).
    """

    cron: str | None = None
    every: str | int | float | dt.timedelta | None = None
    tz: str = "UTC"
    catchup: CatchUp = "none"
    max_catchup: int = 100
    grace: str | int | float | dt.timedelta = "60s"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ConfigError(
                "a schedule needs exactly one of cron= or every=",
                hint="write Schedule('30 2 * * *', tz='Europe/Berlin') or Schedule(every='30s')",
            )
        if self.catchup not in _CATCHUP:
            raise ConfigError(
                f"unknown catchup policy {self.catchup!r}", hint="use 'none', 'latest' or 'all'"
            )
        if not isinstance(self.max_catchup, int) or self.max_catchup < 1:
            raise ConfigError(
                f"max_catchup must be a positive whole number, not {self.max_catchup!r}",
                hint="e.g. max_catchup=10",
            )
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"unknown time zone {self.tz!r}",
                hint="use an IANA name such as 'Europe/Berlin' or 'UTC'",
            ) from exc
        if self.every is not None:
            if parse_duration(self.every, "every", zero=True) <= 0:
                raise ConfigError(
                    f"every={self.every!r} must be longer than zero", hint="write e.g. every='30s'"
                )
        else:
            self._check_cron(str(self.cron))
        parse_duration(self.grace, "grace", zero=True)

    @staticmethod
    def _check_cron(expr: str) -> None:
        from croniter import croniter

        fields = expr.split()
        six = len(fields) == 6
        if (
            not expr.strip()
            or len(fields) not in (1, 5, 6)
            or not croniter.is_valid(expr, second_at_beginning=six)
        ):
            raise ConfigError(
                f"invalid cron expression {expr!r}",
                hint="write five fields 'minute hour day month weekday' (e.g. '30 2 * * *'), six with seconds "
                "first (e.g. '*/10 * * * * *'), or @hourly/@daily/@weekly/@monthly",
            )

    @classmethod
    def parse(cls, value: str | Schedule) -> Schedule:
        """A schedule from a string: a cron expression, or ``every 30s`` (or just ``30s``)."""
        if isinstance(value, Schedule):
            return value
        if not isinstance(value, str):
            raise ConfigError(
                f"a schedule must be a Schedule or a string, not {type(value).__name__}"
            )
        text = value.strip()
        if text.startswith("every "):
            return cls(every=text[len("every ") :].strip())
        if len(text.split()) == 1 and not text.startswith("@"):
            return cls(every=text)
        return cls(cron=text)

    # --- identity and display -------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        """The time zone cron fields are read in."""
        return ZoneInfo(self.tz)

    @property
    def interval(self) -> float | None:
        """Seconds between ticks of an ``every=`` schedule (None for cron)."""
        return None if self.every is None else parse_duration(self.every, "every", zero=True)

    @property
    def grace_seconds(self) -> float:
        """How late a tick may be noticed and still run under any catch-up policy."""
        return parse_duration(self.grace, "grace", zero=True)

    def describe(self) -> str:
        """A short human description (``cron 30 2 * * * Europe/Berlin``, ``every 30s``)."""
        if self.every is not None:
            return (
                f"every {self.every}"
                if isinstance(self.every, str)
                else f"every {self.interval:g}s"
            )
        return f"cron {self.cron} {self.tz}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "cron": self.cron,
            "every": None if self.every is None else self.describe()[len("every ") :],
            "tz": self.tz,
            "catchup": self.catchup,
            "max_catchup": self.max_catchup,
            "grace_s": self.grace_seconds,
        }

    # --- the instants ---------------------------------------------------------------

    def wall_to_instant(self, wall: dt.datetime) -> dt.datetime:
        """The UTC instant a naive wall-clock time in ``tz`` runs at (the daylight-saving rule)."""
        zone = self.zone
        first = wall.replace(tzinfo=zone, fold=0)
        instant = first.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall:
            return instant  # exists (fold=0 is the first occurrence when it exists twice)
        # in a gap: fold=0 reads it with the offset before the change, fold=1 with the one
        # after; the change happened between those two instants (on a whole second)
        a = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
        lo, hi = sorted((math.floor(a.timestamp()), math.ceil(instant.timestamp())))
        after = dt.datetime.fromtimestamp(hi, UTC).astimezone(zone).utcoffset()
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if dt.datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == after:
                hi = mid
            else:
                lo = mid
        return dt.datetime.fromtimestamp(hi, UTC)

    def _cron(self, start_wall: dt.datetime, *, backwards: bool = False) -> Any:
        from croniter import croniter

        expr = str(self.cron)
        return croniter(
            expr, start_wall, is_prev=backwards, second_at_beginning=len(expr.split()) == 6
        )

    def _start_wall(self, t: dt.datetime) -> dt.datetime:
        # the wall-clock time from which later walls map to instants after ``t``: in the
        # second occurrence of a repeated hour, walls up to the end of the hour map earlier
        zone = self.zone
        wall = t.astimezone(zone).replace(tzinfo=None)
        offset = wall.replace(tzinfo=zone, fold=0).utcoffset() or dt.timedelta(0)
        return t.replace(tzinfo=None) + offset

    def next_after(self, t: dt.datetime) -> dt.datetime:
        """The first tick strictly after ``t`` (aware), in UTC."""
        t = _aware(t)
        step = self.interval
        if step is not None:
            epoch = t.timestamp()
            n = math.floor(epoch / step) + 1
            return dt.datetime.fromtimestamp(n * step, UTC)
        it = self._cron(self._start_wall(t))
        while True:
            instant = self.wall_to_instant(it.get_next(dt.datetime))
            if instant > t:
                return instant

    def ticks(
        self, after: dt.datetime, until: dt.datetime, limit: int | None = None
    ) -> list[dt.datetime]:
        """Ticks in ``(after, until]``, oldest first, at most ``limit`` (UTC)."""
        out: list[dt.datetime] = []
        t = _aware(after)
        until = _aware(until)
        while limit is None or len(out) < limit:
            t = self.next_after(t)
            if t > until:
                break
            out.append(t)
        return out

    def latest(self, after: dt.datetime, until: dt.datetime, n: int) -> list[dt.datetime]:
        """The last ``n`` ticks in ``(after, until]``, oldest first, without walking the rest."""
        after, until = _aware(after), _aware(until)
        step = self.interval
        out: list[dt.datetime] = []
        if step is not None:
            k = math.floor(until.timestamp() / step)
            while len(out) < n:
                tick = dt.datetime.fromtimestamp(k * step, UTC)
                if tick <= after:
                    break
                out.append(tick)
                k -= 1
            return out[::-1]
        # walk back in wall-clock time; walls map to instants in the same order (several
        # walls of a gap map to one instant, kept once)
        it = self._cron(self._start_wall(until) + dt.timedelta(microseconds=1), backwards=True)
        while len(out) < n:
            instant = self.wall_to_instant(it.get_prev(dt.datetime))
            if instant > until:
                continue
            if instant <= after:
                break
            if not out or instant < out[-1]:
                out.append(instant)
        return out[::-1]

    def plan(self, cursor: dt.datetime, since: dt.datetime, now: dt.datetime) -> TickPlan:
        """Which ticks to run now.

        ``cursor``: every tick at or before it is already handled. ``since``: when this
        scheduler took charge of the schedule (ticks due more than ``grace`` before it
        were missed). ``now``: the current time. Missed ticks follow ``catchup``; the
        others all run. Returns the ticks to run and the new cursor.
        """
        cursor, since, now = _aware(cursor, "cursor"), _aware(since, "since"), _aware(now, "now")
        boundary = min(since - dt.timedelta(seconds=self.grace_seconds), now)
        if boundary <= cursor:
            run = self.ticks(cursor, now)
            return TickPlan(run, run[-1] if run else cursor)
        keep = {"none": 0, "latest": 1, "all": self.max_catchup}[self.catchup]
        missed = self.latest(cursor, boundary, keep) if keep else []
        skipped_from = skipped_until = None
        first = self.next_after(cursor)
        if first <= boundary and (not missed or first < missed[0]):
            skipped_from = cursor
            skipped_until = missed[0] - dt.timedelta(microseconds=1) if missed else boundary
        run = missed + self.ticks(boundary, now)
        return TickPlan(
            run, max(run[-1], boundary) if run else boundary, skipped_from, skipped_until
        )
