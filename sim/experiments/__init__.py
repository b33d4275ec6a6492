"""Many runs: sweeps (local processes or Dask) and tuning."""
