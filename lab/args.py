"""`amlprobe lab` options, kept apart from the lab itself (lab.run) so building the CLI parser stays cheap.

``--color`` comes with every subcommand (probe.cli.build_parser); the rest are the lab's, and those
that shape the report are handed to the check it runs.
"""

from __future__ import annotations

import argparse

from probe.formats import FORMATS, add_format_argument
from probe.options import add_verbose_argument, seconds

LAB_TIMEOUT = 1.5


def add_lab_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default=None, metavar="NAME", help="fault to simulate (see --list)")
    p.add_argument("--list", action="store_true", help="describe the scenarios and exit")
    p.add_argument("--keep", action="store_true", help="leave the lab running after the check, to explore")
    p.add_argument(
        "--timeout",
        type=seconds,
        default=LAB_TIMEOUT,
        metavar="SECONDS",
        help=f"per-probe timeout (default {LAB_TIMEOUT})",
    )
    p.add_argument(
        "--partial", action="store_true", help="pass --partial to the check: accept a plan an input is missing for"
    )
    add_format_argument(p, FORMATS)
    p.add_argument("--output", metavar="FILE", help="write the report here (atomically) instead of stdout")
    add_verbose_argument(p)
