"""Unit tests of the reference agent: pipeline parsing, log lines, URLs, backoff."""
