"""Queue workers: scoring requests answered on a reply queue, event streams ingested in
micro-batches.

**Scoring** (``mode="score"``): a request message is JSON ``{"model": NAME, "instances":
[...]}`` with the caller's key in its ``authorization`` header (``Bearer …``) and
optionally a ``reply-to`` header (default ``<queue>-results``). It goes through the
serving layer's :class:`~strataml.serving.Gateway`, as an HTTP request does: the key's
scopes are checked, features are looked up online, the prediction is logged with
``route: "queue"`` and the message id as its request id. The reply carries the same id
(``request_id`` in the body, and as the reply message's id). A request refused for
good (bad key, bad input, unknown model) is answered with an ``error``; a failure that
may pass (the model failing with no fallback, a timeout) is rejected, to be tried again
and dead-lettered after the queue's ``max_deliveries``.

**Ingestion** (``mode="ingest"``): each message is a JSON row (or a list of rows) of a
contract's columns; a batch of messages (``batch_rows`` rows or ``interval_s`` seconds,
whichever comes first) becomes one Arrow table, written as Parquet and ingested with
:func:`strataml.data.ingest` (contract checks, quarantine, one new dataset version).

With ``materialize`` (feature view names), each batch then updates those views in the
online store (an incremental :func:`strataml.features.materialize`, from the same
definitions as training), so the online features follow the stream.

**Once only**: the worker holds a lease on every message it handles and renews it while
working; it acknowledges a batch only after its effects are recorded in the
:class:`~strataml.pipelines._ledger.Ledger` (SQLite, one transaction per step). A request
is recorded ``pending`` before its prediction goes to the log and ``replied`` once its
reply is published; a redelivered request found replied is acknowledged without effect,
one found pending is looked up in the prediction log (its reply rebuilt from the lines
there, or, when none are, predicted afresh); a reply is thus sent again (same id, same
body) only when a worker died between publishing it and recording that. An ingestion batch is found by its id
among the dataset's versions (its Parquet file's name, recorded by the same catalog
transaction that creates the version).

**Throughput**: a batch of requests goes through the gateway's micro-batcher as one
model call; its replies are published together and its deliveries acknowledged together;
while one batch waits on the log's flush and the broker's confirms, the next is fetched
and scored (``pipeline`` batches in hand at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson

import strataml.data as data_layer
import strataml.features as features_layer
from strataml.errors import ConfigError, NotFound, StrataError, UnsafePath
from strataml.pipelines._ledger import Ledger
from strataml.pipelines._logged import logged_replies
from strataml.serving import AuthError, Gateway, GatewayConfig, InputError, prediction_log_dir
from strataml.spine import (
    Delivery,
    Outgoing,
    Queue,
    Workspace,
    check_name,
    failpoint,
    open_queue,
    pausepoint,
)

log = logging.getLogger("strataml.worker")

#: errors that the same message will meet again: answered, not retried
_FINAL = (AuthError, InputError, NotFound, UnsafePath, ConfigError)
T = TypeVar("T")


@dataclass
class WorkerConfig:
    """What a worker consumes and how."""

    queue: str
    mode: Literal["score", "ingest"] = "score"
    reply_to: str | None = None
    batch: int = 128
    pipeline: int = 3  #: scoring batches in hand at once (one fetched and scored while others wait on the log and the broker)
    lease_s: float = 30.0
    linger_s: float = 0.005
    keep_effects_s: float = 7 * 86400.0  #: how long a message's effect record is kept (redelivery comes sooner)
    contract: str | None = None
    dataset: str | None = None
    batch_rows: int = 10_000
    interval_s: float = 5.0
    materialize: tuple[str, ...] = ()
    idle_exit_s: float | None = None
    audit_fsync: bool = True
    preload: tuple[str, ...] = ()  #: models to load before the first request (score)


class BadMessage(StrataError):
    """A message that cannot be read as a request or as rows."""


class Worker:
    """Consumes one queue until stopped (see the module docstring)."""

    def __init__(self, ws: Workspace, queue: Queue, config: WorkerConfig, gateway: Gateway | None = None) -> None:
        check_name(config.queue, "queue name")
        if config.mode == "ingest" and not config.contract:
            raise ConfigError("an ingesting worker needs a contract", hint="pass --contract NAME")
        if config.mode == "ingest":
            data_layer.resolve_contract(ws, str(config.contract))  # a missing contract stops the worker before it takes a message
        self.ws = ws
        self.q = queue
        self.cfg = config
        self.reply_to = config.reply_to or f"{config.queue}-results"
        self.ledger = Ledger(ws.state_dir / "queue-effects.db")
        self.ledger.prune(config.keep_effects_s)
        self.gw = gateway
        self.held: dict[int, tuple[Delivery, float]] = {}  #: deliveries in hand, and since when
        self.active: dict[str, asyncio.Future[None]] = {}  #: message ids in a batch being handled
        self.loading: dict[str, asyncio.Future[None]] = {}  #: models loaded (or being loaded) by name
        self._ledger_thread = ThreadPoolExecutor(1, thread_name_prefix="strata-ledger")
        self.stopping = asyncio.Event()
        self.handled = 0

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> int:
        """Consume until :meth:`stop` (or ``idle_exit_s`` without messages); the messages handled."""
        cfg = self.cfg
        if cfg.mode == "score" and self.gw is None:
            # a queued request has no caller holding a connection open: it may wait longer than an HTTP one
            # and a batch's requests become one model call
            self.gw = Gateway(self.ws, config=GatewayConfig(rate=None, burst=None, audit_fsync=cfg.audit_fsync, max_batch=max(cfg.batch, 1),
                                                            timeout_ms=10_000.0, backend_timeout_ms=5_000.0, inline_predict=False,
                                                            preload=cfg.preload))
        if self.gw is not None and not self.gw.started:
            await self.gw.startup()
        renewer = asyncio.get_running_loop().create_task(self._renew_loop())
        idle_since = time.monotonic()
        pending: list[Delivery] = []
        first_at = 0.0
        batches: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        def settled(task: asyncio.Task[None]) -> None:
            batches.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failures.append(task.exception())  # type: ignore[arg-type]

        try:
            while not self.stopping.is_set():
                if len(batches) >= max(cfg.pipeline, 1):  # enough batches in hand: wait for one to finish
                    await asyncio.wait(batches, return_when=asyncio.FIRST_COMPLETED)
                if failures:
                    raise failures[0]
                want = cfg.batch if cfg.mode == "score" else max(cfg.batch_rows - len(pending), 1)
                got = await self.q.fetch(cfg.queue, min(want, 1000), wait=0.2 if not pending else 0.05, lease=cfg.lease_s)
                if got and len(got) < want and cfg.linger_s > 0:  # messages arriving one by one: gather a batch, whose costs are shared
                    got += await self.q.fetch(cfg.queue, min(want - len(got), 1000), wait=cfg.linger_s, lease=cfg.lease_s)
                now = time.monotonic()
                for d in got:
                    self.held[id(d)] = (d, now)
                if cfg.mode == "score":
                    if got:  # handled while the next batch is fetched and handled: the waits of one overlap the work of another
                        task = asyncio.get_running_loop().create_task(self._score(got))
                        batches.add(task)
                        task.add_done_callback(settled)
                else:
                    if got and not pending:
                        first_at = time.monotonic()
                    pending += got
                    if pending and (len(pending) >= cfg.batch_rows or time.monotonic() - first_at >= cfg.interval_s or not got):
                        await self._ingest(pending)
                        pending = []
                if got or batches:
                    idle_since = time.monotonic()
                elif cfg.idle_exit_s is not None and time.monotonic() - idle_since >= cfg.idle_exit_s:
                    break
            if batches:
                await asyncio.wait(batches)
            if failures:
                raise failures[0]
            if pending:
                await self._ingest(pending)
        finally:
            for task in batches:
                task.cancel()
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        return self.handled

    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run`."""
        self.stopping.set()

    async def close(self) -> None:
        """Release the gateway, the ledger and the queue."""
        if self.gw is not None and self.gw.started:
            await self.gw.shutdown()
        self._ledger_thread.shutdown()
        self.ledger.close()
        await self.q.close()

    async def _renew_loop(self) -> None:
        """Three times per lease, renew the lease of every message in hand not renewed (or
        fetched) in the last sixth of one: each is renewed with half its lease or more to go."""
        while True:
            await asyncio.sleep(self.cfg.lease_s / 3)
            due = time.monotonic() - self.cfg.lease_s / 6
            for key, (d, since) in list(self.held.items()):
                if since > due:
                    continue
                try:
                    await self.q.renew(d, self.cfg.lease_s)
                    if key in self.held:
                        self.held[key] = (d, time.monotonic())
                except Exception as exc:
                    log.warning("cannot renew the lease on %s: %s", d.id, exc)

    async def _ledger(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a ledger call on the ledger's own thread (its commits wait for the disk; the loop goes on)."""
        return await asyncio.get_running_loop().run_in_executor(self._ledger_thread, fn, *args)

    async def _finish(self, ack: Sequence[Delivery], reject: Sequence[tuple[Delivery, str]]) -> None:
        failpoint("worker.before_ack")
        await self.q.ack(ack)
        for d, error in reject:
            await self.q.reject(d, error)
        for d in (*ack, *(d for d, _ in reject)):
            self.held.pop(id(d), None)
        self.handled += len(ack)

    # --- scoring ----------------------------------------------------------------------

    async def _score(self, batch: Sequence[Delivery]) -> None:
        """Answer a batch of requests, each once (see the module docstring for the steps)."""
        queue = self.cfg.queue
        ids = [d.id for d in batch]
        mine = await self._claim(ids)
        try:
            for d in batch:  # (a test's slow message)
                await pausepoint(f"worker.handle.{d.id}")
            known = await self._ledger(self.ledger.get, queue, ids)
            fresh, firsts = [], {}
            recover: dict[str, float] = {}
            for d in batch:  # an id published twice (a backend without deduplication) takes effect once
                if d.id in firsts:
                    continue
                firsts[d.id] = d
                entry = known.get(d.id)
                if entry is None:
                    fresh.append(d)
                elif entry[0] == "pending":  # a worker died handling it: did its prediction reach the log?
                    recover[d.id] = entry[3]
            found: dict[str, bytes] = {}
            if recover:
                found = await asyncio.get_running_loop().run_in_executor(
                    None, logged_replies, prediction_log_dir(self.ws.state_dir), set(recover), min(recover.values()))
                log.info("%d request(s) found pending after a worker stopped: %d already logged", len(recover), len(found))
                fresh += [firsts[i] for i in recover if i not in found]
            if fresh:  # recorded before the predictions go to the log: a worker dying from here on leaves a trace
                await self._ledger(self.ledger.put, queue, [(d.id, "pending", None, None) for d in fresh])
            failpoint("worker.after_pending")
            outcomes = await asyncio.gather(*(self._predict(d) for d in fresh))
            flushes = [logged for _, logged, _ in outcomes if logged is not None]
            if flushes:
                await asyncio.gather(*flushes)  # the predictions are in the log before anything else
            failpoint("worker.after_log")
            rejected = [(d, error) for d, (_, _, error) in zip(fresh, outcomes, strict=True) if error is not None]
            if rejected:  # no effect: the next delivery starts afresh
                await self._ledger(self.ledger.forget, queue, [d.id for d, _ in rejected])
            answered = [(d, reply) for d, (reply, _, error) in zip(fresh, outcomes, strict=True) if error is None and reply is not None]
            seen = {d.id for d, _ in answered}
            for d in batch:  # answered before this delivery (its reply perhaps not sent), or found in the log
                entry = known.get(d.id)
                reply = found.get(d.id) if entry is None or entry[0] != "answered" else entry[2]
                if reply is not None and d.id not in seen:
                    seen.add(d.id)
                    answered.append((d, reply))
            by_queue: dict[str, list[Outgoing]] = {}
            for d, reply in answered:
                by_queue.setdefault(self._reply_queue(d), []).append(Outgoing(reply, d.id))
            for reply_queue, messages in by_queue.items():
                await self.q.publish_many(reply_queue, messages)
            if answered:
                await self._ledger(self.ledger.set_state, queue, [d.id for d, _ in answered], "replied")
            done = seen | {i for i, e in known.items() if e[0] == "replied"}
            failed = {d.id for d, _ in rejected}
            first_of = {id(d) for d, _ in rejected}
            # a second copy of an id settles with its first: acknowledged once that one took effect,
            # dropped if it is being retried (the first copy carries the retry)
            await self._finish([d for d in batch if d.id in done or (d.id in failed and id(d) not in first_of)], rejected)
        finally:
            self._release(ids, mine)

    async def _claim(self, ids: Sequence[str]) -> asyncio.Future[None]:
        """Wait until no other batch of this worker holds any of ``ids``, then hold them."""
        while True:
            others = {self.active[i] for i in ids if i in self.active}
            if not others:
                break
            await asyncio.wait(others)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for i in ids:
            self.active[i] = mine
        return mine

    def _release(self, ids: Sequence[str], mine: asyncio.Future[None]) -> None:
        for i in ids:
            if self.active.get(i) is mine:
                del self.active[i]
        mine.set_result(None)

    async def _load(self, name: str) -> None:
        """Load the champion of ``name`` (a failure is left for the requests to meet and answer)."""
        assert self.gw is not None
        with contextlib.suppress(Exception):
            await self.gw.servable(name, self.gw.deployment(name).champion)

    def _reply_queue(self, d: Delivery) -> str:
        return d.headers.get("reply-to") or self.reply_to

    async def _predict(self, d: Delivery) -> tuple[bytes | None, Any, str | None]:
        """(reply, the prediction log's flush, error to retry on) for one request."""
        gw = self.gw
        assert gw is not None
        try:
            doc = _request(d.body)
            name = doc["model"]
            key = gw.authorize(d.headers.get("authorization"), f"predict:{name}")
            if name not in self.loading:  # the first request for a model waits for it to load, not the request's deadline
                self.loading[name] = asyncio.ensure_future(self._load(name))
            await self.loading[name]
            res, logged = await gw.predict_logging(name, doc["instances"], key, d.id, "queue", gw.deployment(name))
            out: dict[str, Any] = {"request_id": d.id, "model": res.model, "version": res.version,
                                   "predictions": res.predictions, "degraded": res.degraded}
            if res.degraded:
                out["fallback"] = res.fallback
            return orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY, default=str), logged, None
        except (*_FINAL, BadMessage) as exc:
            status = exc.status if isinstance(exc, AuthError) else 404 if isinstance(exc, NotFound | UnsafePath) else 422
            error = {"status": status, "type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
            return orjson.dumps({"request_id": d.id, "error": error}), None, None
        except Exception as exc:
            log.warning("request %s failed (delivery %d): %s", d.id, d.attempts, exc)
            return None, None, f"{type(exc).__name__}: {exc}"[:2000]

    # --- ingestion --------------------------------------------------------------------

    async def _ingest(self, batch: Sequence[Delivery]) -> None:
        queue, cfg = self.cfg.queue, self.cfg
        dataset = cfg.dataset or str(cfg.contract)
        known = self.ledger.get(queue, [d.id for d in batch])
        if known:
            sources = [v.source or "" for v in data_layer.list_versions(self.ws, dataset)]
            committed = {e[1] for e in known.values() if e[1] and any(e[1] in s for s in sources)}
            if committed:  # a batch whose version exists: recorded as done; its messages take no effect again
                self.ledger.set_state(queue, [i for i, e in known.items() if e[1] in committed], "done")
            skip = {i for i, e in known.items() if e[0] == "done" or e[1] in committed}
        else:
            skip, committed = set(), set()
        fresh, rows, bad = [], [], []
        fresh_ids: set[str] = set()
        for d in batch:
            if d.id in skip:
                continue
            if d.id in fresh_ids:
                skip.add(d.id)  # a second copy of an id in this batch: its rows once
                continue
            try:
                rows += _rows(d.body)
                fresh.append(d)
                fresh_ids.add(d.id)
            except BadMessage as exc:
                bad.append((d, exc.message))
        if fresh:
            import pyarrow.parquet as pq

            batch_id = f"qbatch-{uuid.uuid4().hex}"
            self.ledger.put(queue, [(d.id, "pending", batch_id, None) for d in fresh])
            path = self.ws.scratch_dir() / f"{queue}-{batch_id}.parquet"
            try:
                pq.write_table(_table(rows), path)
                report = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: data_layer.ingest(self.ws, str(path), contract=str(cfg.contract), dataset=dataset))
            except Exception as exc:
                log.warning("batch %s of %d messages failed: %s", batch_id, len(fresh), exc)
                await self._finish([d for d in batch if d.id in skip], [*bad, *((d, f"{type(exc).__name__}: {exc}"[:2000]) for d in fresh)])
                return
            finally:
                path.unlink(missing_ok=True)
            log.info("batch %s: %d messages, %d rows → %s %s", batch_id, len(fresh), len(rows), dataset, report.version)
            self.ledger.set_state(queue, [d.id for d in fresh], "done")
        if cfg.materialize and (fresh or committed):  # recomputed from the dataset: running it again changes nothing
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: features_layer.materialize(self.ws, list(cfg.materialize), incremental=True))
        taken = skip | {d.id for d in fresh}
        await self._finish([d for d in batch if d.id in taken], bad)


