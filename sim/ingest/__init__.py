"""Outside measurements into scenarios and traces: LiteLLM configs and logs, latency fits."""
