"""Benchmarks of the agent protocol: claim latency and log ingestion (bench.agents.run)."""
