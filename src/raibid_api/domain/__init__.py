"""The domain vocabulary: jobs, their transitions, deliveries, supersession and rate limits.

Pure: no I/O, no Redis, no HTTP. Every other part imports it; it imports only `errors`.
"""
