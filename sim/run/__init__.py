"""A scenario into a run folder: the cells, worker processes, Parquet tables and output documents."""
