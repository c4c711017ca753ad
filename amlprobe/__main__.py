from amlprobe.cli import main
from probe.cli import run_program

run_program(main)
