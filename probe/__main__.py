from probe.cli import main, run_program

run_program(main)
