"""The one error hierarchy of strataml.

Every error says what went wrong, where, and how to fix it.  The CLI turns a
``StrataError`` into a short message and a non-zero exit code, never a traceback.
"""

from __future__ import annotations


class StrataError(Exception):
    """Base of every error strataml raises on purpose.

    ``hint`` tells the user how to fix the problem; it is printed after the message.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(StrataError):
    """A setting, a workspace or a definition is missing or invalid."""


class WorkspaceNotFound(ConfigError):
    """No ``strata.toml`` was found from the current directory upward."""


class MissingExtra(StrataError):
    """An optional dependency is needed but not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed",
            hint=f"pip install 'strataml[{extra}]'",
        )
        self.package = package
        self.extra = extra


class NotFound(StrataError):
    """A named thing (dataset, version, contract, model…) does not exist."""


class AlreadyExists(StrataError):
    """A thing that must be unique already exists."""


class UnsafePath(StrataError):
    """A path or URI tries to leave the directory it is confined to."""


class UnsafeModel(StrataError):
    """A model artifact is refused: pickle, unknown format, or a type that is not trusted."""


class IntegrityError(StrataError):
    """Stored content does not match its recorded hash (tampering or corruption)."""


class CatalogError(StrataError):
    """The catalog cannot be opened, migrated or written."""


class ConcurrencyError(StrataError):
    """Another writer changed the same thing first; retrying is safe."""


class ContractError(StrataError):
    """A contract definition is invalid, or a change to it is refused."""


class SourceError(StrataError):
    """An ingestion source cannot be read."""


class ValidationFailed(StrataError):
    """A batch failed a table-level check and was refused as a whole."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None, report: dict[str, object] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report or {}


class UserCodeError(StrataError):
    """User code (definitions, estimators, steps) raised; the original traceback is kept."""
