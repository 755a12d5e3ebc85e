"""Runnable processes and their adapters: HTTP APIs, projector runner, event logs, CLI."""
