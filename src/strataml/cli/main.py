"""The ``strata`` command line."""

from __future__ import annotations

import sys

import typer

from strataml.cli import (
    dashboard,
    data,
    features,
    models,
    monitor,
    monitor_quality,  # noqa: F401  (adds quality, slo and alert commands to monitor_app)
    queue,
    serving,
)
from strataml.cli.output import err_console
from strataml.errors import StrataError

app = typer.Typer(
    name="strata",
    help="strataml: data → features → models → serving → monitoring, in one tool.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init")(data.init)
app.command("ingest")(data.ingest)
app.command("events")(data.events)
app.command("gc")(data.gc)
app.add_typer(data.datasets_app, name="datasets")
app.add_typer(data.contracts_app, name="contracts")
app.add_typer(features.features_app, name="features")
app.command("train")(models.train)
app.add_typer(models.runs_app, name="runs")
app.add_typer(models.models_app, name="models")
app.command("serve")(serving.serve)
app.command("predict")(serving.predict)
app.add_typer(serving.keys_app, name="keys")
app.add_typer(serving.deploy_app, name="deploy")
app.add_typer(serving.predictions_app, name="predictions")
app.add_typer(monitor.monitor_app, name="monitor")
app.command("ui")(dashboard.ui)
app.add_typer(queue.queue_app, name="queue")
app.command("worker")(queue.worker)


@app.command("demo")
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
            from strataml.cli.output import dumps

            sys.stdout.write(dumps(report) + "\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
