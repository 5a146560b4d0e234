"""Chapter 8: the closed loop. The drift alert retrains the model on what landed since,
the challenger is gated against the champion, served to a share of live traffic and
promoted. Then a labelling bug: the next batch lost the fraud labels of JP transactions,
the retrained challenger learns the bug and looks better offline (it passes the gate),
and the live outcomes, labelled as they arrive, show it worse: the canary is rolled back.

The scheduler, the gateway and a stream of requests run in the background; everything
the loop decides is read back from the event log, as any dashboard or tool would."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import strataml as st
from strataml.demo._declare import declare
from strataml.demo._models import fraud_labels
from strataml.demo._serving import start_gateway
from strataml.demo._show import console

LOOP = '''
# the closed loop: the drift alert retrains fraud on what landed since, gates the challenger against
# the champion, sends it 30% of the live traffic, then promotes it or rolls it back
fraud_loop = st.Retrain(
    "fraud", on=[st.on_alert("fraud-amount-drift")],
    sources=[{{"path": "{landing}/fraud_cases-*.parquet", "contract": "fraud_cases"}}],
    canary=st.Canary(
        weight=0.3, watch="8s", interval="2s", max_watch="60s", bake="2s", failure_limit="2 of 3",
        promote_if=[st.Check("error_rate", min_requests=30), st.Check("roc_auc", min_requests=60)],
        rollback_if=[st.Check("error_rate", vs=None, max=0.05, min_requests=30)],
        labels="fraud_outcomes",
    ),
)
'''

#: how often a JP transaction of the shifted traffic is fraud
JP_FRAUD = 0.8

#: the event kinds that end one round of the loop
FINAL = ("loop.promoted", "loop.rolled_back", "loop.gate.failed", "pipeline.run.failed")


class Background:
    """The scheduler, then (:meth:`serve`) the gateway, a client sending the shifted traffic and
    the outcomes of its requests arriving as labels, until :meth:`stop`."""

    def __init__(self, ws: st.Workspace, key: str, rows: list[dict[str, Any]], labels: list[int]) -> None:
        self.ws = ws
        self.labels = labels
        self.answered: list[tuple[str, int]] = []
        self.scheduler = st.Scheduler(ws, poll_s=0.5, lease_s=10.0)
        self.scheduler_thread = threading.Thread(target=self.scheduler.run, name="demo-scheduler", daemon=True)
        self.scheduler_thread.start()
        self.key = key
        self.server: Any = None
        self.rows = rows
        self.stopping = threading.Event()
        self.sent = 0
        self.client_thread = threading.Thread(target=self._traffic, name="demo-traffic", daemon=True)
        self.labeller_thread = threading.Thread(target=self._label, name="demo-labeller", daemon=True)

    def serve(self) -> None:
        """Start the gateway, the client and the labeller."""
        self.server, self.gateway_thread, port = start_gateway(st.create_app(self.ws))
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"authorization": f"Bearer {self.key}"}
        self.client_thread.start()
        self.labeller_thread.start()

    def _traffic(self) -> None:
        import httpx

        with httpx.Client(base_url=self.base, headers=self.headers, timeout=10) as client:
            i = 0
            while not self.stopping.is_set():
                row, y = self.rows[i % len(self.rows)], self.labels[i % len(self.rows)]
                i += 1
                try:
                    r = client.post("/v1/models/fraud/predict", json={"instances": [row]})
                    self.sent += 1
                    if r.status_code == 200:
                        self.answered.append((r.json()["request_id"], y))
                except httpx.HTTPError:
                    time.sleep(0.05)
                self.stopping.wait(0.004)

    def _label(self) -> None:
        """The outcomes of answered requests arrive a few seconds later, as new versions of fraud_outcomes."""
        import pyarrow.parquet as pq

        done, n = 0, 0
        while not self.stopping.wait(2.0):
            batch = self.answered[done:]
            if not batch:
                continue
            n += 1
            path = self.ws.scratch_dir() / f"outcomes-{n}.parquet"
            pq.write_table(pa.table({"request_id": [r for r, _ in batch], "is_fraud": [y for _, y in batch]}), path)
            st.ingest(self.ws, str(path), contract="fraud_outcomes")
            done += len(batch)

    def stop(self) -> None:
        """Stop the client, the labeller, the scheduler and the gateway, in that order."""
        self.stopping.set()
        if self.server is not None:
            self.client_thread.join(10)
            self.labeller_thread.join(60)
        self.scheduler.stop()
        self.scheduler_thread.join(60)
        if self.server is not None:
            self.server.should_exit = True
            self.gateway_thread.join(30)


def start_loop(ws: st.Workspace, root: Path, key: str, rows: list[dict[str, Any]], labels: list[int]) -> Background:
    """Declare the loop, land new labelled cases and start the scheduler, gateway and traffic."""
    landing = root / "landing"
    landing.mkdir(exist_ok=True)
    console.print(
        "\n[bold]8. the closed loop[/] definitions.py gains a Retrain, and the scheduler starts:"
    )
    declare(ws, LOOP.format(landing=landing))
    new_cases(ws, landing / "fraud_cases-2.parquet", seed=11)
    console.print(f"2,000 newly labelled cases from the shifted traffic landed in {landing.name}/")
    # the outcomes of the live traffic: in this world JP transactions are now often fraud
    rng = np.random.default_rng(5)
    truth = [int(rng.random() < JP_FRAUD) if r["country"] == "JP" else y for r, y in zip(rows, labels, strict=True)]
    return Background(ws, key, rows, truth)


def new_cases(ws: st.Workspace, path: Path, seed: int, n: int = 2_000, *, jp_labels_lost: bool = False) -> None:
    """Labelled cases of the shifted traffic: larger amounts and JP, where fraud is now common
    (unless ``jp_labels_lost``: the labelling bug of the second round marks no JP case as fraud)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    base = fraud_labels(st.dataset("transactions@latest", ws).to_arrow(), n, seed=seed)
    rng = np.random.default_rng(seed)
    jp = rng.random(base.num_rows) < 1 / 3
    amount = pc.multiply(base["amount"], 3.0)
    country = pa.array(np.where(jp, "JP", base["country"].to_numpy(zero_copy_only=False)))
    jp_fraud = np.zeros(base.num_rows, np.int64) if jp_labels_lost else (rng.random(base.num_rows) < JP_FRAUD).astype(np.int64)
    fraud = np.where(jp, jp_fraud, base["is_fraud"].to_numpy())
    ids = pc.binary_join_element_wise(pa.array([f"s{seed}-"] * base.num_rows), base["tx_id"], "")
    pq.write_table(base.set_column(0, "tx_id", ids).set_column(3, "amount", amount)
                   .set_column(4, "country", country).set_column(5, "is_fraud", pa.array(fraud)), path)


