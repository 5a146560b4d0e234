"""Event triggers: what starts a pipeline besides the clock.

Declare them on a pipeline (``Pipeline(..., triggers=[st.on_dataset("transactions")])``):

- :func:`on_dataset`: a new version of a named dataset (event ``dataset.version_created``).
- :func:`on_files`: a new file in a landing folder or bucket (any fsspec URL). Each file
  starts one run, identified by its path and its etag (or size, where the store has no
  etag): a file rewritten with other content starts another. Files already there when the
  trigger is first seen do not, unless ``existing=True``.
- :func:`on_alert`: an alert firing or resolving (events ``alert.fired``/``alert.resolved``).
- :func:`on_queue`: a message on a queue (:func:`strataml.spine.open_queue`); a JSON object
  body's ``params`` become the run's parameters. The message is acknowledged once its run
  is recorded; a scheduler that dies first leaves it to be delivered again when its lease
  (the scheduler's lease time) lapses, and the redelivery finds the recorded tick.
- :func:`on_pipeline`: another pipeline's run succeeding, failing or either.

A trigger's identity is its definition (kind and target), or ``id=`` when given; the
scheduler keeps its cursor under that identity, so renaming one starts it afresh.

Event-log triggers read the one event log after a cursor (the last event id handled). On
PostgreSQL an event id is taken before its transaction commits, so a later id can become
visible first: the cursor only moves past events older than ``settle_s`` (120 s) and the
newer ones are read again, recognised by their tick rows; SQLite commits in id order.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

from strataml.errors import ConfigError

if TYPE_CHECKING:
    import asyncio

    from strataml.spine import Event, Queue, Workspace

TriggerKind = Literal["dataset", "files", "alert", "queue", "pipeline"]
#: the rule name of the alert a closed loop raises when it rolls a canary back
#: (``loop:DEPLOYMENT``); a model-wide :func:`on_alert` leaves these out
LOOP_ALERT_PREFIX = "loop:"
#: how long an event id may stay invisible (its transaction not yet committed) on PostgreSQL
SETTLE_S = 120.0


def short_key(text: str, limit: int = 300) -> str:
    """``text`` when short enough, else its head and a hash of the whole (stable)."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"{text[: limit - 34]}~{digest}"


@dataclass(frozen=True)
class Trigger:
    """One event trigger of a pipeline; build it with :func:`on_dataset`, :func:`on_files`,
    :func:`on_alert`, :func:`on_queue` or :func:`on_pipeline`."""

    kind: TriggerKind
    target: str
    options: tuple[tuple[str, Any], ...] = ()
    id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def option(self, name: str, default: Any = None) -> Any:
        """One option of the trigger."""
        return dict(self.options).get(name, default)

    @property
    def key(self) -> str:
        """The trigger's stable identity (``id=``, or derived from its definition)."""
        if self.id:
            return self.id
        parts = [self.kind, self.target] + [f"{k}={v}" for k, v in self.options if k in _IDENTITY]
        return short_key(":".join(parts), 200)

    def describe(self) -> str:
        """A short human description."""
        extra = ", ".join(f"{k}={v}" for k, v in self.options if v not in (None, False, ""))
        return f"on_{self.kind}({self.target!r}{', ' + extra if extra else ''})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "kind": self.kind,
            "target": self.target,
            "key": self.key,
            "options": dict(self.options),
        }


#: options that are part of a trigger's identity (the others only tune it)
_IDENTITY = {"pattern", "recursive", "state", "model", "url"}


