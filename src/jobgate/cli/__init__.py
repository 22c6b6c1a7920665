"""The command line: argument parsing, exit codes, human and ``--json`` rendering, log
viewing. It wires the packages below it together and holds no logic of its own that
another front end would need.

May import everything in jobgate; nothing imports it (``__main__`` aside). The entry point
is :func:`jobgate.cli.main.main`.
"""
