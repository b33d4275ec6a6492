"""Numbers from a run's records: the metric registry, per-run and resilience metrics, research metrics, statistics over replications."""
