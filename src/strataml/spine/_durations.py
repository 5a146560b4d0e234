"""Durations as users write them: ``"500ms"``, ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"``.

One parser for every layer (feature windows, monitoring windows, canary watches, step
timeouts, schedules), so a duration means the same wherever it is written.
"""

from __future__ import annotations

import datetime as dt
import re

from strataml.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: str | float | dt.timedelta, what: str = "duration", *, zero: bool = False) -> float:
    """Seconds in a duration: a string with a unit, a number of seconds or a ``timedelta``.

    Raises :class:`ConfigError` naming ``what`` for anything else, and for a negative
    duration (or zero, unless ``zero``)."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.fullmatch(value) if isinstance(value, str) else None
        if not m:
            raise ConfigError(
                f"{what} {value!r} is not a duration",
                hint="write a number followed by a unit: ms, s, m, h, d or w (e.g. '90s', '15m', '24h', '7d')",
            )
        seconds = float(m[1]) * _UNITS[m[2]]
    if seconds < 0 or (seconds == 0 and not zero):
        raise ConfigError(f"{what} {value!r} must be longer than zero" if not zero else f"{what} {value!r} must not be negative")
    return seconds
