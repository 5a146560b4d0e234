"""CLI for queues: ``strata queue dlq list|replay|drop`` and ``strata worker``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._output import console, emit, table
from strataml.errors import StrataError

queue_app = typer.Typer(help="Queues: inspect and repair dead-letter queues.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: messages delivered too often without success.", no_args_is_help=True)
queue_app.add_typer(dlq_app, name="dlq")

UrlOpt = Annotated[str | None, typer.Option("--url", help="queue URL (default: STRATA_QUEUE or the workspace's SQLite queue)")]
IdsOpt = Annotated[list[str] | None, typer.Option("--id", help="message id (repeatable)")]
AllOpt = Annotated[bool, typer.Option("--all", help="every dead letter of the queue")]
T = TypeVar("T")


def queue_url(workspace: Any, url: str | None) -> str:
    """The queue URL: ``--url``, else the workspace's setting (``STRATA_QUEUE``) made absolute."""
    ws = open_workspace(workspace)
    return ws.resolve_url(url or ws.settings.queue)


def _run(url: str, action: Callable[[Any], Awaitable[T]]) -> T:
    import asyncio

    from strataml.spine import open_queue

    async def go() -> T:
        q = open_queue(url)
        try:
            return await action(q)
        finally:
            await q.close()

    return asyncio.run(go())


def _chosen(ids: list[str] | None, every: bool, verb: str) -> list[str] | None:
    if every and ids:
        raise StrataError(f"give either --id or --all to {verb}, not both")
    if not every and not ids:
        raise StrataError(f"nothing to {verb}: name the messages", hint="pass --id ID (repeatable) or --all")
    return None if every else list(ids or [])


@dlq_app.command("list")
def dlq_list(
    queue: Annotated[str, typer.Argument(help="queue name")],
    limit: Annotated[int, typer.Option(help="most dead letters to show")] = 100,
    url: UrlOpt = None,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """List a queue's dead letters: id, delivery count, last error, when."""
    letters = _run(queue_url(workspace, url), lambda q: q.dead_letters(queue, limit))
    docs = [d.to_dict() for d in letters]
    emit(docs, json_out, lambda rows: table(f"dead letters of {queue}", rows, ["id", "attempts", "dead_at", "error"]) if rows
         else console.print(f"no dead letters in {queue}"))


@dlq_app.command("replay")
def dlq_replay(
    queue: Annotated[str, typer.Argument(help="queue name")],
    ids: IdsOpt = None,
    every: AllOpt = False,
    url: UrlOpt = None,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Put dead letters back on their queue, delivery count reset."""
    chosen = _chosen(ids, every, "replay")
    n = _run(queue_url(workspace, url), lambda q: q.replay(queue, chosen))
    emit({"queue": queue, "replayed": n}, json_out, lambda d: console.print(f"replayed {n} message(s) onto {queue}"))


@dlq_app.command("drop")
def dlq_drop(
    queue: Annotated[str, typer.Argument(help="queue name")],
    ids: IdsOpt = None,
    every: AllOpt = False,
    url: UrlOpt = None,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Delete dead letters for good."""
    chosen = _chosen(ids, every, "drop")
    n = _run(queue_url(workspace, url), lambda q: q.drop(queue, chosen))
    emit({"queue": queue, "dropped": n}, json_out, lambda d: console.print(f"dropped {n} dead letter(s) of {queue}"))


def worker(
    queue: Annotated[str, typer.Option("--queue", "-q", help="queue to consume")],
    mode: Annotated[str, typer.Option(help="score: answer scoring requests; ingest: micro-batch events into a dataset")] = "score",
    reply_to: Annotated[str | None, typer.Option(help="reply queue for requests without a reply-to header (default: QUEUE-results)")] = None,
    contract: Annotated[str | None, typer.Option(help="contract of the events (ingest)")] = None,
    dataset: Annotated[str | None, typer.Option(help="dataset to ingest into (default: the contract's name)")] = None,
    materialize: Annotated[list[str] | None, typer.Option(help="feature view to update in the online store after each batch (ingest; repeatable)")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="model to load before taking requests (score; repeatable)")] = None,
    batch: Annotated[int, typer.Option(help="requests fetched and handled together (score)")] = 128,
    batch_rows: Annotated[int, typer.Option(help="messages per dataset version (ingest)")] = 10_000,
    interval: Annotated[float, typer.Option(help="longest wait in seconds before a partial batch is ingested")] = 5.0,
    lease: Annotated[float, typer.Option(help="lease on a message in hand, in seconds (renewed while working)")] = 30.0,
    max_deliveries: Annotated[int, typer.Option(help="deliveries without success before a message is dead-lettered")] = 5,
    idle_exit: Annotated[float | None, typer.Option(help="exit after this many seconds without messages")] = None,
    url: UrlOpt = None,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Consume a queue: scoring requests through the gateway's path, or events into dataset versions."""
    import asyncio

    from strataml.pipelines import WorkerConfig, run_worker

    if mode not in ("score", "ingest"):
        raise StrataError(f"unknown worker mode {mode!r}", hint="use --mode score or --mode ingest")
    ws = open_workspace(workspace)
    cfg = WorkerConfig(queue=queue, mode=mode, reply_to=reply_to, batch=batch, lease_s=lease, contract=contract,  # type: ignore[arg-type]
                       dataset=dataset, materialize=tuple(materialize or ()), batch_rows=batch_rows, interval_s=interval, idle_exit_s=idle_exit,
                       preload=tuple(model or ()))
    n = asyncio.run(run_worker(ws, ws.resolve_url(url or ws.settings.queue), cfg, max_deliveries=max_deliveries))
    emit({"queue": queue, "handled": n}, json_out, lambda d: console.print(f"handled {n} message(s) from {queue}"))