def _target(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{what} must be a non-empty string, not {value!r}")
    return value


def _params(params: dict[str, Any] | None) -> dict[str, Any]:
    if params is not None and not isinstance(params, dict):
        raise ConfigError(f"trigger params must be a dict, not {type(params).__name__}")
    return dict(params or {})


def on_dataset(
    dataset: str, *, id: str | None = None, params: dict[str, Any] | None = None
) -> Trigger:
    """Run when a new version of ``dataset`` is created."""
    return Trigger(
        "dataset", _target(dataset, "on_dataset's dataset name"), (), id, _params(params)
    )


def on_files(
    url: str,
    pattern: str = "*",
    *,
    recursive: bool = False,
    existing: bool = False,
    id: str | None = None,
    params: dict[str, Any] | None = None,
) -> Trigger:
    """Run once for each new file in a folder or bucket (``url``: a path or any fsspec URL)
    whose name matches ``pattern``; ``recursive`` looks in sub-folders; ``existing`` also
    runs for the files there when the trigger is first seen."""
    options = (("pattern", pattern), ("recursive", bool(recursive)), ("existing", bool(existing)))
    return Trigger("files", _target(url, "on_files's url"), options, id, _params(params))


def on_alert(
    rule: str | None = None,
    *,
    model: str | None = None,
    state: Literal["fired", "resolved", "any"] = "fired",
    id: str | None = None,
    params: dict[str, Any] | None = None,
) -> Trigger:
    """Run when an alert fires (or resolves, ``state``): the alert rule named ``rule``, or
    any rule on ``model``, or any alert at all.

    Without ``rule``, the alerts a closed loop raises when it rolls a canary back
    (``loop:DEPLOYMENT``) are left out: a retrain on any alert of its model would
    otherwise start again from the rollback of its own challenger, and again after that.
    Name the rule (``on_alert("loop:fraud")``) to run on them.
    """
    if state not in ("fired", "resolved", "any"):
        raise ConfigError(f"unknown alert state {state!r}", hint="use 'fired', 'resolved' or 'any'")
    target = rule if rule is not None else "*"
    return Trigger(
        "alert",
        _target(target, "on_alert's rule"),
        (("model", model), ("state", state)),
        id,
        _params(params),
    )


def on_queue(
    queue: str,
    *,
    url: str | None = None,
    id: str | None = None,
    params: dict[str, Any] | None = None,
) -> Trigger:
    """Run for each message on ``queue`` (at ``url``; default the workspace's queue setting)."""
    from strataml.spine import check_queue_name

    check_queue_name(_target(queue, "on_queue's queue name"))
    return Trigger("queue", queue, (("url", url),), id, _params(params))


def on_pipeline(
    pipeline: str,
    *,
    state: Literal["succeeded", "failed", "finished"] = "succeeded",
    id: str | None = None,
    params: dict[str, Any] | None = None,
) -> Trigger:
    """Run when a run of ``pipeline`` succeeds (or fails, or either: ``state="finished"``)."""
    if state not in ("succeeded", "failed", "finished"):
        raise ConfigError(
            f"unknown pipeline state {state!r}", hint="use 'succeeded', 'failed' or 'finished'"
        )
    return Trigger(
        "pipeline",
        _target(pipeline, "on_pipeline's pipeline name"),
        (("state", state),),
        id,
        _params(params),
    )


# --- sources: how each kind finds what happened ------------------------------------------


@dataclass(frozen=True)
class Fire:
    """One thing that happened and starts one run: its stable key and what it was."""

    key: str
    due_at: dt.datetime
    trigger: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """What a poll found: the fires, the cursor to commit once they are recorded, and an
    optional action to take after that (acknowledging queue messages)."""

    fires: list[Fire]
    cursor: str | None
    after_commit: Callable[[], None] | None = None
    note: dict[str, Any] = field(default_factory=dict)


def _event_filter(trigger: Trigger) -> tuple[str, str | None, Callable[[Event], bool]]:
    """(kind prefix, subject, predicate) of an event-log trigger."""
    if trigger.kind == "dataset":
        return "dataset.version_created", trigger.target, lambda e: True
    if trigger.kind == "alert":
        state = trigger.option("state", "fired")
        rule = None if trigger.target == "*" else trigger.target
        kinds = {
            "fired": ("alert.fired",),
            "resolved": ("alert.resolved",),
            "any": ("alert.fired", "alert.resolved"),
        }[state]
        return (
            "alert.",
            trigger.option("model"),
            lambda e: e.kind in kinds
            and (
                e.payload.get("rule") == rule
                if rule is not None
                else not str(e.payload.get("rule", "")).startswith(LOOP_ALERT_PREFIX)
            ),
        )
    state = trigger.option("state", "succeeded")
    wanted = ("succeeded", "failed", "cancelled") if state == "finished" else (state,)
    return (
        "pipeline.run.",
        trigger.target,
        lambda e: e.kind in {f"pipeline.run.{s}" for s in wanted},
    )


def _event_details(trigger: Trigger, e: Event) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": trigger.kind,
        "trigger": trigger.key,
        "event_id": e.id,
        "event": e.kind,
    }
    if trigger.kind == "dataset":
        return base | {
            "dataset": e.subject,
            "version": e.payload.get("version"),
            "rows": e.payload.get("rows"),
        }
    if trigger.kind == "alert":
        keep = ("rule", "severity", "metric", "value", "threshold", "message")
        return (
            base
            | {"model": e.subject, "state": e.kind.split(".", 1)[1]}
            | {k: e.payload.get(k) for k in keep}
        )
    return base | {
        "pipeline": e.subject,
        "run_id": e.payload.get("run_id"),
        "state": e.kind.rsplit(".", 1)[1],
    }


