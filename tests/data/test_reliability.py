"""What a reader skips is counted and quarantined (or refused), never lost; a source is
refused for its real reason; a contract rule cannot change the validating query."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import strataml as st
from strataml.data import infer_contract, ingest, quarantine_rows
from strataml.data._sources import MAX_COLUMNS
from strataml.errors import ContractError, SourceError

from .conftest import HEADER, contract

ROW = "u,1,,US,m,2026-01-01"


def _counts_hold(r: st.IngestReport) -> None:
    assert r.accepted + r.rejected + r.duplicates == r.rows_read


@pytest.mark.parametrize("size", [33_600_000])
def test_a_line_longer_than_any_limit_is_quarantined_never_lost(workspace, tx_contract, tmp_path: Path, size: int) -> None:
    # 33.6M characters is past the reader's 32 MiB buffer, where it used to skip the line unreported
    p = tmp_path / "long.csv"
    with p.open("w") as fh:
        fh.write(HEADER + "\n")
        fh.write(f"tx1,{ROW}\n")
        fh.write("tx2," + "x" * size + ",1,,US,m,2026-01-01\n")
        fh.write(f"tx3,{ROW}\n")
    r = ingest(workspace, str(p), contract=tx_contract)
    _counts_hold(r)
    assert (r.rows_read, r.accepted, r.rejected_by_rule) == (3, 2, {"_row.parse": 1})
    [q] = quarantine_rows(workspace, "transactions")
    assert q["_line"] == 3 and q["_raw_line"].startswith("tx2,xxx") and "LINE SIZE" in q["_raw_line"]


@pytest.mark.slow
def test_a_long_line_in_every_file_of_a_glob_is_quarantined(workspace, tx_contract, tmp_path: Path) -> None:
    for name in ("a", "b"):
        with (tmp_path / f"{name}.csv").open("w") as fh:
            fh.write(HEADER + "\n" + f"{name}1,{ROW}\n" + f"{name}2," + "y" * 33_600_000 + f",1,,US,m,2026-01-01\n{name}3,{ROW}\n")
    r = ingest(workspace, str(tmp_path / "*.csv"), contract=contract(columns=[
        c if c.name != "tx_id" else st.Column("tx_id", "string") for c in contract().columns
    ]))
    _counts_hold(r)
    assert (r.rows_read, r.accepted, r.rejected_by_rule) == (6, 4, {"_row.parse": 2})


@pytest.mark.slow
def test_a_json_line_longer_than_the_reader_reads_is_refused_with_its_line(workspace, tx_contract, tmp_path: Path) -> None:
    p = tmp_path / "long.jsonl"
    good = json.dumps({"tx_id": "tx1", "user_id": "u", "amount": 1, "country": "US", "merchant": "m", "ts": "2026-01-01"})
    with p.open("w") as fh:
        fh.write(good + "\n")
        fh.write(json.dumps({"tx_id": "tx2", "user_id": "u" * (65 * 1024 * 1024)}) + "\n")
    with pytest.raises(SourceError, match=r"line 2 is 68,157,4\d\d bytes, longer than"):
        ingest(workspace, str(p), contract=tx_contract)


def test_a_long_json_line_is_quarantined_like_a_long_csv_line(workspace, tx_contract, tmp_path: Path) -> None:
    p = tmp_path / "long.jsonl"
    with p.open("w") as fh:
        fh.write(json.dumps({"tx_id": "tx1", "user_id": "u" * 33_600_000, "amount": 1, "country": "US", "merchant": "m", "ts": "2026-01-01"}) + "\n")
        fh.write(json.dumps({"tx_id": "tx2", "user_id": "u", "amount": 1, "country": "US", "merchant": "m", "ts": "2026-01-01"}) + "\n")
    r = ingest(workspace, str(p), contract=tx_contract)
    _counts_hold(r)
    assert (r.rows_read, r.accepted, r.rejected_by_rule) == (2, 1, {"_row.parse": 1})
    [q] = quarantine_rows(workspace, "transactions")
    assert q["_line"] == 1 and "LINE SIZE OVER MAXIMUM: the line is 33,600,098 bytes" in q["_raw_line"]


def test_a_json_object_naming_a_key_twice_is_quarantined(workspace, tx_contract, tmp_path: Path) -> None:
    p = tmp_path / "dup.jsonl"
    p.write_text(
        '{"tx_id": "tx1", "user_id": "u", "amount": 1, "amount": 2, "country": "US", "merchant": "m", "ts": "2026-01-01"}\n'
        '{"tx_id": "tx2", "user_id": "u", "amount": 1, "country": "US", "merchant": "m", "ts": "2026-01-01"}\n'
    )
    r = ingest(workspace, str(p), contract=tx_contract)
    assert (r.rows_read, r.accepted, r.rejected_by_rule) == (2, 1, {"_row.parse": 1})
    [q] = quarantine_rows(workspace, "transactions")
    assert "names a key twice" in q["_raw_line"]


# --- duplicate and dropped columns ------------------------------------------------------


@pytest.mark.parametrize("extra", ["error", "drop"])
def test_a_header_naming_a_column_twice_is_refused_naming_it(workspace, write, extra: str) -> None:
    path = write("d.csv", "tx1,u,1,,US,m,2026-01-01,5", header=HEADER + ",amount")
    with pytest.raises(SourceError, match=r"names column 'amount' twice \(columns 3 and 8") as info:
        ingest(workspace, path, contract=contract(extra_columns=extra))
    assert "amount_1" not in info.value.message


def test_a_query_naming_a_column_twice_is_refused(workspace, tx_contract, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "s.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE t (tx_id TEXT, amount REAL)")
        c.execute("INSERT INTO t VALUES ('tx1', 1)")
    spec = st.SourceSpec(uri=f"sqlite:///{db}", query="SELECT tx_id, amount, amount FROM t")
    with pytest.raises(SourceError, match="names column 'amount' twice"):
        ingest(workspace, spec, contract=contract(extra_columns="drop"))


def test_a_parquet_file_naming_a_column_twice_is_refused(workspace, tmp_path: Path) -> None:
    table = pa.Table.from_arrays([pa.array(["tx1"]), pa.array([1.0]), pa.array([2.0])], names=["tx_id", "amount", "amount"])
    pq.write_table(table, tmp_path / "d.parquet")
    with pytest.raises(SourceError, match="names column 'amount' twice"):
        ingest(workspace, str(tmp_path / "d.parquet"), contract=contract(extra_columns="drop"))


def test_dropped_columns_are_named_in_the_report(workspace, write) -> None:
    r = ingest(workspace, write("x.csv", "tx1,u,1,,US,m,2026-01-01,a,b", header=HEADER + ",extra1,extra2"),
               contract=contract(extra_columns="drop"))
    assert r.accepted == 1 and r.dropped_columns == ["extra1", "extra2"]
    assert r.to_dict()["dropped_columns"] == ["extra1", "extra2"]


# --- wide files -----------------------------------------------------------------------------


def test_a_file_too_wide_is_refused_early_with_the_reason(workspace, tmp_path: Path) -> None:
    p = tmp_path / "wide.csv"
    n = MAX_COLUMNS * 5
    p.write_text(",".join(["tx_id", "amount", *(f"c{i}" for i in range(n - 2))]) + "\n" + ",".join(["tx1", "1", *["1"] * (n - 2)]) + "\n")
    c = st.Contract("wide", columns=[st.Column("tx_id", "string"), st.Column("amount", "float")], extra_columns="drop")
    with pytest.raises(SourceError, match=f"has {n:,} columns; at most {MAX_COLUMNS:,}"):
        ingest(workspace, str(p), contract=c)
    with pytest.raises(SourceError, match=f"has {n:,} columns"):
        infer_contract(str(p))


def test_a_wide_file_within_the_limit_is_ingested(workspace, tmp_path: Path) -> None:
    p = tmp_path / "wide.csv"
    n = MAX_COLUMNS
    with p.open("w") as fh:
        fh.write(",".join(["tx_id", "amount", *(f"c{i}" for i in range(n - 2))]) + "\n")
        for r in range(50):
            fh.write(",".join([f"tx{r}", "1.5", *["7"] * (n - 2)]) + "\n")
    c = st.Contract("wide", key="tx_id", columns=[st.Column("tx_id", "string"), st.Column("amount", "float")], extra_columns="drop")
    r = ingest(workspace, str(p), contract=c)
    assert (r.rows_read, r.accepted, len(r.dropped_columns)) == (50, 50, n - 2)


# --- contract rules --------------------------------------------------------------------------


@pytest.mark.parametrize("rule", [
    "true) OR (1=1",
    "amount > 0) OR (true",
    "amount > 0, refund > 0",
    "amount FROM transactions",
    "true UNION SELECT false",
    "amount > 0; DROP TABLE x",
    "amount > 0 /* unterminated",
    "amount > (SELECT 0)",
    "EXISTS (SELECT * FROM read_csv('/etc/passwd'))",
])
def test_a_rule_that_is_not_one_expression_is_refused_naming_it(rule: str) -> None:
    with pytest.raises(ContractError, match="rule 'sneaky'"):
        contract(rules={"sneaky": rule})


def test_a_rule_with_a_trailing_comment_still_checks_every_row(workspace, write) -> None:
    c = contract(rules={"positive": "amount > 10 -- big ones only"})
    r = ingest(workspace, write("a.csv", "tx1,u,1,,US,m,2026-01-01", "tx2,u,20,,US,m,2026-01-01"), contract=c)
    assert (r.accepted, r.rejected_by_rule) == (1, {"positive": 1})


# --- CSV records counted apart from the reader -------------------------------------------


def _awkward_csv(path: Path) -> int:
    """A file with quoted newlines and delimiters, doubled quotes, blank and malformed lines: its record count."""
    path.write_text(
        HEADER + "\n"
        + f"tx1,{ROW}\n"
        + 'tx2,"u\nwith a newline",1,,US,"m, ""quoted""",2026-01-01\n'
        + "\n"
        + "tx3,u,1\n"  # too few fields: a record the reader quarantines
        + 'tx4,u,2,,US,"two\nlines\nand more",2026-01-01\n'
        + f"tx5,{ROW},extra\n"  # too many fields
        + f"tx6,{ROW}"  # no final newline
    )
    return 6


