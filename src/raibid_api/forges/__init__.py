"""Commit status reporting: the outbox worker, the sweep, and one client per forge."""
