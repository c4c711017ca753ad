"""amlprobe's generic probing engine: probers, runner, report model, renderers, CLI.

Nothing in this package knows about Azure; the Azure ML knowledge lives in ``checks``.
"""

__version__ = "0.1.0"
