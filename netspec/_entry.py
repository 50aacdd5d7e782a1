"""The `netspec` program's entry point: kept tiny so that even an early Ctrl-C ends cleanly."""

import sys


def main() -> None:
    try:
        from netspec.cli import entry  # the heavy imports (NumPy, pydantic) happen here
    except KeyboardInterrupt:
        sys.stderr.write("netspec: interrupted\n")
        sys.exit(130)
    entry()
