"""amlprobe's generic probing engine: probers, runner, report model, renderers, and the command line's parts.

Nothing in this package knows what service it probes for: the knowledge layer (``checks``) plans the
checks and interprets their results, and the composition root (``amlprobe.cli``) puts the two together.
Imports point one way: nothing here imports either of them.
"""

__version__ = "0.1.0"
