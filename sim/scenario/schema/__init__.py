"""The scenario YAML's sections as pydantic v2 models, one module a section:
``common`` (strict base, number types), ``traffic`` (the trace and workloads),
``deployments`` (models: prices, latency, limits, capacity), ``faults`` (events,
random incidents and their presets) and ``routing`` (router defences, policies,
gates, objectives). ``sim/scenario/load.py`` assembles them into the Scenario and loads
and cross-checks a file."""
