from __future__ import annotations

from pathlib import Path

import pytest

import strataml as st

HEADER = "tx_id,user_id,amount,refund,country,merchant,ts"


def contract(**overrides: object) -> st.Contract:
    """The transactions contract used by these tests (six rule kinds and a SQL rule)."""
    args: dict[str, object] = {
        "key": "tx_id",
        "timestamp": "ts",
        "columns": [
            st.Column("tx_id", "string", unique=True, pattern=r"tx\d+"),
            st.Column("user_id", "string"),
            st.Column("amount", "float", min=0, max=1_000_000),
            st.Column("refund", "float", nullable=True, min=0),
            st.Column("country", "string", allowed=["US", "DE", "FR", "GB"]),
            st.Column("merchant", "string", nullable=True, max_null_rate=0.5),
            st.Column("ts", "timestamp"),
        ],
        "rules": {"refund_le_amount": "refund IS NULL OR refund <= amount"},
    }
    args.update(overrides)
    return st.Contract("transactions", **args)  # type: ignore[arg-type]


@pytest.fixture
def tx_contract() -> st.Contract:
    return contract()


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    def _write(name: str, *rows: str, header: str = HEADER) -> str:
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n")
        return str(path)

    return _write
