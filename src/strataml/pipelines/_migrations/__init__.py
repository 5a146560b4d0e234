"""The pipelines layer's catalog migrations (0500-0599)."""