def _request(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"the request is not JSON: {exc}", hint='send {"model": NAME, "instances": [{...}]}') from None
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), str) or not isinstance(doc.get("instances"), list) or not doc["instances"]:
        raise BadMessage("a request needs a model name and a non-empty list of instances", hint='send {"model": NAME, "instances": [{...}]}')
    if not all(isinstance(i, dict) for i in doc["instances"]):
        raise BadMessage("every instance must be a JSON object")
    return doc


def _table(rows: list[dict[str, Any]]) -> Any:
    """The rows as an Arrow table of text columns: the contract casts each value, and a
    value that does not fit goes to quarantine with its row (as from a CSV file), where
    inferring types from JSON would refuse the whole batch over one odd value."""
    import pyarrow as pa

    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))

    def text(v: Any) -> str | None:
        return None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode()

    return pa.table({n: pa.array([text(r.get(n)) for r in rows], pa.string()) for n in names})


def _rows(body: bytes) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"the event is not JSON: {exc}") from None
    rows = doc if isinstance(doc, list) else [doc]
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise BadMessage("an event is a JSON object (a row) or a list of them")
    return rows


async def run_worker(ws: Workspace, url: str, config: WorkerConfig, *, max_deliveries: int = 5) -> int:
    """Run a worker on ``url`` until SIGTERM/SIGINT (or idle); the messages handled."""
    worker = Worker(ws, open_queue(url, max_deliveries=max_deliveries), config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, worker.stop)
    try:
        return await worker.run()
    finally:
        await worker.close()