def test_a_csv_with_quoted_newlines_is_counted_like_the_reader_reads_it(workspace, tx_contract, tmp_path: Path) -> None:
    from strataml.data._records import count_records

    p = tmp_path / "awkward.csv"
    n = _awkward_csv(p)
    assert count_records(str(p), ",", '"', '"', len(HEADER.split(","))) == n
    r = ingest(workspace, st.SourceSpec(str(p), delimiter=","), contract=tx_contract)
    _counts_hold(r)
    assert (r.rows_read, r.accepted, r.rejected_by_rule) == (n, 4, {"_row.parse": 2})


def test_a_csv_whose_reader_accounts_for_fewer_records_is_refused_naming_both_counts(tmp_path: Path) -> None:
    from strataml.data._ingest import check_read_all
    from strataml.data._records import count_records

    p = tmp_path / "awkward.csv"
    n = _awkward_csv(p)
    counted = count_records(str(p), ",", '"', '"', len(HEADER.split(",")))
    check_read_all(str(p), "transactions", counted, n)
    # a reader that dropped one record unreported (as it once did for a long line)
    with pytest.raises(SourceError, match=rf"{p.name} holds {n:,} records but {n - 1:,} were read; nothing was added"):
        check_read_all(str(p), "transactions", counted, n - 1)


def test_a_semicolon_csv_quoted_with_single_quotes_is_counted_in_its_dialect(tmp_path: Path) -> None:
    from strataml.data._records import count_records

    p = tmp_path / "semi.csv"
    p.write_text("a;b\n'x;\ny';1\n'it''s';2\n3;4\n")
    assert count_records(str(p), ";", "'", "'", 2) == 3
    # read in the wrong dialect, the same bytes hold another number of records
    assert count_records(str(p), ",", '"', '"', 2) != 3
