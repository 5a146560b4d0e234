"""A command group that turns its commands into click commands only when they are used.

Typer converts every function of the whole command tree (its signature, its type hints,
every option) before it parses the first argument; for ``strata --help`` that is most of
the start-up time. :class:`LazyGroup` keeps the commands registered on a plain
:class:`typer.Typer` and converts one of them when it is invoked. Listing the commands in
the group's help needs only their names and help texts, so it converts a copy without
parameters.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import typer
from typer import _click as click
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo


def _without_parameters(info: CommandInfo) -> CommandInfo:
    """A copy of ``info`` whose callback has the same help text and no parameters."""
    callback = info.callback

    def summary() -> None:
        """Stands in for the command while its group lists it."""

    summary.__doc__ = callback.__doc__ if callback is not None else None
    light = copy.copy(info)
    light.callback = summary
    return light


def _without_commands(info: TyperInfo) -> TyperInfo:
    """A copy of ``info`` whose sub-app has its help text and callback but no commands."""
    light = copy.copy(info)
    if info.typer_instance is not None:
        sub = copy.copy(info.typer_instance)
        sub.registered_commands = []
        sub.registered_groups = []
        callback = sub.registered_callback
        if callback is not None and callback.callback is not None:
            real = callback.callback

            def summary() -> None:
                """Stands in for the group's own command while its parent lists it."""

            summary.__doc__ = real.__doc__
            sub.registered_callback = copy.copy(callback)
            sub.registered_callback.callback = summary
        light.typer_instance = sub
    return light


class LazyGroup(TyperGroup):
    """A typer group whose commands come from :attr:`source` and are converted on first use."""

    source: ClassVar[typer.Typer]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._listing = False
        self._infos: dict[str, CommandInfo | TyperInfo] = {}
        for command in self.source.registered_commands:
            assert command.name, "lazy commands are registered with a name"
            self._infos[command.name] = command
        for group in self.source.registered_groups:
            assert group.name, "lazy sub-apps are registered with a name"
            self._infos[group.name] = group

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, in registration order (commands, then sub-apps)."""
        return [*self.commands, *(n for n in self._infos if n not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The click command for ``cmd_name``, converted now if it has not been yet."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        info = self._infos.get(cmd_name)
        if info is None:
            return None
        if self._listing:
            return self._convert(_without_parameters(info) if isinstance(info, CommandInfo) else _without_commands(info))
        command = self._convert(info)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The group's help; its command list is built from parameter-less copies."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def _convert(self, info: CommandInfo | TyperInfo) -> click.Command:
        src = self.source
        if isinstance(info, CommandInfo):
            return get_command_from_info(info, pretty_exceptions_short=src.pretty_exceptions_short, rich_markup_mode=src.rich_markup_mode)
        return get_group_from_info(info, pretty_exceptions_short=src.pretty_exceptions_short,
                                   rich_markup_mode=src.rich_markup_mode, suggest_commands=src.suggest_commands)


def lazy_group(source: typer.Typer) -> type[LazyGroup]:
    """A :class:`LazyGroup` class (for ``typer.Typer(cls=...)``) whose commands are ``source``'s."""
    return type("StrataGroup", (LazyGroup,), {"source": source})
