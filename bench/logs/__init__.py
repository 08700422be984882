"""Benchmarks of live logs: many SSE clients on one server while an agent writes lines."""
