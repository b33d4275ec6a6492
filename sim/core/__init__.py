"""One (policy, replication) cell: engine, router, attempts, defences, billing, records. The only simpy user."""
