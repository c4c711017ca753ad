"""Defaults the command line shows before anything heavy is imported."""

# Per-probe timeout, seconds.
DEFAULT_TIMEOUT = 5.0

# The import worker's thread (probe.importer); the program's fast exit waits for it (probe.cli.run_program).
IMPORT_THREAD = "amlprobe-import"
