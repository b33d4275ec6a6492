"""``python -m sim``: the same command line as ``routesim``."""

from .cli import main

main()
