"""``python -m sim``: the same command line as ``routesim``."""

from sim.cli.app import main

main()
