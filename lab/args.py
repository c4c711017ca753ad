"""`amlprobe lab` options, kept apart from the lab itself so building the CLI parser stays cheap."""

from __future__ import annotations

import argparse

LAB_TIMEOUT = 1.5


def add_lab_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default=None, metavar="NAME", help="fault to simulate (see --list)")
    p.add_argument("--list", action="store_true", help="describe the scenarios and exit")
    p.add_argument("--keep", action="store_true", help="leave the lab running after the check, to explore")
    p.add_argument("--timeout", type=float, default=LAB_TIMEOUT, help=f"per-probe timeout (default {LAB_TIMEOUT})")
    p.add_argument("--format", choices=("json", "table"), default=None)
    p.add_argument("--output", metavar="FILE")
    p.add_argument("--no-color", action="store_true")


def cmd_lab(args: argparse.Namespace) -> int:
    from lab.run import cmd_lab as run  # noqa: PLC0415 - circle lab.args <-> lab.run, removed by issue 12b

    return run(args)
