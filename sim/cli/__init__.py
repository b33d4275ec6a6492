"""The ``routesim`` command line: parse, call, print; the one place where run, verdicts and report meet."""