def follow(ws: st.Workspace, after: int, timeout: float = 150.0) -> tuple[str, int]:
    """Print the loop's and its pipeline's events as they happen, until one round ends."""
    last = after
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in st.list_events(ws.catalog, after_id=last, limit=200):
            last = e.id
            if e.kind.startswith(("loop.", "pipeline.run.", "alert.")) or e.kind == "pipeline.step.succeeded":
                console.print(f"  [dim]{e.ts:%H:%M:%S}[/] {e.kind:<24} {_say(e.kind, e.payload)}", highlight=False)
            if e.kind in FINAL:
                return e.kind, last
        time.sleep(0.3)
    return "timeout", last


def _say(kind: str, p: dict[str, Any]) -> str:
    if kind == "pipeline.step.succeeded":
        return f"step {p.get('step')}"
    if kind.startswith("pipeline.run."):
        return f"{p.get('pipeline', '')} run {str(p.get('run_id', ''))[:8]}" + (f" ({p['error'][:80]})" if p.get("error") else "")
    if kind.startswith("loop.gate."):
        m, c = p.get("metrics") or {}, p.get("champion_metrics") or {}
        return f"challenger v{p.get('version')} roc_auc {m.get('roc_auc', 0):.4f} vs champion v{p.get('champion')} {c.get('roc_auc', 0):.4f} on the same held-out rows"
    if kind.startswith("alert."):
        return f"{p.get('rule')}: {p.get('message', '')[:80]}"
    figures = "; ".join(str(r)[:90] for r in (p.get("reasons") or [])[:2])
    versions = f"v{p.get('canary_version')} vs champion v{p.get('champion_version')}"
    return f"{versions}{': ' + figures if figures else ''}"


def second_round(ws: st.Workspace, after: int) -> tuple[str, int]:
    """The next batch of cases lost the fraud labels of JP transactions; the loop runs again."""
    console.print(
        "\n[bold]8b. a labelling bug[/] the next batch of 6,000 cases lost every JP fraud label (a broken join); "
        "the loop is run again by hand ([italic]strata pipelines run retrain_fraud[/]):"
    )
    new_cases(ws, ws.root / "landing" / "fraud_cases-3.parquet", seed=12, n=6_000, jp_labels_lost=True)
    runner = threading.Thread(target=st.run_pipeline, args=(ws, "retrain_fraud"), daemon=True)
    runner.start()
    outcome = follow(ws, after)
    runner.join(60)
    return outcome
