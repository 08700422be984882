"""Integration tests of the reference agent: real git, real processes, a protocol double."""
