"""The ``strata`` command line."""

from __future__ import annotations

import sys

import typer

from strataml.cli import (
    _dashboard as dashboard,
)
from strataml.cli import (
    _data as data,
)
from strataml.cli import (
    _features as features,
)
from strataml.cli import (
    _loops as loops,  # noqa: F401  (adds loops, advance and abort to pipelines_app)
)
from strataml.cli import (
    _models as models,
)
from strataml.cli import (
    _monitor as monitor,
)
from strataml.cli import (
    _monitor_quality as monitor_quality,  # noqa: F401  (adds quality, slo and alert commands to monitor_app)
)
from strataml.cli import (
    _pipelines as pipelines,
)
from strataml.cli import (
    _queue as queue,
)
from strataml.cli import (
    _scheduler as scheduler,
)
from strataml.cli import (
    _serving as serving,
)
from strataml.cli._lazy_group import lazy_group
from strataml.cli._output import err_console
from strataml.errors import StrataError

# The commands are registered on ``commands``; ``app`` converts one only when it is used,
# so ``strata --help`` does not inspect the signature of every command in the tree.
commands = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
app = typer.Typer(
    name="strata",
    help="strataml: data → features → models → serving → monitoring, in one tool.",
    cls=lazy_group(commands),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    pass


commands.command("init")(data.init)
commands.command("ingest")(data.ingest)
commands.command("events")(data.events)
commands.command("gc")(data.gc)
commands.add_typer(data.datasets_app, name="datasets")
commands.add_typer(data.contracts_app, name="contracts")
commands.add_typer(features.features_app, name="features")
commands.command("train")(models.train)
commands.add_typer(models.runs_app, name="runs")
commands.add_typer(models.models_app, name="models")
commands.command("serve")(serving.serve)
commands.command("predict")(serving.predict)
commands.add_typer(serving.keys_app, name="keys")
commands.add_typer(serving.deploy_app, name="deploy")
commands.add_typer(serving.predictions_app, name="predictions")
commands.add_typer(monitor.monitor_app, name="monitor")
commands.command("ui")(dashboard.ui)
commands.add_typer(queue.queue_app, name="queue")
commands.command("worker")(queue.worker)
commands.add_typer(pipelines.pipelines_app, name="pipelines")
commands.add_typer(scheduler.scheduler_app, name="scheduler")


@commands.command("demo")
def demo(
    keep: bool = typer.Option(False, "--keep", help="keep the demo workspace instead of deleting it"),
    directory: str | None = typer.Option(None, "--dir", help="where to create the demo workspace"),
    serve: bool = typer.Option(False, "--serve", help="afterwards keep the gateway and the dashboard (/ui) running until Ctrl-C"),
    port: int = typer.Option(8080, "--port", help="loopback port for --serve"),
) -> None:
    """Run the end-to-end demo in a temporary workspace."""
    from strataml.demo import run_demo

    run_demo(directory=directory, keep=keep, serve=port if serve else None)


def main() -> None:
    """Entry point: run the CLI, turning strataml errors into a message and an exit code."""
    try:
        app()
    except StrataError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[bold]hint:[/] {exc.hint}", highlight=False, soft_wrap=True)
        report = getattr(exc, "report", None)
        if report and "--json" in sys.argv:
            from strataml.cli._output import dumps

            sys.stdout.write(dumps(report) + "\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
