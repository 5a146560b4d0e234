"""A gateway process for crash and drain tests: a real LightGBM model served by uvicorn.

Usage: python -m tests.serving.server_main WORKSPACE PORT [SLEEP_MS [nofsync]]
"""

from __future__ import annotations

import sys
import time
from typing import Any

import uvicorn
from tests.serving.conftest import train_booster

import strataml as st
from strataml.serving import GatewayConfig, InMemoryModels, create_app, from_lightgbm


def main() -> None:
    ws = st.Workspace.open(sys.argv[1])
    port = int(sys.argv[2])
    sleep_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    s = from_lightgbm("fraud", 1, train_booster(0))
    if sleep_ms:
        inner = s.predict_rows

        def slow(rows: list[dict[str, Any]]) -> Any:
            time.sleep(sleep_ms / 1000)
            return inner(rows)

        s.predict_rows = slow
    models = InMemoryModels()
    models.add(s, ["champion"])
    fsync = not (len(sys.argv) > 4 and sys.argv[4] == "nofsync")
    app = create_app(ws, models, GatewayConfig(rate=None, max_batch=1 if sleep_ms else 64, audit_fsync=fsync))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=30)


if __name__ == "__main__":
    main()
