"""The features layer's catalog migrations (see :mod:`strataml.spine.migrations`)."""
