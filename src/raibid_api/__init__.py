"""raibid-api: the orchestration server of raibid-ci."""

__version__ = "0.1.0"
