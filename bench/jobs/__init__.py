"""Benchmarks of the jobs API: GET /jobs/{id}, GET /jobs with filters, and start-up."""