class EventLogSource:
    """Reads the event log after a cursor (dataset, alert and pipeline triggers)."""

    def __init__(self, ws: Workspace, trigger: Trigger, settle_s: float | None = None) -> None:
        self.ws = ws
        self.trigger = trigger
        self.settle_s = (
            settle_s
            if settle_s is not None
            else (SETTLE_S if ws.catalog.dialect == "postgresql" else 0.0)
        )

    def poll(self, cursor: str | None, now: dt.datetime) -> Batch:
        """Events after the cursor; the first poll starts at the end of the log."""
        from strataml.spine import list_events

        if cursor is None:
            last = list_events(self.ws.catalog, limit=1)
            return Batch(
                [],
                str(last[-1].id if last else 0),
                note={"started_at_event": last[-1].id if last else 0},
            )
        prefix, subject, wanted = _event_filter(self.trigger)
        events = list_events(
            self.ws.catalog, kind=prefix, subject=subject, after_id=int(cursor), limit=None
        )
        fires = [
            Fire(f"event:{e.id}", e.ts, _event_details(self.trigger, e), dict(self.trigger.params))
            for e in events
            if wanted(e)
        ]
        settled = int(cursor)
        for e in events:
            if (now - e.ts).total_seconds() < self.settle_s:
                break
            settled = e.id
        return Batch(fires, str(settled))


class FilesSource:
    """Lists a folder or bucket with fsspec; a file is new until a tick records it."""

    def __init__(self, ws: Workspace, trigger: Trigger) -> None:
        self.ws = ws
        self.trigger = trigger
        self.url = ws.resolve_url(trigger.target)

    def listing(self) -> list[dict[str, Any]]:
        """The matching files: path (relative to the URL), size, etag, modified time."""
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.url)
        root = root.rstrip("/")
        if not fs.exists(root):
            return []
        entries = (
            fs.find(root, detail=True)
            if self.trigger.option("recursive")
            else fs.ls(root, detail=True)
        )
        items = entries.values() if isinstance(entries, dict) else entries
        pattern = self.trigger.option("pattern", "*")
        out = []
        for info in items:
            if info.get("type") != "file":
                continue
            name = str(info["name"])
            rel = (
                name[len(root) :].lstrip("/") if name.startswith(root) else name.rsplit("/", 1)[-1]
            )
            if not fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pattern):
                continue
            etag = info.get("ETag") or info.get("etag") or info.get("md5")
            out.append(
                {
                    "path": rel,
                    "size": info.get("size"),
                    "etag": str(etag).strip('"') if etag else None,
                }
            )
        return sorted(out, key=lambda f: f["path"])

    def poll(self, cursor: str | None, now: dt.datetime) -> Batch:
        """Every matching file as a fire (the tick rows tell which are new)."""
        fires = []
        for f in self.listing():
            version = f["etag"] or f"size={f['size']}"
            trigger = {"kind": "files", "trigger": self.trigger.key, "url": self.trigger.target} | f
            fires.append(
                Fire(
                    short_key(f"file:{f['path']}|{version}"),
                    now,
                    trigger,
                    dict(self.trigger.params),
                )
            )
        if cursor is None and not self.trigger.option("existing"):
            return Batch(fires, "listed", note={"baseline": True})
        return Batch(fires, "listed")


class QueueSource:
    """Fetches messages under a lease; they are acknowledged after their ticks commit."""

    def __init__(
        self,
        ws: Workspace,
        trigger: Trigger,
        loop: asyncio.AbstractEventLoop,
        lease_s: float,
        batch: int = 100,
    ) -> None:
        self.ws = ws
        self.trigger = trigger
        self.loop = loop
        self.lease_s = lease_s
        self.batch = batch
        self.url = ws.resolve_url(trigger.option("url") or ws.settings.queue)
        self._queue: Queue | None = None

    @property
    def queue(self) -> Queue:
        """The queue backend, opened on first use."""
        if self._queue is None:
            from strataml.spine import open_queue

            self._queue = open_queue(self.url)
        return self._queue

    def poll(self, cursor: str | None, now: dt.datetime) -> Batch:
        """The messages waiting (each a fire keyed by its message id)."""
        got = self.loop.run_until_complete(
            self.queue.fetch(self.trigger.target, self.batch, wait=0.0, lease=self.lease_s)
        )
        fires = []
        for d in got:
            params = dict(self.trigger.params)
            body: Any = None
            try:
                body = orjson.loads(d.body)
            except orjson.JSONDecodeError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("params"), dict):
                params |= body["params"]
            trigger = {
                "kind": "queue",
                "trigger": self.trigger.key,
                "queue": self.trigger.target,
                "message_id": d.id,
            }
            trigger["body"] = body if body is not None else d.body.decode(errors="replace")[:1000]
            fires.append(Fire(short_key(f"message:{d.id}"), now, trigger, params))

        def ack() -> None:
            if got:
                self.loop.run_until_complete(self.queue.ack(got))

        return Batch(fires, cursor or "queue", after_commit=ack)

    def close(self) -> None:
        """Close the queue connection."""
        if self._queue is not None:
            self.loop.run_until_complete(self._queue.close())
            self._queue = None


def open_source(
    ws: Workspace, trigger: Trigger, loop: asyncio.AbstractEventLoop, lease_s: float
) -> Any:
    """The source that polls ``trigger`` (queue messages are leased for ``lease_s``)."""
    if trigger.kind == "files":
        return FilesSource(ws, trigger)
    if trigger.kind == "queue":
        return QueueSource(ws, trigger, loop, lease_s)
    return EventLogSource(ws, trigger)
