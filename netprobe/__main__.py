"""`python -m netprobe` runs the CLI."""

from netprobe.cli import main

main()
