"""Errors that reach the user. Network faults are never exceptions: they are check results."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input (flag, config, catalog, host name): printed as one line on stderr, exit code 3."""
