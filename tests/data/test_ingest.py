"""Ingestion: every rule kind, quarantine contents, dedup, appends and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import strataml as st
from strataml.data import get_version, ingest, quarantine_rows
from strataml.errors import ContractError, NotFound, SourceError, ValidationFailed
from strataml.spine import list_events

from .conftest import contract


def _check_counts(r: st.IngestReport) -> None:
    assert r.accepted + r.rejected + r.duplicates == r.rows_read


def test_every_rule_kind_is_named_in_quarantine(workspace, tx_contract, write) -> None:
    path = write(
        "a.csv",
        "tx1,u1,10.5,,US,m1,2026-01-01T00:00:00Z",     # good
        "tx2,u1,abc,,US,m1,2026-01-01",                # amount.type
        "tx3,,1,,US,m1,2026-01-01",                    # user_id.nullable
        "tx4,u1,-1,,US,m1,2026-01-01",                 # amount.min
        "tx5,u1,2000000,,US,m1,2026-01-01",            # amount.max
        "tx6,u1,1,,XX,m1,2026-01-01",                  # country.allowed
        "bad7,u1,1,,US,m1,2026-01-01",                 # tx_id.pattern
        "tx8,u1,5,9,US,m1,2026-01-01",                 # refund_le_amount
        "tx9,u1,5,,US,m1,not a time",                  # ts.type
        "tx10,u1,nan,,US,m1,2026-01-01",               # amount.type (not finite)
        "tx11,u1,-5,,ZZ,m1,2026-01-01",                # two rules at once
        "tx1,u2,3,,DE,m2,2026-01-02",                  # tx_id.duplicate
    )
    r = ingest(workspace, path, contract=tx_contract)
    _check_counts(r)
    assert (r.rows_read, r.accepted, r.rejected, r.duplicates) == (12, 1, 10, 1)
    assert r.rejected_by_rule == {
        "amount.type": 2, "user_id.nullable": 1, "amount.min": 2, "amount.max": 1, "country.allowed": 2,
        "tx_id.pattern": 1, "refund_le_amount": 1, "ts.type": 1, "tx_id.duplicate": 1,
    }
    rows = {q["tx_id"]: q for q in quarantine_rows(workspace, "transactions@v1")}
    assert rows["tx2"]["_errors"] == ["amount.type"] and rows["tx2"]["amount"] == "abc"
    assert sorted(rows["tx11"]["_errors"]) == ["amount.min", "country.allowed"]
    assert rows["tx9"]["ts"] == "not a time"
    assert rows["tx1"]["_errors"] == ["tx_id.duplicate"] and rows["tx1"]["user_id"] == "u2"
    assert rows["tx2"]["_line"] == 3  # the line in the file (the header is line 1)


def test_good_rows_are_typed_and_timestamps_normalised_to_utc(workspace, tx_contract, write) -> None:
    path = write("a.csv", "tx1,u1,10.5,1,US,,2026-01-01T10:00:00+02:00", "tx2,u1,3,,DE,m,2026-01-01 08:00:00")
    ingest(workspace, path, contract=tx_contract)
    table = get_version(workspace, "transactions@v1").to_arrow()
    assert table.schema.field("amount").type == pa.float64()
    assert table.column("ts").to_pylist()[0].isoformat() == "2026-01-01T08:00:00"
    assert table.column("merchant").to_pylist() == [None, "m"]


def test_int_bool_and_date_types(workspace, write) -> None:
    c = st.Contract("things", key="id", columns=[
        st.Column("id", "int"), st.Column("flag", "bool"), st.Column("day", "date"), st.Column("n", "int", nullable=True),
    ])
    path = write("t.csv", "1,true,2026-01-01,5", "2,false,2026-02-30,", "3,maybe,2026-01-01,", "4,true,2026-01-01,1.5", "x,true,2026-01-01,",
                 header="id,flag,day,n")
    r = ingest(workspace, path, contract=c)
    assert r.accepted == 1
    assert r.rejected_by_rule == {"day.type": 1, "flag.type": 1, "n.type": 1, "id.type": 1}
    assert get_version(workspace, "things").to_arrow().column("id").type == pa.int64()


def test_append_adds_only_new_rows_and_never_rewrites(workspace, tx_contract, write) -> None:
    r1 = ingest(workspace, write("a.csv", "tx1,u1,1,,US,m,2026-01-01", "tx2,u1,2,,US,m,2026-01-01"), contract=tx_contract)
    v1 = get_version(workspace, "transactions@v1")
    r2 = ingest(workspace, write("b.csv", "tx2,u9,9,,US,m,2026-01-02", "tx3,u1,3,,US,m,2026-01-02", "tx3,u1,3,,US,m,2026-01-02"), contract=tx_contract)
    assert (r1.version, r2.version) == ("v1", "v2")
    assert (r2.accepted, r2.duplicates) == (1, 2)
    v2 = get_version(workspace, "transactions@v2")
    assert v2.files[: len(v1.files)] == v1.files and v2.parent == 1 and v2.rows == 3
    assert sorted(get_version(workspace, "transactions@latest").to_pandas()["tx_id"]) == ["tx1", "tx2", "tx3"]
    # v1 reads exactly the same rows forever
    assert get_version(workspace, "transactions@v1").to_arrow().equals(v1.to_arrow())
    assert get_version(workspace, "transactions@v1").sha256 == v1.sha256


def test_append_names_values_the_reader_could_not_type(workspace, tx_contract, write) -> None:
    ingest(workspace, write("a.csv", "tx1,u1,1,,US,m,2026-01-01"), contract=tx_contract)
    r = ingest(workspace, write("b.csv", "tx2,u1,abc,,US,m,2026-01-02", "tx3,u1,-2,x,US,m,2026-01-02", "tx4,u1,4,,US,m,2026-01-02"), contract=tx_contract)
    _check_counts(r)
    assert (r.rows_read, r.accepted, r.rejected) == (3, 1, 2)
    assert r.rejected_by_rule == {"amount.type": 1, "amount.min": 1, "refund.type": 1}
    lines = {q["tx_id"]: q["_line"] for q in quarantine_rows(workspace, "transactions@v2")}
    assert lines["tx2"] == 2 and lines["tx3"] == 3


def test_reingesting_the_same_file_changes_nothing(workspace, tx_contract, write) -> None:
    path = write("a.csv", "tx1,u1,1,,US,m,2026-01-01")
    ingest(workspace, path, contract=tx_contract)
    again = ingest(workspace, path, contract=tx_contract)
    assert again.status == "unchanged" and again.version is None and again.duplicates == 1
    assert get_version(workspace, "transactions").number == 1


def test_first_valid_occurrence_of_a_key_wins(workspace, tx_contract, write) -> None:
    path = write("a.csv", "tx1,u1,-1,,US,m,2026-01-01", "tx1,u2,5,,US,m,2026-01-01", "tx1,u3,6,,US,m,2026-01-01")
    r = ingest(workspace, path, contract=tx_contract)
    assert (r.accepted, r.rejected, r.duplicates) == (1, 1, 1)
    assert get_version(workspace, "transactions").to_pandas()["user_id"].tolist() == ["u2"]


@pytest.mark.parametrize("sort_rows", [4_000_000, 5])
def test_colliding_key_hashes_never_make_a_duplicate(workspace, tx_contract, write, monkeypatch: pytest.MonkeyPatch, sort_rows: int) -> None:
    # With a 1-bit "hash" nearly every key collides: only rows whose keys are equal count as repeats
    # (hashes sorted in memory, or grouped by DuckDB past a number of rows).
    import importlib

    module = importlib.import_module("strataml.data._ingest")
    monkeypatch.setattr(module, "_KEY_HASH", "(hash({}) % 2)")
    monkeypatch.setattr(module, "_SORT_ROWS", sort_rows)
    rows = [f"tx{i},u1,{i},,US,m,2026-01-01" for i in range(20)]
    r = ingest(workspace, write("a.csv", *rows, rows[3], rows[7], rows[7]), contract=tx_contract)
    assert (r.rows_read, r.accepted, r.duplicates) == (23, 20, 3)
    assert sorted(q["tx_id"] for q in quarantine_rows(workspace, "transactions@v1")) == ["tx3", "tx7", "tx7"]
    assert sorted(get_version(workspace, "transactions").to_pandas()["tx_id"]) == sorted(f"tx{i}" for i in range(20))


def test_many_bad_rows_are_all_quarantined_and_counted(workspace, tx_contract, write) -> None:
    # more bad rows than the validating pass keeps in memory at once
    rows = [f"tx{i},u1,{-1 if i % 2 else 1},,US,{'' if i % 5 == 0 else 'm'},2026-01-01" for i in range(20_000)]
    r = ingest(workspace, write("a.csv", *rows), contract=tx_contract)
    _check_counts(r)
    assert (r.rows_read, r.accepted, r.rejected, r.duplicates) == (20_000, 10_000, 10_000, 0)
    assert r.rejected_by_rule == {"amount.min": 10_000}
    # nulls count over every row read, good or bad
    assert [(t["rule"], t["value"]) for t in r.table_checks] == [("merchant.max_null_rate", 0.2)]
    bad = quarantine_rows(workspace, "transactions@v1")
    assert sorted(int(q["tx_id"][2:]) for q in bad) == list(range(1, 20_000, 2))
    assert all(q["_errors"] == ["amount.min"] and float(q["amount"]) == -1 for q in bad)


def test_quoting_first_seen_after_thousands_of_rows_is_detected(workspace, tx_contract, write) -> None:
    rows = [f"tx{i},u1,1,,US,m,2026-01-01" for i in range(5_000)]
    r = ingest(workspace, write("a.csv", *rows, 'tx9999,u1,1,,US,"m,1",2026-01-01'), contract=tx_contract)
    assert (r.rows_read, r.accepted, r.rejected) == (5_001, 5_001, 0)
    got = get_version(workspace, "transactions").to_pandas()
    assert got.loc[got["tx_id"] == "tx9999", "merchant"].tolist() == ["m,1"]


def test_unique_non_key_column(workspace, write) -> None:
    c = st.Contract("users", key="id", columns=[st.Column("id", "string"), st.Column("email", "string", unique=True)])
    ingest(workspace, write("u1.csv", "1,a@x", "2,b@x", "3,a@x", header="id,email"), contract=c)
    r = ingest(workspace, write("u2.csv", "4,b@x", "5,c@x", header="id,email"), contract=c)
    assert r.rejected_by_rule == {"email.unique": 1} and r.accepted == 1
    first = quarantine_rows(workspace, "users@v1")
    assert [(q["id"], q["_errors"]) for q in first] == [("3", ["email.unique"])]


def test_table_level_check_fails_the_whole_batch(workspace, write) -> None:
    c = contract(columns=[
        *[col for col in contract().columns if col.name != "merchant"],
        st.Column("merchant", "string", nullable=True, max_null_rate=0.2),
    ])
    path = write("a.csv", "tx1,u1,1,,US,,2026-01-01", "tx2,u1,1,,US,,2026-01-01", "tx3,u1,1,,US,m,2026-01-01")
    with pytest.raises(ValidationFailed, match="merchant is null in 66.67% of rows") as err:
        ingest(workspace, path, contract=c)
    assert err.value.report["status"] == "failed" and err.value.report["accepted"] == 0
    with pytest.raises(NotFound):
        get_version(workspace, "transactions")
    [event] = list_events(workspace.catalog, kind="dataset.batch_rejected")
    assert event.payload["checks"][0]["rule"] == "merchant.max_null_rate"


def test_min_rows(workspace, write) -> None:
    with pytest.raises(ValidationFailed, match="fewer than min_rows 5"):
        ingest(workspace, write("a.csv", "tx1,u1,1,,US,m,2026-01-01"), contract=contract(min_rows=5))


def test_breaking_contract_change_needs_the_flag(workspace, tx_contract, write) -> None:
    ingest(workspace, write("a.csv", "tx1,u1,1,,US,m,2026-01-01"), contract=tx_contract)
    retyped = contract(columns=[st.Column("amount", "int") if c.name == "amount" else c for c in tx_contract.columns])
    path = write("b.csv", "tx2,u1,2,,US,m,2026-01-01")
    with pytest.raises(ContractError, match="changed type float → int") as err:
        ingest(workspace, path, contract=retyped)
    assert "--allow-breaking" in (err.value.hint or "")
    r = ingest(workspace, path, contract=retyped, allow_breaking=True)
    v2 = get_version(workspace, "transactions@v2")
    assert r.version == "v2" and v2.rows == 1 and v2.stats["reset"] is True
    assert get_version(workspace, "transactions@v1").rows == 1  # still readable


def test_compatible_change_adds_a_nullable_column(workspace, tx_contract, write) -> None:
    ingest(workspace, write("a.csv", "tx1,u1,1,,US,m,2026-01-01"), contract=tx_contract)
    wider = contract(columns=[*tx_contract.columns, st.Column("channel", "string", nullable=True)])
    path = write("b.csv", "tx2,u1,2,,US,m,2026-01-01,web", header="tx_id,user_id,amount,refund,country,merchant,ts,channel")
    ingest(workspace, path, contract=wider)
    df = get_version(workspace, "transactions@v2").to_pandas().sort_values("tx_id")
    assert df["channel"].isna().tolist() == [True, False]
    kinds = [e.kind for e in list_events(workspace.catalog, kind="contract.")]
    assert kinds == ["contract.registered", "contract.registered"]


# --- bad input --------------------------------------------------------------------------


def test_empty_file(workspace, tx_contract, tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(SourceError, match="is empty"):
        ingest(workspace, str(tmp_path / "e.csv"), contract=tx_contract)


def test_header_only_file_adds_nothing(workspace, tx_contract, write) -> None:
    r = ingest(workspace, write("h.csv"), contract=tx_contract)
    assert (r.rows_read, r.status) == (0, "unchanged")


def test_semicolon_file_is_detected(workspace, tx_contract, tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("tx_id;user_id;amount;refund;country;merchant;ts\ntx1;u1;1;;US;m;2026-01-01\n")
    assert ingest(workspace, str(p), contract=tx_contract).accepted == 1


def test_wrong_delimiter_is_explained(workspace, tx_contract, tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("tx_id;user_id;amount;refund;country;merchant;ts\ntx1;u1;1;;US;m;2026-01-01\n")
    with pytest.raises(SourceError, match="lacks required column") as err:
        ingest(workspace, st.SourceSpec(str(p), delimiter="|"), contract=tx_contract)
    assert "--delimiter ';'" in (err.value.hint or "")


def test_bad_utf8_and_ragged_lines_are_quarantined(workspace, tx_contract, tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    p.write_bytes(
        b"tx_id,user_id,amount,refund,country,merchant,ts\n"
        b"tx1,u\xff\xfe,1,,US,m,2026-01-01\n"
        b"tx2,u,1,,US,m,2026-01-01,extra\n"
        b"tx3,u,1,,US,m,2026-01-01\n"
    )
    r = ingest(workspace, str(p), contract=tx_contract)
    _check_counts(r)
    assert (r.rows_read, r.accepted, r.rejected_by_rule) == (3, 1, {"_row.parse": 2})
    lines = [q["_raw_line"] for q in quarantine_rows(workspace, "transactions@v1")]
    assert any("INVALID ENCODING" in line for line in lines) and any("extra" in line for line in lines)


def test_latin1_with_encoding_option(workspace, tx_contract, tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_bytes("tx_id,user_id,amount,refund,country,merchant,ts\ntx1,Zoë,1,,US,m,2026-01-01\n".encode("latin-1"))
    ingest(workspace, st.SourceSpec(str(p), encoding="latin-1"), contract=tx_contract)
    assert get_version(workspace, "transactions").to_pandas()["user_id"].tolist() == ["Zoë"]


def test_nan_and_inf_are_type_errors(workspace, tx_contract, write) -> None:
    r = ingest(workspace, write("n.csv", "tx1,u,nan,,US,m,2026-01-01", "tx2,u,inf,,US,m,2026-01-01", "tx3,u,1e400,,US,m,2026-01-01",
                                "tx4,u,-inf,,US,m,2026-01-01", "tx5,u,1,,US,m,2026-01-01"), contract=tx_contract)
    assert r.rejected_by_rule == {"amount.type": 4} and r.accepted == 1
    assert all(math.isfinite(x) for x in get_version(workspace, "transactions").to_pandas()["amount"])


def test_huge_string_is_quarantined_not_a_crash(workspace, tx_contract, tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    with p.open("w") as fh:
        fh.write("tx_id,user_id,amount,refund,country,merchant,ts\n")
        fh.write("tx1," + "x" * 20_000_000 + ",1,,US,m,2026-01-01\n")
        fh.write("tx2,u,1,,US,m,2026-01-01\n")
    r = ingest(workspace, str(p), contract=tx_contract)
    _check_counts(r)
    assert (r.accepted, r.rejected_by_rule) == (1, {"_row.parse": 1})


def test_unknown_columns(workspace, tx_contract, write) -> None:
    path = write("x.csv", "tx1,u1,1,,US,m,2026-01-01,zz", header="tx_id,user_id,amount,refund,country,merchant,ts,surprise")
    with pytest.raises(SourceError, match=r"column\(s\) \['surprise'\].*does not declare") as err:
        ingest(workspace, path, contract=tx_contract)
    assert "extra_columns='drop'" in (err.value.hint or "")
    assert ingest(workspace, path, contract=contract(extra_columns="drop")).accepted == 1


def test_missing_required_column(workspace, tx_contract, write) -> None:
    with pytest.raises(SourceError, match=r"lacks required column\(s\) \['country'\]"):
        ingest(workspace, write("m.csv", "tx1,u1,1,,m,2026-01-01", header="tx_id,user_id,amount,refund,merchant,ts"), contract=tx_contract)


def test_missing_contract_and_file(workspace, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no contract named 'nope'.*declared: transactions"):
        ingest(workspace, "x.csv", contract="nope")
    with pytest.raises(SourceError, match="no file matches"):
        ingest(workspace, str(tmp_path / "nothing-*.csv"), contract="transactions")
    with pytest.raises(SourceError, match="cannot tell the format"):
        (tmp_path / "x.xlsx").write_text("x")
        ingest(workspace, str(tmp_path / "x.xlsx"), contract="transactions")


def test_bad_rule_sql_names_the_rule(workspace, write) -> None:
    c = contract(rules={"broken": "refund <= no_such_column"})
    with pytest.raises(ContractError, match="rule 'broken'.*not valid SQL"):
        ingest(workspace, write("a.csv", "tx1,u1,1,,US,m,2026-01-01"), contract=c)
    with pytest.raises(ContractError, match="returns .*not a boolean"):
        ingest(workspace, write("a.csv", "tx1,u1,1,,US,m,2026-01-01"), contract=contract(rules={"num": "amount + 1"}))


# --- other formats and sources -----------------------------------------------------------


def test_jsonl_with_a_malformed_line(workspace, tx_contract, tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text(
        json.dumps({"tx_id": "tx1", "user_id": "u1", "amount": 1.5, "refund": None, "country": "US", "merchant": "m", "ts": "2026-01-01T00:00:00"}) + "\n"
        + "{not json\n"
        + json.dumps({"tx_id": "tx2", "user_id": "u1", "amount": "x", "country": "US", "merchant": None, "ts": "2026-01-01"}) + "\n"
    )
    r = ingest(workspace, str(p), contract=tx_contract)
    _check_counts(r)
    assert (r.accepted, r.rejected_by_rule) == (1, {"_row.parse": 1, "amount.type": 1})


def test_parquet_and_glob(workspace, tx_contract, tmp_path: Path) -> None:
    from strataml import synth

    t = synth.transactions(200, seed=3, bad_fraction=0.0)
    typed = t.set_column(2, "amount", t.column("amount").cast(pa.float64()))
    pq.write_table(typed.slice(0, 100), tmp_path / "p1.parquet")
    pq.write_table(typed.slice(100), tmp_path / "p2.parquet")
    r = ingest(workspace, str(tmp_path / "p*.parquet"), contract=contract(columns=[
        c if c.name != "tx_id" else st.Column("tx_id", "string") for c in tx_contract.columns
    ]))
    assert (r.rows_read, r.accepted) == (200, 200)


def test_sql_source_sqlite(workspace, tx_contract, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE tx (tx_id TEXT, user_id TEXT, amount REAL, refund REAL, country TEXT, merchant TEXT, ts TEXT)")
        conn.executemany("INSERT INTO tx VALUES (?,?,?,?,?,?,?)", [
            ("tx1", "u1", 1.0, None, "US", "m", "2026-01-01"), ("tx2", "u1", -1.0, None, "US", "m", "2026-01-01"),
        ])
    r = ingest(workspace, st.SourceSpec(f"sqlite:///{db}", query="SELECT * FROM tx"), contract=tx_contract)
    assert (r.accepted, r.rejected_by_rule) == (1, {"amount.min": 1})
    with pytest.raises(SourceError, match="needs a query"):
        ingest(workspace, st.SourceSpec(f"sqlite:///{db}"), contract=tx_contract)
    with pytest.raises(SourceError, match="query on .* failed"):
        ingest(workspace, st.SourceSpec(f"sqlite:///{db}", query="SELECT * FROM nope"), contract=tx_contract)


@pytest.mark.postgres
def test_sql_source_postgres(workspace, tx_contract, postgres_url: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS strata_test_tx"))
        conn.execute(sa.text("CREATE TABLE strata_test_tx (tx_id text, user_id text, amount float, refund float, country text, merchant text, ts timestamptz)"))
        conn.execute(sa.text("INSERT INTO strata_test_tx SELECT 'tx' || g, 'u1', g, NULL, 'US', 'm', now() FROM generate_series(1, 120000) g"))
    try:
        r = ingest(workspace, st.SourceSpec(postgres_url, query="SELECT * FROM strata_test_tx"), contract=tx_contract)
        assert (r.rows_read, r.accepted) == (120000, 120000)
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS strata_test_tx"))
        eng.dispose()


@pytest.mark.s3
def test_s3_source_and_artifacts(tmp_path: Path, s3_endpoint: str, tx_contract, monkeypatch: pytest.MonkeyPatch, write) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="in/a.csv", Body=Path(write("a.csv", "tx1,u1,1,,US,m,2026-01-01", "tx2,u1,-1,,US,m,2026-01-01")).read_bytes())
    monkeypatch.setenv("STRATA_S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("STRATA_ARTIFACTS", "s3://lake/strata")
    ws = st.Workspace.init(tmp_path / "ws")
    r = ingest(ws, "s3://lake/in/*.csv", contract=tx_contract)
    assert (r.accepted, r.rejected) == (1, 1)
    assert r.quarantine and r.quarantine.startswith("s3://lake/strata/objects/")
    assert get_version(ws, "transactions").to_pandas()["tx_id"].tolist() == ["tx1"]
    assert quarantine_rows(ws, "transactions@v1")[0]["tx_id"] == "tx2"


def test_offsets_and_zone_names_are_converted_to_utc(workspace, tx_contract, write) -> None:
    path = write(
        "z.csv",
        "tx1,u,1,,US,m,2026-01-01 10:00:00 Europe/Berlin",
        "tx2,u,1,,US,m,2026-01-01T10:00:00-05:00",
        "tx3,u,1,,US,m,2026-01-01T10:00:00Z",
        "tx4,u,1,,US,m,2026-01-01 10:00:00.250",
        "tx5,u,1,,US,m,2026-01-01",
    )
    assert ingest(workspace, path, contract=tx_contract).accepted == 5
    df = get_version(workspace, "transactions").to_pandas().set_index("tx_id")["ts"]
    assert [str(df[k]) for k in ("tx1", "tx2", "tx3", "tx4", "tx5")] == [
        "2026-01-01 09:00:00", "2026-01-01 15:00:00", "2026-01-01 10:00:00", "2026-01-01 10:00:00.250000", "2026-01-01 00:00:00",
    ]
