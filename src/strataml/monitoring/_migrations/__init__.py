"""The monitoring layer's catalog migrations (see :mod:`strataml.spine.migrations`)."""
