"""Validation fast paths give the same answers as the general ones: many rules, timestamp text."""

from __future__ import annotations

import pytest

from strataml.data import ingest, quarantine_rows

from .conftest import contract


@pytest.mark.parametrize("n_rules", [49, 67])
def test_every_broken_rule_is_named_with_many_rules(workspace, write, n_rules: int) -> None:
    # rule r<i> is broken by an amount below i; the columns add 13 checks (62 in all for the first case)
    rules = {f"r{i:03d}": f"amount >= {i}" for i in range(n_rules)}
    c = contract(rules=rules)
    path = write("a.csv", f"tx1,u1,{n_rules},,US,m1,2026-01-01", "tx2,u1,3,,US,m1,2026-01-01", "tx3,u1,-1,,XX,m1,2026-01-01")
    r = ingest(workspace, path, contract=c)
    assert (r.rows_read, r.accepted, r.rejected) == (3, 1, 2)
    rows = {q["tx_id"]: q for q in quarantine_rows(workspace, "transactions@v1")}
    assert sorted(rows["tx2"]["_errors"]) == [f"r{i:03d}" for i in range(4, n_rules)]
    assert sorted(rows["tx3"]["_errors"]) == sorted(["amount.min", "country.allowed", *rules])
    assert r.rejected_by_rule[f"r{n_rules - 1:03d}"] == 2


TIMESTAMP_TEXTS = [
    "2026-01-01T10:00:00", "2026-01-01 10:00:00", "2026-01-01T10:00+02", "2026-1-1 10:00:00+2", "2026-01-01T10:00:00Z",
    "2026-01-01T10:00:00+02:00", "2026-01-01 10:00:00 Europe/Paris", "2026-13-01T10:00:00", "2026-01-01x10:00:00",
    "2026-01-01T25:00:00", "2026-01-01T10:00:00.5", "2026-01-01", "2026-01-01T1:00:00Z", "abcd-ef-ghTij:kl:mn",
    "2026-02-30 10:00:00", "2026-01-01T10:00:60", "", "2026-01-01T10:00:00-0500",
]


def test_timestamp_text_types_as_the_zone_aware_cast_does() -> None:
    from strataml.data._validate import _typed
    from strataml.spine._engine import duck

    con = duck()
    typed, _ = _typed(contract().column("ts"), "x", "VARCHAR")
    con.execute("CREATE TABLE t (x VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in TIMESTAMP_TEXTS])
    got = con.execute(f"SELECT x, {typed}, timezone('UTC', TRY_CAST(x AS TIMESTAMPTZ)) FROM t").fetchall()
    con.close()
    assert all(fast == slow for _, fast, slow in got), [r for r in got if r[1] != r[2]]
    assert sum(fast is not None for _, fast, _ in got) >= 8


def test_timestamp_fast_path_agrees_with_the_zone_aware_cast_on_generated_text() -> None:
    import random

    from strataml.data._validate import _typed
    from strataml.spine._engine import duck

    rnd = random.Random(7)

    def digits(n: int) -> str:
        return "".join(rnd.choice("0123456789") for _ in range(n))

    def field(top: int) -> str:
        return rnd.choice([f"{rnd.randint(0, top):02d}", str(rnd.randint(0, top)), digits(rnd.choice([1, 2, 3]))])

    texts = set()
    for _ in range(20_000):
        year = rnd.choice([digits(4), str(rnd.randint(1900, 2100)), digits(rnd.choice([1, 2, 3, 5, 6]))])
        seconds = rnd.choice([f":{field(61)}", f":{field(59)}", ""])
        sep = rnd.choice(["T", " ", "t", "x", "  "])
        suffix = rnd.choice(["", "", "", "", "Z", "+02", "+02:00", "-0500", " UTC", " Europe/Paris", ".5", " ", " BC"])
        texts.add(f"{rnd.choice(['', '', '', '-', '+', ' '])}{year}-{field(13)}-{field(32)}{sep}{field(25)}:{field(61)}{seconds}{suffix}")
    con = duck()
    typed, _ = _typed(contract().column("ts"), "x", "VARCHAR")
    con.execute("CREATE TABLE t AS SELECT unnest(?::VARCHAR[]) AS x", [sorted(texts)])
    differ = con.execute(f"SELECT x FROM t WHERE {typed} IS DISTINCT FROM timezone('UTC', TRY_CAST(x AS TIMESTAMPTZ))").fetchall()
    parsed = con.execute(f"SELECT count({typed}) FROM t").fetchall()[0][0]
    con.close()
    assert differ == [] and parsed > 1000
