"""Schedules as pure functions of time: cron in a zone across both daylight-saving change
days, intervals, catch-up policies, and refusals of bad input."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest

from strataml.errors import ConfigError
from strataml.pipelines import Schedule

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def local_day(tz: str, y: int, m: int, d: int) -> tuple[dt.datetime, dt.datetime]:
    """The instants of local midnight starting the day and the next day (UTC)."""
    zone = ZoneInfo(tz)
    start = dt.datetime(y, m, d, tzinfo=zone).astimezone(UTC)
    end = (dt.datetime(y, m, d) + dt.timedelta(days=1)).replace(tzinfo=zone).astimezone(UTC)
    return start - dt.timedelta(microseconds=1), end - dt.timedelta(microseconds=1)


# (zone, day clocks go forward, day clocks go back) in 2026
CHANGE_DAYS = [
    ("Europe/Berlin", (2026, 3, 29), (2026, 10, 25)),
    ("America/New_York", (2026, 3, 8), (2026, 11, 1)),
]


@pytest.mark.parametrize(("tz", "spring", "autumn"), CHANGE_DAYS)
def test_a_daily_0230_job_runs_once_on_both_change_days(
    tz: str, spring: tuple[int, int, int], autumn: tuple[int, int, int]
) -> None:
    s = Schedule("30 2 * * *", tz=tz)
    for day in (spring, autumn):
        ticks = s.ticks(*local_day(tz, *day))
        assert len(ticks) == 1, (tz, day, ticks)
    # and on the days around them too: one a day, 2:30 local whenever 2:30 exists
    start, _ = local_day(tz, spring[0], spring[1], spring[2] - 3)
    ticks = s.ticks(start, start + dt.timedelta(days=7))
    assert len(ticks) == 7
    for t in ticks:
        wall = t.astimezone(ZoneInfo(tz))
        assert (wall.hour, wall.minute) in {(2, 30), (3, 0)}


def test_a_time_in_the_spring_gap_runs_at_the_first_valid_instant_after() -> None:
    # Berlin: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 does not exist that day
    assert Schedule("30 2 * * *", tz="Europe/Berlin").ticks(
        *local_day("Europe/Berlin", 2026, 3, 29)
    ) == [utc(2026, 3, 29, 1)]
    # New York: 02:00 EST jumps to 03:00 EDT at 07:00 UTC
    assert Schedule("30 2 * * *", tz="America/New_York").ticks(
        *local_day("America/New_York", 2026, 3, 8)
    ) == [utc(2026, 3, 8, 7)]
    # every wall time of the skipped hour lands on 03:00 and runs once, with 03:00's own tick
    quarter = Schedule("*/15 * * * *", tz="Europe/Berlin").ticks(
        utc(2026, 3, 29, 0, 50), utc(2026, 3, 29, 1, 20)
    )
    assert quarter == [utc(2026, 3, 29, 0, 45) + dt.timedelta(minutes=15 * i) for i in range(1, 3)]


def test_a_time_in_the_autumn_overlap_runs_once_at_its_first_occurrence() -> None:
    # Berlin: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET): run at the first
    assert Schedule("30 2 * * *", tz="Europe/Berlin").ticks(
        *local_day("Europe/Berlin", 2026, 10, 25)
    ) == [utc(2026, 10, 25, 0, 30)]
    # New York repeats 01:00-02:00: 01:30 EDT is 05:30 UTC, 01:30 EST (06:30 UTC) is not run
    ny = Schedule("30 1 * * *", tz="America/New_York")
    assert ny.ticks(*local_day("America/New_York", 2026, 11, 1)) == [utc(2026, 11, 1, 5, 30)]
    # asked from inside the repeated hour (01:15 EST), the next tick is the next day's, not 01:30 EST
    assert ny.next_after(utc(2026, 11, 1, 6, 15)) == utc(2026, 11, 2, 6, 30)
    # and 02:30 in New York exists once on that day (the repeated hour is 01:00-02:00)
    assert Schedule("30 2 * * *", tz="America/New_York").ticks(
        *local_day("America/New_York", 2026, 11, 1)
    ) == [utc(2026, 11, 1, 7, 30)]


@pytest.mark.parametrize(("tz", "spring", "autumn"), CHANGE_DAYS)
def test_an_hourly_job_skips_no_hour_and_repeats_none(
    tz: str, spring: tuple[int, int, int], autumn: tuple[int, int, int]
) -> None:
    s = Schedule("0 * * * *", tz=tz)
    short, long_ = s.ticks(*local_day(tz, *spring)), s.ticks(*local_day(tz, *autumn))
    assert len(short) == 23 and len(long_) == 24
    for ticks in (short, long_):
        assert ticks == sorted(set(ticks))
        hours = [t.astimezone(ZoneInfo(tz)).hour for t in ticks]
        assert len(set(hours)) == len(hours)  # no wall-clock hour twice


def test_six_fields_put_seconds_first_and_every_counts_elapsed_time() -> None:
    s = Schedule("*/10 * * * * *")
    assert s.ticks(utc(2026, 1, 1, 0, 0, 5), utc(2026, 1, 1, 0, 0, 40)) == [
        utc(2026, 1, 1, 0, 0, 10 * i) for i in (1, 2, 3, 4)
    ]
    e = Schedule(every="30s")
    assert e.ticks(utc(2026, 1, 1), utc(2026, 1, 1, 0, 2)) == [
        utc(2026, 1, 1, 0, i // 60, i % 60) for i in (30, 60, 90, 120)
    ]
    # elapsed time is the same on a change day: 2 ticks an hour across Berlin's 25-hour day
    assert (
        len(
            Schedule(every="30m", tz="Europe/Berlin").ticks(
                *local_day("Europe/Berlin", 2026, 10, 25)
            )
        )
        == 50
    )
    assert Schedule(every=dt.timedelta(seconds=2)).next_after(utc(2026, 1, 1, 0, 0, 1)) == utc(
        2026, 1, 1, 0, 0, 2
    )


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule("30 2 * * *", tz="Europe/Berlin"),
        Schedule("0 * * * *", tz="America/New_York"),
        Schedule("*/20 1-3 * * *", tz="Europe/Berlin"),
        Schedule("15 */2 * * 0", tz="America/New_York"),
        Schedule(every="7m"),
    ],
    ids=["berlin-daily", "ny-hourly", "berlin-night", "ny-sunday", "every-7m"],
)
def test_latest_walks_back_to_the_same_ticks_as_forward(schedule: Schedule) -> None:
    rng = random.Random(7)
    for _ in range(40):
        # ranges around both 2026 change days of both zones
        centre = rng.choice(
            [utc(2026, 3, 8, 7), utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 11, 1, 6)]
        )
        a = centre + dt.timedelta(minutes=rng.randint(-60 * 30, 60 * 30))
        b = a + dt.timedelta(minutes=rng.randint(0, 60 * 50))
        n = rng.randint(1, 6)
        assert schedule.latest(a, b, n) == schedule.ticks(a, b)[-n:], (a, b, n)


def test_catch_up_none_runs_only_ticks_due_while_in_charge() -> None:
    s = Schedule(every="1m")
    cursor, since = utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 1, 0, 30)  # down for an hour
    plan = s.plan(cursor, since, since + dt.timedelta(minutes=2))
    # 00:01 .. 00:59 were missed (more than the 60 s grace before taking charge): skipped
    assert plan.run == [utc(2026, 1, 1, 1, 0), utc(2026, 1, 1, 1, 1), utc(2026, 1, 1, 1, 2)]
    assert (
        plan.skipped_from == cursor
        and plan.skipped_until is not None
        and plan.skipped_until < utc(2026, 1, 1, 1, 0)
    )
    assert plan.cursor == utc(2026, 1, 1, 1, 2)
    # in charge all along: a late look still runs every tick since the cursor
    late = s.plan(plan.cursor, since, utc(2026, 1, 1, 1, 10))
    assert len(late.run) == 8 and late.skipped_from is None


def test_catch_up_latest_and_all_with_a_cap() -> None:
    cursor, since = utc(2026, 1, 1), utc(2026, 1, 1, 1, 0, 30)
    latest = Schedule(every="1m", catchup="latest").plan(cursor, since, since)
    assert latest.run == [utc(2026, 1, 1, 0, 59), utc(2026, 1, 1, 1, 0)]
    every = Schedule(every="1m", catchup="all", max_catchup=1000).plan(cursor, since, since)
    assert (
        every.run == [cursor + dt.timedelta(minutes=i) for i in range(1, 61)]
        and every.skipped_from is None
    )
    capped = Schedule(every="1m", catchup="all", max_catchup=5).plan(cursor, since, since)
    assert capped.run == [cursor + dt.timedelta(minutes=i) for i in range(55, 61)]
    assert capped.skipped_until is not None and capped.skipped_until < capped.run[0]
    # a daily cron job missed for three days, Berlin, across the spring change
    daily = Schedule("30 2 * * *", tz="Europe/Berlin", catchup="all", max_catchup=10)
    plan = daily.plan(utc(2026, 3, 27, 12), utc(2026, 3, 30, 12), utc(2026, 3, 30, 12))
    assert plan.run == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_a_tick_noticed_within_the_grace_is_on_time() -> None:
    s = Schedule("30 2 * * *", tz="Europe/Berlin", grace="5m")
    due = utc(2026, 6, 1, 0, 30)
    # restarted 3 minutes after the tick: it still runs under catchup="none"
    assert s.plan(
        due - dt.timedelta(hours=1), due + dt.timedelta(minutes=3), due + dt.timedelta(minutes=3)
    ).run == [due]
    # 10 minutes after: missed, skipped
    late = s.plan(
        due - dt.timedelta(hours=1), due + dt.timedelta(minutes=10), due + dt.timedelta(minutes=10)
    )
    assert (
        late.run == []
        and late.skipped_from is not None
        and late.cursor == due + dt.timedelta(minutes=5)
    )


def test_schedules_from_strings() -> None:
    assert Schedule.parse("every 30s") == Schedule(every="30s")
    assert Schedule.parse("5m").interval == 300
    assert Schedule.parse("0 3 * * *").cron == "0 3 * * *"
    assert Schedule.parse("@daily").next_after(utc(2026, 1, 1, 5)) == utc(2026, 1, 2)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "exactly one of cron= or every="),
        ({"cron": "0 * * * *", "every": "1m"}, "exactly one"),
        ({"cron": "61 * * * *"}, "invalid cron"),
        ({"cron": "* * *"}, "invalid cron"),
        ({"cron": "0 3 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": "soon"}, "not a duration"),
        ({"every": "1m", "catchup": "some"}, "unknown catchup"),
        ({"every": "1m", "max_catchup": 0}, "max_catchup"),
    ],
)
def test_bad_schedules_are_refused_with_a_hint(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        Schedule(**kwargs)  # type: ignore[arg-type]
    assert words in err.value.message and err.value.hint


def test_times_without_a_zone_are_refused() -> None:
    with pytest.raises(ConfigError, match="no time zone"):
        Schedule(every="1m").next_after(dt.datetime(2026, 1, 1))
