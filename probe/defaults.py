"""Defaults the command line shows before anything heavy is imported."""

# Per-probe timeout, seconds.
DEFAULT_TIMEOUT = 5.0
