"""`python -m netspec` runs the command line."""

from netspec._entry import main

main()
