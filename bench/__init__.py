"""Benchmarks of raibid-api: load generators, baselines and the runs that compare them."""
